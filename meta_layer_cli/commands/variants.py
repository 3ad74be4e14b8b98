"""``score-vcf`` (SpliceAI's flags, any base model) and ``train-delta`` (variant models on measured effects)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from meta_layer_cli.commands.common import DeviceOpt, ProfileOpt, ProgressOpt, SetOpt, info, run_command


def register(app: typer.Typer) -> None:
    @app.command("score-vcf", epilog="Example: metalayer score-vcf -I in.vcf.gz -O out.vcf.gz -R hg38.fa -A grch38 "
                 "-D 50 -M 1 --checkpoint runs/osai/checkpoints/best -b openspliceai --weights models/osai")
    @run_command
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
        device: DeviceOpt = None,
        profile: ProfileOpt = None,
        cache: Annotated[Path | None, typer.Option(help="directory to cache base-model predictions in")] = None,
        batch_size: Annotated[int | None, typer.Option(help="windows per forward pass")] = None,
        progress: ProgressOpt = True,
        checkpoint: Annotated[
            list[Path] | None,
            typer.Option(
                "--checkpoint",
                help="train-canonical checkpoint (meta-layer deltas) and/or train-delta checkpoints "
                "(repeatable); adds the MetaLayer= field",
            ),
        ] = None,
    ) -> None:
        """Annotate a VCF with SpliceAI-format delta scores (SpliceAI= INFO) from any base model.

        With --base-model spliceai the field equals the official spliceai tool's. Every record is written out;
        records that cannot be scored get MetaLayerSkip=REASON. With --checkpoint, MetaLayer=ALLELE|SYMBOL|DS_AG|
        DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL|P_SA|EFFECT|DPSI: the recalibrated probabilities' deltas and the
        variant models' outputs.
        """
        from meta_layer_cli.inference.vcf import score_vcf
        from meta_layer_cli.runtime.config import hardware_settings
        from meta_layer_cli.runtime.device import resolve_device

        hardware = hardware_settings(profile, device=device)
        summary = score_vcf(
            input, output, reference, annotation, base_model=base_model, weights=weights, distance=distance,
            mask=bool(mask), device=str(resolve_device(hardware.device)), progress=progress, cache=cache,
            batch_size=batch_size or hardware.window_batch, checkpoints=checkpoint,
        )  # fmt: skip
        skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(summary["skipped"].items()))
        info(
            f"{summary['records']:,} records -> {output}: {summary['scored']:,} scored "
            f"({summary['entries']:,} entries){'; not scored: ' + skipped if skipped else ''} "
            f"in {summary['seconds']:.1f} s"
        )

    @app.command("train-delta", epilog="Example: metalayer train-delta --config configs/variants.yaml "
                 "--profile gpu --out runs/delta --set cache=~/.cache/metalayer")  # fmt: skip
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
        from meta_layer_cli.jobs.variants import run_validated_delta_training
        from meta_layer_cli.training.variant_config import load_variant_config

        cfg = load_variant_config(config or builtin_config("variants"), list(set_ or []), profile)
        result = run_validated_delta_training(config=cfg, output_dir=out, device=device, resume=resume,
                                              overwrite=overwrite, if_changed=if_changed)  # fmt: skip
        Console(soft_wrap=True).print(result.summary(), highlight=False, markup=False)
        info(f"metrics: {result.output_dir / 'metrics.json'}\ncheckpoint: {result.checkpoint_path}")
