"""``metasplice`` command-line interface. Every command calls one library function."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="metasplice: recalibrate splice-site predictions of any base model (SpliceAI, OpenSpliceAI, Pangolin).",
)
console = Console(stderr=True, soft_wrap=True)


def _clean_errors(func):
    """Turn expected user errors into one line on stderr and exit code 2, not a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (FileNotFoundError, ValueError, KeyError, RuntimeError) as err:
            message = err.args[0] if isinstance(err, KeyError) and err.args else err
            console.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
            raise typer.Exit(2) from None

    return wrapper


def _split(values: str | None) -> list[str] | None:
    return [v.strip() for v in values.split(",") if v.strip()] if values else None


DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N")]


@app.command()
@_clean_errors
def predict(
    base_model: Annotated[
        str, typer.Option("--base-model", "-b", help="spliceai, openspliceai, pangolin or precomputed")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="output directory (resumable)")],
    weights: Annotated[str | None, typer.Option(help="weights file/directory (precomputed: the score table)")] = None,
    dataset: Annotated[str | None, typer.Option(help="built-in dataset: demo")] = None,
    fasta: Annotated[Path | None, typer.Option("--fasta", "-R", help="reference FASTA (plain or bgzip)")] = None,
    gtf: Annotated[
        str | None, typer.Option("--gtf", "-A", help="GTF/GFF3, SpliceAI annotation table, grch37 or grch38")
    ] = None,
    genes: Annotated[str | None, typer.Option(help="comma-separated gene ids (demo) or names/ids (GTF)")] = None,
    transcripts: Annotated[
        str, typer.Option(help="canonical (MANE/Ensembl canonical, else longest) or longest")
    ] = "canonical",
    genome_build: Annotated[str | None, typer.Option(help="recorded in the manifest, e.g. GRCh38")] = None,
    device: DeviceOpt = "cpu",
    dtype: Annotated[str | None, typer.Option(help="float32 (default) or bfloat16 (GPU)")] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Run a base model over genes and write per-nucleotide score tracks (one parquet per gene)."""
    from metasplice.artifacts import demo_genes, fasta_gtf_genes, predict_tracks
    from metasplice.base_models import load_base_model

    if (dataset is None) == (fasta is None):
        raise ValueError("give either --dataset demo or --fasta with --gtf")
    if dataset is not None:
        if dataset != "demo":
            raise ValueError(f"unknown dataset {dataset!r} (built in: demo)")
        source, build, source_info = demo_genes(_split(genes)), genome_build or "hg19", {"dataset": "demo"}
    else:
        if gtf is None:
            raise ValueError("--fasta needs --gtf (a GTF/GFF3, an annotation table, grch37 or grch38)")
        source = fasta_gtf_genes(fasta, gtf, _split(genes), transcripts)
        build = genome_build or ({"grch37": "GRCh37", "grch38": "GRCh38"}.get(gtf))
        source_info = {"fasta": str(fasta), "annotation": str(gtf), "transcripts": transcripts}
    model = load_base_model(base_model, weights=weights, device=device, dtype=dtype)
    manifest = predict_tracks(model, source, out, genome_build=build, source=source_info, progress=progress)
    run = manifest["last_run"]
    console.print(
        f"{len(manifest['genes'])} genes in {out} ({run['predicted_genes']} predicted now, "
        f"{run['predicted_nt']:,} nt in {run['seconds']:.1f} s)"
    )


METRIC_ROWS = (
    "topk_acceptor",
    "topk_donor",
    "pr_auc_acceptor",
    "pr_auc_donor",
    "fp_acceptor",
    "fp_donor",
    "fn_acceptor",
    "fn_donor",
)


def _metrics_table(columns: dict[str, dict], title: str) -> Table:
    """Metrics as rows, one column per model, so base and meta read side by side."""
    table = Table(title=title)
    table.add_column("metric")
    for name in columns:
        table.add_column(name, justify="right")
    for key in METRIC_ROWS:
        cells = [columns[name][key] for name in columns]
        table.add_row(key, *(f"{v:.4f}" if isinstance(v, float) else str(v) for v in cells))
    return table


@app.command()
@_clean_errors
def evaluate(
    tracks: Annotated[Path, typer.Option(help="a directory written by `metasplice predict`")],
    genes: Annotated[str | None, typer.Option(help="comma-separated gene ids (default: all)")] = None,
    threshold: Annotated[float, typer.Option(help="score at or above which a site is called")] = 0.5,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Top-k accuracy, PR-AUC and FP/FN of base-model tracks against their labels."""
    from metasplice.evaluation import evaluate_tracks

    result = evaluate_tracks(tracks, _split(genes), threshold)
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        Console().print(
            _metrics_table({result["base_model"]: result}, f"{result['n_genes']} genes, {result['n_nt']:,} nt")
        )


@app.command()
@_clean_errors
def demo(
    out: Annotated[
        Path, typer.Option(help="working directory (reused: finished genes are not predicted again)")
    ] = Path("metasplice_demo"),
    genes: Annotated[int, typer.Option(help="how many of the demo genes to use (shortest first)")] = 40,
    device: DeviceOpt = "cpu",
) -> None:
    """The main job on built-in data: SpliceAI over real demo genes, scored against their labels."""
    from metasplice.workflows import run_base_demo

    result = run_base_demo(out, n_genes=genes, device=device)
    Console().print(_metrics_table({"spliceai": result}, f"demo: {result['n_genes']} genes, {result['n_nt']:,} nt"))
    console.print(f"tracks in {out / 'tracks'}")


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
