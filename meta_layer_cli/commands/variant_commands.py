"""``metalayer score-vcf``, ``score-seqs`` and ``train-variants``: variant effects from any base model.

Wire into the main app with ``register(app)``.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Annotated

import typer


@contextlib.contextmanager
def _warnings_to_stderr():
    """Library warnings (skipped records, ...) as one line each on stderr while a command runs."""
    from meta_layer_cli.commands.main import console

    class OneLine(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            console.print(f"[yellow]warning:[/yellow] {record.getMessage()}", highlight=False, markup=True)

    log = logging.getLogger("meta_layer_cli")
    handler = OneLine(logging.WARNING)
    log.addHandler(handler)
    previous = log.level
    if previous == logging.NOTSET or previous > logging.WARNING:
        log.setLevel(logging.WARNING)
    propagate, log.propagate = log.propagate, False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(previous)
        log.propagate = propagate


def register(app: typer.Typer) -> None:
    """Add ``score-vcf``, ``score-seqs`` and ``train-variants`` to ``app``."""
    from meta_layer_cli.commands.main import _clean_errors, console

    @app.command("score-vcf")
    @_clean_errors
    def score_vcf_command(
        input: Annotated[Path, typer.Option("--input", "-I", help="VCF (plain, gzip or bgzip)")],
        output: Annotated[Path, typer.Option("--output", "-O", help="output VCF (.gz: bgzip)")],
        reference: Annotated[Path, typer.Option("--reference", "-R", help="reference FASTA (plain or bgzip)")],
        annotation: Annotated[
            str, typer.Option("--annotation", "-A", help="grch37, grch38, a SpliceAI-style table or a GTF/GFF3")
        ],
        base_model: Annotated[
            str, typer.Option("--base-model", "-b", help="spliceai, openspliceai or pangolin")
        ] = "spliceai",
        weights: Annotated[str | None, typer.Option(help="weights file/directory (default: the model's)")] = None,
        distance: Annotated[
            int, typer.Option("--distance", "-D", min=0, max=4999, help="window half-width, as SpliceAI's -D")
        ] = 50,
        mask: Annotated[int, typer.Option("--mask", "-M", min=0, max=1, help="1: SpliceAI's masking (-M 1)")] = 0,
        device: Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N")] = "cpu",
        cache: Annotated[Path | None, typer.Option(help="directory to cache base-model predictions in")] = None,
        batch_size: Annotated[int | None, typer.Option(help="windows per forward pass")] = None,
        progress: Annotated[bool, typer.Option(help="show progress")] = True,
        checkpoint: Annotated[
            list[Path] | None,
            typer.Option(
                "--checkpoint",
                help="`metalayer train` checkpoint (meta-layer deltas) and/or train-variants checkpoints "
                "(repeatable); adds the MetaLayer= field",
            ),
        ] = None,
    ) -> None:
        """Annotate a VCF with SpliceAI-format delta scores (SpliceAI= INFO) from any base model.

        With --base-model spliceai the field equals the official spliceai tool's.
        Records that cannot be scored keep their line and get MetaLayerSkip=REASON.
        With --checkpoint, MetaLayer=ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL|P_SA|EFFECT|DPSI:
        the recalibrated probabilities' deltas and the variant models' outputs.
        """
        from meta_layer_cli.inference.vcf import score_vcf

        with _warnings_to_stderr():
            summary = score_vcf(
                input, output, reference, annotation, base_model=base_model, weights=weights, distance=distance,
                mask=bool(mask), device=device, progress=progress, cache=cache, batch_size=batch_size,
                checkpoints=checkpoint,
            )  # fmt: skip
        skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(summary["skipped"].items()))
        console.print(
            f"{summary['records']:,} records -> {output}: {summary['scored']:,} scored "
            f"({summary['entries']:,} entries){'; not scored: ' + skipped if skipped else ''} "
            f"in {summary['seconds']:.1f} s"
        )

    @app.command("score-seqs")
    @_clean_errors
    def score_seqs_command(
        input: Annotated[
            Path,
            typer.Option("--input", help="CSV/TSV/parquet: id, ref_seq, alt_seq, exon_start, exon_end [, ref_psi]"),
        ],
        out: Annotated[Path, typer.Option("--out", help="output table (.parquet, .tsv or .csv)")],
        base_model: Annotated[
            str | None,
            typer.Option(
                "--base-model", "-b", help="spliceai, openspliceai or pangolin (default: spliceai, or the checkpoint's)"
            ),
        ] = None,
        weights: Annotated[str | None, typer.Option(help="weights file/directory (default: the model's)")] = None,
        window: Annotated[int, typer.Option(min=0, help="nt each side of the variant for the window maxima")] = 50,
        device: Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N")] = "cpu",
        cache: Annotated[Path | None, typer.Option(help="directory to cache base-model predictions in")] = None,
        checkpoint: Annotated[
            list[Path] | None,
            typer.Option(
                "--checkpoint",
                help="train-variants checkpoint (repeatable: a delta predictor and/or a "
                "classifier); adds predicted_delta_psi and p_splice_altering",
            ),
        ] = None,
    ) -> None:
        """Base-model deltas at the exon's acceptor and donor and in a window, for ref/alt sequence pairs.

        With --checkpoint, the variant models' columns too: predicted_delta_psi (percent) and
        p_splice_altering (a classifier's probability, or, from a delta predictor alone, the
        cross-validated fraction of splice-altering variants at that predicted |delta|).
        """
        from meta_layer_cli.artifacts.sequences import score_sequences
        from meta_layer_cli.io.tables import write_table

        if out.suffix not in (".parquet", ".tsv", ".csv", ".txt"):
            raise ValueError(f"--out {out.name}: use a .parquet, .tsv or .csv file name")
        with _warnings_to_stderr():
            if checkpoint:
                from meta_layer_cli.inference.variant_models import score_sequences_with_models

                result = score_sequences_with_models(input, checkpoint, base_model=base_model, weights=weights,
                                                     device=device, window=window, cache=cache)  # fmt: skip
            else:
                result = score_sequences(input, base_model=base_model or "spliceai", weights=weights, device=device,
                                         window=window, cache=cache)  # fmt: skip
        write_table(result, out)
        used = base_model or ("the checkpoint's base model" if checkpoint else "spliceai")
        console.print(f"{result.height:,} rows scored with {used} -> {out}")

    @app.command("train-variants")
    @_clean_errors
    def train_variants_command(
        config: Annotated[Path, typer.Option(help="YAML config (see configs/variants.yaml)")],
        set_: Annotated[
            list[str] | None, typer.Option("--set", help="override a key, e.g. training.epochs=5 or folds=3")
        ] = None,
    ) -> None:
        """Train a variant model on measured effects (exon-grouped CV vs raw base-model deltas) and save it."""
        from rich.console import Console

        from meta_layer_cli.jobs.variants import run_validated_delta_training
        from meta_layer_cli.training.variant_config import load_variant_config

        cfg = load_variant_config(config, list(set_ or []))
        with _warnings_to_stderr():
            result = run_validated_delta_training(config=cfg)
        Console().print(result.summary(), highlight=False, markup=False)
        console.print(f"metrics: {result.output_dir / 'metrics.json'}\ncheckpoint: {result.checkpoint_path}")
