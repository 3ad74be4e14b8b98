"""``score-vcf`` (SpliceAI's flags, any base model), ``merge-vcf`` (its shards joined) and ``train-delta`` (variant
models on measured effects)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from meta_layer_cli.commands.common import (
    DeviceOpt,
    ModelsDirOpt,
    ProfileOpt,
    ProgressOpt,
    SetOpt,
    command_line,
    info,
    run_command,
)


def _shown(output: Path) -> str:
    return "stdout" if str(output) == "-" else str(output)


def register(app: typer.Typer) -> None:
    @app.command(
        "score-vcf",
        epilog="Example: metalayer score-vcf -I in.vcf.gz -O out.vcf.gz -R hg38.fa -A grch38 "
        "-D 50 -M 1 --checkpoint runs/osai/checkpoints/best (its base model, found by --weights, "
        "--models-dir or $METALAYER_MODELS)\n\n"
        "In a pipeline: zcat in.vcf.gz | metalayer score-vcf -I - -O - -R hg38.fa -A grch38 | bgzip > "
        "out.vcf.gz",
    )
    @run_command
    def score_vcf_command(
        ctx: typer.Context,
        input: Annotated[Path, typer.Option("--input", "-I", help="VCF (plain, gzip or bgzip); - reads stdin")],
        output: Annotated[
            Path,
            typer.Option("--output", "-O", help="output VCF (.gz/.bgz: bgzip); - writes plain VCF to stdout"),
        ],
        reference: Annotated[Path, typer.Option("--reference", "-R", help="reference FASTA (plain or bgzip)")],
        annotation: Annotated[
            str, typer.Option("--annotation", "-A", help="grch37, grch38, a SpliceAI-style table or a GTF/GFF3")
        ],
        base_model: Annotated[
            str | None,
            typer.Option(
                "--base-model",
                "-b",
                help="spliceai, openspliceai or pangolin (default: the --checkpoint's base model, else spliceai)",
            ),
        ] = None,
        weights: Annotated[str | None, typer.Option(help="weights file or folder (default: the lookup)")] = None,
        models_dir: ModelsDirOpt = None,
        distance: Annotated[
            int,
            typer.Option(
                "--distance", "-D", min=0, max=4999, metavar="<nt>", help="window half-width, as SpliceAI's -D"
            ),
        ] = 50,
        mask: Annotated[
            int, typer.Option("--mask", "-M", min=0, max=1, metavar="<0|1>", help="1: SpliceAI's masking (-M 1)")
        ] = 0,
        device: DeviceOpt = None,
        profile: ProfileOpt = None,
        cache: Annotated[Path | None, typer.Option(help="directory to cache base-model predictions in")] = None,
        batch_size: Annotated[int | None, typer.Option(min=1, metavar="<n>", help="windows per forward pass")] = None,
        progress: ProgressOpt = True,
        checkpoint: Annotated[
            list[Path] | None,
            typer.Option(
                "--checkpoint",
                metavar="<path>",
                help="train-canonical checkpoint (meta-layer deltas) and/or train-delta checkpoints "
                "(repeatable); adds the MetaLayer= field",
            ),
        ] = None,
        strict: Annotated[
            bool,
            typer.Option(
                "--strict",
                help="stop (exit 3) at the first malformed record, before scoring anything; "
                "default: pass it through with MetaLayerSkip=malformed and a warning",
            ),
        ] = False,
        shard: Annotated[
            str | None,
            typer.Option(
                "--shard",
                metavar="K/N",
                help="score only the K-th of N contiguous blocks of records (join the N outputs with merge-vcf)",
            ),
        ] = None,
        write_index: Annotated[
            bool, typer.Option("--write-index", help="also write a tabix index (OUTPUT.tbi); bgzip output only")
        ] = False,
    ) -> None:
        """Annotate a VCF with SpliceAI-format delta scores (SpliceAI= INFO) from any base model.

        With --base-model spliceai the field equals the official spliceai tool's. Every record is written out, in
        order; records that cannot be scored get MetaLayerSkip=REASON, malformed ones MetaLayerSkip=malformed (a
        line with fewer than 8 columns is filled with '.' up to INFO). SpliceAI=, MetaLayer= and MetaLayerSkip=
        values and header lines of an earlier run are replaced or removed. With --checkpoint,
        MetaLayer=ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL|P_SA|EFFECT|DPSI: the
        recalibrated probabilities' deltas and the variant models' outputs. A regular output file appears only
        when complete; -O -, links, devices and FIFOs are written through.
        """
        from meta_layer_cli.inference.vcf import score_vcf
        from meta_layer_cli.runtime.config import hardware_settings
        from meta_layer_cli.runtime.device import resolve_device

        hardware = hardware_settings(profile, device=device)
        summary = score_vcf(
            input,
            output,
            reference,
            annotation,
            base_model=base_model,
            weights=weights,
            distance=distance,
            mask=bool(mask),
            device=str(resolve_device(hardware.device)),
            progress=progress,
            cache=cache,
            batch_size=batch_size or hardware.window_batch,
            checkpoints=checkpoint,
            strict=strict,
            shard=shard,
            write_index=write_index,
            command=command_line(ctx),
            models_dir=models_dir,
        )
        skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(summary["skipped"].items()))
        info(
            f"{summary['records']:,} records -> {_shown(output)}: {summary['scored']:,} scored "
            f"({summary['entries']:,} entries){'; not scored: ' + skipped if skipped else ''} "
            f"in {summary['seconds']:.1f} s"
        )

    @app.command(
        "merge-vcf",
        epilog="Example: metalayer merge-vcf -O scored.vcf.gz --write-index shard1.vcf.gz shard2.vcf.gz shard3.vcf.gz",
    )
    @run_command
    def merge_vcf_command(
        ctx: typer.Context,
        shards: Annotated[
            list[Path], typer.Argument(metavar="SHARD", help="the N outputs of score-vcf --shard K/N, any order")
        ],
        output: Annotated[
            Path, typer.Option("--output", "-O", help="merged VCF (.gz/.bgz: bgzip); - writes plain VCF to stdout")
        ],
        write_index: Annotated[
            bool, typer.Option("--write-index", help="also write a tabix index (OUTPUT.tbi); bgzip output only")
        ] = False,
    ) -> None:
        """Concatenate the shards of score-vcf --shard K/N in order: the output of one unsharded run.

        Refuses a missing or duplicated shard, shards of different splits, and shards whose headers differ
        (apart from the command line).
        """
        from meta_layer_cli.inference.vcf_shards import merge_vcf

        summary = merge_vcf(shards, output, write_index=write_index, command=command_line(ctx))
        info(f"{summary['shards']} shards, {summary['lines']:,} lines -> {_shown(output)}")

    @app.command(
        "train-delta",
        epilog="Example: metalayer train-delta --config configs/variants.yaml "
        "--profile gpu --out runs/delta --set cache=~/.cache/metalayer",
    )
    @run_command
    def train_delta(
        config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (configs/variants.yaml)")] = (
            None
        ),
        set_: SetOpt = None,
        profile: ProfileOpt = None,
        device: DeviceOpt = None,
        out: Annotated[Path | None, typer.Option("--out", "-o", help="run folder (default: the config's)")] = None,
        resume: Annotated[
            bool, typer.Option(help="continue an interrupted run in --out from its last finished CV fold")
        ] = False,
        overwrite: Annotated[bool, typer.Option(help="train again into a finished or interrupted run folder")] = False,
        if_changed: Annotated[
            bool, typer.Option("--if-changed", help="retrain only if data or config changed (else exit 5)")
        ] = False,
    ) -> None:
        """Train a variant model on measured effects (exon-grouped CV vs the raw base-model deltas) and save it:
        writes checkpoint/, metrics.json, cv_predictions.parquet, train.log."""
        from rich.console import Console

        from meta_layer_cli.jobs.canonical import builtin_config
        from meta_layer_cli.jobs.run_folder import FolderPolicy
        from meta_layer_cli.jobs.variants import run_validated_delta_training
        from meta_layer_cli.training.variant_config import load_variant_config

        cfg = load_variant_config(config or builtin_config("variants"), list(set_ or []), profile)
        result = run_validated_delta_training(
            config=cfg,
            output_dir=out,
            device=device,
            folder=FolderPolicy(resume=resume, overwrite=overwrite, if_changed=if_changed),
        )
        Console(soft_wrap=True).print(result.summary(), highlight=False, markup=False)
        info(f"metrics: {result.output_dir / 'metrics.json'}\ncheckpoint: {result.checkpoint_path}")
