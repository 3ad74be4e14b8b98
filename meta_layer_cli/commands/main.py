"""``metalayer`` command-line interface. Every command calls one library function."""

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
    help="metalayer: recalibrate splice-site predictions of any base model (SpliceAI, OpenSpliceAI, Pangolin).",
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
    from meta_layer_cli.artifacts import demo_genes, fasta_gtf_genes, predict_tracks
    from meta_layer_cli.base_models import load_base_model

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


def _comparison_table(meta: dict, base: dict | None, title: str) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("base", justify="right")
    table.add_column("meta", justify="right")
    for key in ("pr_auc_acceptor", "pr_auc_donor", "pr_auc_macro", "topk_acceptor", "topk_donor", "topk_mean",
                "fp_at_0.5", "fn_at_0.5", "fp_at_f1opt", "fn_at_f1opt", "ece"):  # fmt: skip
        cells = [(base or {}).get(key), meta.get(key)]
        table.add_row(key, *("-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v) for v in cells))
    return table


@app.command()
@_clean_errors
def evaluate(
    tracks: Annotated[Path | None, typer.Option(help="base-model tracks written by `metalayer predict`")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="a trained meta model (run/checkpoints/best)")] = None,
    genes: Annotated[
        str | None, typer.Option(help="comma-separated gene ids (default: all / the run's test genes)")
    ] = None,
    threshold: Annotated[float, typer.Option(help="score at or above which a site is called (--tracks)")] = 0.5,
    device: DeviceOpt = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Score tracks (--tracks) or a meta model against its base model on held-out genes (--checkpoint)."""
    if (tracks is None) == (checkpoint is None):
        raise ValueError("give either --tracks DIR or --checkpoint DIR")
    if tracks is not None:
        from meta_layer_cli.evaluation import evaluate_tracks

        result = evaluate_tracks(tracks, _split(genes), threshold)
        if as_json:
            print(json.dumps(result, indent=2))
        else:
            Console().print(
                _metrics_table({result["base_model"]: result}, f"{result['n_genes']} genes, {result['n_nt']:,} nt")
            )
        return
    from meta_layer_cli.jobs.canonical import evaluate_checkpoint

    meta, base = evaluate_checkpoint(checkpoint, _split(genes), device)
    if as_json:
        print(json.dumps({"meta": meta, "base": base}, indent=2))
    else:
        Console().print(_comparison_table(meta, base, "held-out genes, same positions"))


@app.command()
@_clean_errors
def train(
    config: Annotated[Path, typer.Option(help="YAML run config (see configs/)")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a key, e.g. training.epochs=5")] = None,
) -> None:
    """Train the meta-layer on demo genes and compare it with the base model on held-out genes."""
    from meta_layer_cli.jobs.canonical import run_canonical_training
    from meta_layer_cli.training.config import load_run_config

    result = run_canonical_training(config=load_run_config(config, list(set_ or [])))
    Console().print(_comparison_table(result.canonical_test_metrics, result.base_test_metrics, "held-out genes"))
    console.print(f"checkpoint: {result.checkpoint_path}")


@app.command()
@_clean_errors
def recalibrate(
    checkpoint: Annotated[Path, typer.Option(help="a trained meta model (run/checkpoints/best)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output parquet file")],
    dataset: Annotated[str | None, typer.Option(help="built-in dataset: demo")] = None,
    genes: Annotated[str | None, typer.Option(help="comma-separated gene ids (demo, artifacts) or names (GTF)")] = None,
    fasta: Annotated[Path | None, typer.Option("--fasta", "-R", help="reference FASTA")] = None,
    gtf: Annotated[str | None, typer.Option("--gtf", "-A", help="GTF/GFF3 or annotation table")] = None,
    artifacts: Annotated[list[Path] | None, typer.Option(help="tracks directories from `metalayer predict`")] = None,
    bigwig: Annotated[str | None, typer.Option(help="also write PREFIX.{acceptor,donor}.{plus,minus}.bw")] = None,
    device: DeviceOpt = "cpu",
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Recalibrated (neither, acceptor, donor) probabilities for every nucleotide of some genes."""
    from meta_layer_cli.inference import recalibrate as run

    path = run(checkpoint, out, dataset=dataset, genes=_split(genes), fasta=fasta, gtf=gtf, artifacts=artifacts,
               bigwig_prefix=bigwig, device=device, progress=progress)  # fmt: skip
    console.print(f"wrote {path}")


@app.command()
@_clean_errors
def demo(
    out: Annotated[Path, typer.Option(help="working directory (reused: cached tracks are not predicted again)")] = Path(
        "metalayer_demo"
    ),
    device: DeviceOpt = "cpu",
    epochs: Annotated[int | None, typer.Option(help="override the lightweight config's epochs")] = None,
) -> None:
    """The main job on built-in data: SpliceAI on ~200 real genes, train the meta-layer, compare on held-out genes."""
    from meta_layer_cli.jobs.demo import run_demo

    result, report = run_demo(out, device=device, epochs=epochs)
    Console().print(_comparison_table(result.canonical_test_metrics, result.base_test_metrics,
                                      f"demo: {len(result.split['test'])} held-out genes"))  # fmt: skip
    console.print(f"report: {report}\ncheckpoint: {result.checkpoint_path}")


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())


from meta_layer_cli.commands.variant_commands import register as _register_variants  # noqa: E402

_register_variants(app)
