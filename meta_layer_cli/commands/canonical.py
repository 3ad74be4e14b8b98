"""``prepare``, ``train-canonical``, ``evaluate``, ``predict``, ``calibrate``, ``demo``, ``init-config``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from meta_layer_cli.commands.common import (
    DeviceOpt,
    ModelsDirOpt,
    ProfileOpt,
    ProgressOpt,
    SetOpt,
    info,
    print_result,
    run_command,
    split_list,
)
from meta_layer_cli.runtime.errors import UsageError

BaseModelOpt = Annotated[
    str | None, typer.Option("--base-model", "-b", help="spliceai, openspliceai, pangolin or precomputed")
]
WeightsOpt = Annotated[
    str | None,
    typer.Option("--weights", help="weights file or folder (a folder of flank sizes picks --flank); see README"),
]
FlankOpt = Annotated[
    int | None,
    typer.Option("--flank", min=1, metavar="<nt>", help="OpenSpliceAI flank size: 80, 400, 2000 or 10000 (default)"),
]
FastaOpt = Annotated[Path | None, typer.Option("--fasta", "-R", help="genome FASTA (plain or bgzip)")]
GtfOpt = Annotated[
    str | None, typer.Option("--gtf", "-A", help="GTF/GFF3 (gzip ok), a SpliceAI annotation table, grch37 or grch38")
]
DatasetOpt = Annotated[str | None, typer.Option("--dataset", help="built-in genes: demo")]
GenesOpt = Annotated[str | None, typer.Option("--genes", help="comma-separated gene names or ids")]
GenesFileOpt = Annotated[Path | None, typer.Option("--genes-file", help="gene names or ids, one per line (- stdin)")]
RegionOpt = Annotated[str | None, typer.Option("--region", help="only genes overlapping CHROM[:START-END]")]
AllowPartialOpt = Annotated[
    bool, typer.Option("--allow-partial", help="use the finished genes of an unfinished prepared folder")
]
TranscriptsOpt = Annotated[
    str, typer.Option("--transcripts", help="canonical (MANE Select / Ensembl canonical, else longest) or longest")
]


def _metrics_table(meta: dict, base: dict | None, title: str, alone: dict | None = None):
    """base | meta [| network alone]: ``alone`` is the meta model before its gene-structure decoder and any
    calibration (``meta_per_nucleotide``)."""
    from rich.table import Table

    from meta_layer_cli.evaluation.report import ROWS, format_metric

    caption = "network alone: the meta model before the gene-structure decoder and calibration" if alone else None
    table = Table(title=title, caption=caption)
    table.add_column("metric")
    table.add_column("base", justify="right")
    table.add_column("meta", justify="right")
    if alone:
        table.add_column("network alone", justify="right")
    for key in ROWS:
        table.add_row(
            key,
            format_metric(key, (base or {}).get(key)),
            format_metric(key, meta.get(key)),
            *([format_metric(key, alone.get(key))] if alone else []),
        )
    return table


def _held_out_result(
    meta: dict, base: dict | None, title: str, alone: dict | None = None, n_genes: int | None = None
) -> None:
    """The held-out table on stdout, then the warning of :func:`_warn_if_worse`."""
    _print_table(_metrics_table(meta, base, title, alone))
    _warn_if_worse(meta, base, n_genes)


def _warn_if_worse(meta: dict, base: dict | None, n_genes: int | None) -> None:
    """A warning line (stderr, the last one) when the meta-layer lost to its base model on the held-out genes."""
    import logging

    from meta_layer_cli.evaluation.report import worse_than_base

    warning = worse_than_base(meta, base, n_genes)
    if warning:
        logging.getLogger("meta_layer_cli").warning(warning)


TRACKS_ROWS = (
    "pr_auc_acceptor",
    "pr_auc_donor",
    "pr_auc_macro",
    "topk_acceptor",
    "topk_donor",
    "topk_mean",
    "fp_acceptor",
    "fn_acceptor",
    "fp_donor",
    "fn_donor",
    "n_acceptor",
    "n_donor",
    "n_nt",
)


def _tracks_table(result: dict, title: str):
    """``evaluate --tracks``: the base model's metrics (every one ``--json`` reports) in a column named after it."""
    from rich.table import Table

    from meta_layer_cli.evaluation.report import format_metric

    table = Table(title=title)
    table.add_column("metric")
    table.add_column(f"base ({result['base_model']})", justify="right")
    for key in TRACKS_ROWS:
        shown = f"{key} at {result['threshold']:g}" if key.startswith(("fp_", "fn_")) else key
        table.add_row(shown, format_metric(key, result.get(key)))
    return table


def _print_table(table) -> None:
    from rich.console import Console

    Console(soft_wrap=True).print(table)


def register(app: typer.Typer) -> None:
    @app.command(
        epilog="Example: metalayer prepare --fasta hg38.fa --gtf gencode.v44.gtf.gz -b openspliceai "
        "--weights models/openspliceai-mane --out prepared/osai"
    )
    @run_command
    def prepare(
        out: Annotated[Path, typer.Option("--out", "-o", help="prepared folder (resumable; shards may share it)")],
        base_model: BaseModelOpt = "spliceai",
        weights: WeightsOpt = None,
        flank: FlankOpt = None,
        models_dir: ModelsDirOpt = None,
        fasta: FastaOpt = None,
        gtf: GtfOpt = None,
        dataset: DatasetOpt = None,
        data: Annotated[Path | None, typer.Option("--data", help="genes of another prepared folder")] = None,
        transcripts: TranscriptsOpt = "canonical",
        biotype: Annotated[str | None, typer.Option(help="keep these gene biotypes, e.g. protein_coding")] = None,
        genes: GenesOpt = None,
        genes_file: GenesFileOpt = None,
        region: RegionOpt = None,
        shard: Annotated[str | None, typer.Option("--shard", help="K/N: this job's share of the genes")] = None,
        genome_build: Annotated[str | None, typer.Option(help="recorded in the manifest, e.g. GRCh38")] = None,
        profile: ProfileOpt = None,
        device: DeviceOpt = None,
        dtype: Annotated[str | None, typer.Option(help="float32 (default), bfloat16 or float16")] = None,
        overwrite: Annotated[bool, typer.Option(help="start over if the folder was made from other inputs")] = False,
        allow_partial: AllowPartialOpt = False,
        progress: ProgressOpt = True,
    ) -> None:
        """Prepare a dataset: per gene its sequence, labels from the chosen transcript and the base model's tracks."""
        from meta_layer_cli.jobs.prepare import prepare as run

        manifest = run(
            out,
            base_model or "spliceai",
            weights,
            flank=flank,
            models_dir=models_dir,
            dataset=dataset,
            fasta=fasta,
            gtf=gtf,
            data=data,
            transcripts=transcripts,
            biotype=split_list(biotype),
            genes=split_list(genes),
            genes_file=genes_file,
            region=region,
            shard=shard,
            genome_build=genome_build,
            profile=profile,
            device=device,
            dtype=dtype,
            overwrite=overwrite,
            progress=progress,
            allow_partial=allow_partial,
        )
        last = manifest["last_run"]
        from meta_layer_cli.artifacts.tracks import missing_gene_ids

        missing = len(missing_gene_ids(out, manifest))
        print_result(
            f"{out}: {len(manifest['genes']) - missing} of {len(manifest['genes'])} genes ready "
            f"({last['predicted_genes']} predicted now, {last['predicted_nt']:,} nt in {last['seconds']:.1f} s); "
            f"{len(manifest['dropped'])} dropped"
        )

    @app.command(
        "train-canonical",
        epilog="Example: metalayer train-canonical --base-model openspliceai "
        "--data prepared/osai --test-chroms chr3 --profile gpu --out runs/osai",
    )
    @run_command
    def train_canonical(
        base_model: Annotated[
            list[str] | None,
            typer.Option("--base-model", "-b", metavar="<name>", help="base model (repeat to stack several)"),
        ] = None,
        weights: Annotated[
            list[str] | None, typer.Option("--weights", metavar="<path>", help="weights per --base-model")
        ] = None,
        flank: FlankOpt = None,
        models_dir: ModelsDirOpt = None,
        data: Annotated[
            list[Path] | None,
            typer.Option("--data", metavar="<path>", help="prepared folder (one per stacked base model)"),
        ] = None,
        fasta: FastaOpt = None,
        gtf: GtfOpt = None,
        dataset: DatasetOpt = None,
        test_chroms: Annotated[
            str | None,
            typer.Option(
                "--test-chroms",
                help="held-out chromosomes (default 1,3,5,7,9; chr optional; "
                "NC_000001.11 is 1 when its FASTA header says so)",
            ),
        ] = None,
        split: Annotated[
            str | None,
            typer.Option(
                "--split",
                help="chromosome (genome default), gene, or block: blocks of neighbouring genes, any assembly",
            ),
        ] = None,
        test_fraction: Annotated[
            float | None, typer.Option("--test-fraction", help="gene/block split: share of genes held out (0.2)")
        ] = None,
        config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML run config (configs/)")] = None,
        max_minutes: Annotated[
            float | None,
            typer.Option(
                "--max-minutes",
                help="wall-clock budget of the training loop in minutes, "
                "validation after each epoch included (training.max_minutes); the final "
                "evaluation on held-out genes comes after",
            ),
        ] = None,
        profile: ProfileOpt = None,
        set_: SetOpt = None,
        device: DeviceOpt = None,
        out: Annotated[Path | None, typer.Option("--out", "-o", help="run folder (default: the config's)")] = None,
        resume: Annotated[bool, typer.Option(help="continue an interrupted run in --out")] = False,
        overwrite: Annotated[bool, typer.Option(help="train again into a finished or interrupted run folder")] = False,
        if_changed: Annotated[
            bool, typer.Option("--if-changed", help="retrain only if data or config changed (else exit 5)")
        ] = False,
        allow_partial: AllowPartialOpt = False,
    ) -> None:
        """Train the meta-layer on a prepared genome (or the demo genes) and compare it with its base model on
        held-out genes: writes checkpoints/best, metrics.json, report.html, train.log."""
        from meta_layer_cli.jobs.canonical import run_canonical_training
        from meta_layer_cli.jobs.run_folder import FolderPolicy
        from meta_layer_cli.runtime.config import parse_overrides

        if (fasta is None) != (gtf is None):
            raise UsageError("--fasta and --gtf go together")
        if fasta is not None:
            if data:
                raise UsageError("give --data or --fasta/--gtf, not both")
            data = _prepare_for_training(out, base_model, weights, flank, models_dir, fasta, gtf, profile, device)
        result = run_canonical_training(
            base_model=(base_model[0] if len(base_model) == 1 else base_model) if base_model else None,
            base_weights=(weights[0] if len(weights) == 1 else weights) if weights else None,
            flank=flank,
            data=[str(d) for d in data] if data else None,
            dataset=dataset,
            test_chroms=split_list(test_chroms),
            split=split,
            test_fraction=test_fraction,
            config=config,
            max_minutes=max_minutes,
            profile=profile,
            device=device,
            output_dir=out,
            folder=FolderPolicy(resume=resume, overwrite=overwrite, if_changed=if_changed),
            allow_partial=allow_partial,
            overrides={**({"models_dir": str(models_dir)} if models_dir else {}), **parse_overrides(set_ or [])},
        )
        info(f"checkpoint: {result.checkpoint_path}\nreport: {result.output_dir / 'report.html'}")
        _held_out_result(
            result.canonical_test_metrics,
            result.base_test_metrics,
            f"{len(result.split['test'])} held-out genes, same positions",
            result.extra_test_metrics.get("meta_per_nucleotide"),
            len(result.split["test"]),
        )

    @app.command(
        epilog="Examples: metalayer evaluate --checkpoint runs/osai/checkpoints/best --data prepared/osai "
        "--json; metalayer evaluate --tracks prepared/osai"
    )
    @run_command
    def evaluate(
        checkpoint: Annotated[Path | None, typer.Option(help="a canonical or variant-model checkpoint")] = None,
        data: Annotated[
            list[Path] | None, typer.Option("--data", metavar="<path>", help="prepared folder(s) to evaluate on")
        ] = None,
        tracks: Annotated[Path | None, typer.Option(help="evaluate a prepared folder's base-model tracks")] = None,
        variants: Annotated[
            Path | None,
            typer.Option(help="measured variant table (CSV/TSV/parquet; Vex-seq and MaPSy files as published)"),
        ] = None,
        genes: GenesOpt = None,
        allow_partial: AllowPartialOpt = False,
        allow_seen: Annotated[
            bool, typer.Option(help="--variants: also rows of exons the checkpoint was trained on (optimistic)")
        ] = False,
        threshold: Annotated[float, typer.Option(help="score called a site with --tracks")] = 0.5,
        models_dir: ModelsDirOpt = None,
        device: DeviceOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON on stdout instead of a table")] = False,
    ) -> None:
        """Metrics on held-out data: base-model tracks (--tracks), a canonical checkpoint against its base model
        on the same positions (--checkpoint, --data), or either kind of checkpoint on measured effects (--variants;
        the raw base-model deltas on the same rows beside it): a variant model refuses rows of exons it was trained
        or calibrated on, a meta-layer checkpoint leaves out rows in genes it trained on, unless --allow-seen."""
        if sum(x is not None for x in (tracks, checkpoint)) != 1:
            raise UsageError("give --tracks DIR or --checkpoint DIR")
        if variants is not None and (tracks is not None or data or genes):
            raise UsageError("--variants scores a checkpoint on a measured table: without --tracks, --data or --genes")
        if tracks is not None:
            from meta_layer_cli.evaluation import evaluate_tracks

            result = evaluate_tracks(tracks, split_list(genes), threshold, allow_partial=allow_partial)
            if as_json:
                print(json.dumps(result, indent=2))
            else:
                _print_table(_tracks_table(result, f"{result['n_genes']} genes of {tracks}"))
            return
        from meta_layer_cli.models.checkpoint import read_checkpoint_config

        if read_checkpoint_config(checkpoint).get("kind") == "variant_model":
            if variants is None:
                raise UsageError(f"{checkpoint} is a variant model: give --variants TABLE (measured effects)")
            from meta_layer_cli.jobs.variants import evaluate_variant_checkpoint

            metrics = evaluate_variant_checkpoint(
                checkpoint, variants, device=device, allow_seen=allow_seen, models_dir=models_dir
            )
            print(json.dumps(metrics, indent=2) if as_json else _variant_metrics_text(metrics))
            return
        if variants is not None:
            from meta_layer_cli.jobs.canonical import evaluate_checkpoint_on_variants

            result = evaluate_checkpoint_on_variants(checkpoint, variants, device, models_dir, allow_seen)
            print(json.dumps(result.to_dict(), indent=2) if as_json else result.summary())
            return
        from meta_layer_cli.jobs.canonical import evaluate_checkpoint_metrics

        folders = [str(d) for d in data] if data else None
        metrics = evaluate_checkpoint_metrics(checkpoint, folders, split_list(genes), device, allow_partial, models_dir)
        meta, base = metrics["meta"], metrics["base"]
        if as_json:  # base, meta and, where the checkpoint has a decoder, meta_per_nucleotide (the network alone)
            print(json.dumps(metrics, indent=2))
        else:
            _print_table(
                _metrics_table(
                    meta, base, f"{meta['n_genes']} held-out genes, same positions", metrics.get("meta_per_nucleotide")
                )
            )
        _warn_if_worse(meta, base, meta["n_genes"])

    @app.command(
        epilog="Examples: metalayer predict --checkpoint runs/osai/checkpoints/best --data prepared/new "
        "--out new.parquet --bigwig tracks/meta; metalayer predict --variants vexseq.csv --out d.parquet"
    )
    @run_command
    def predict(
        out: Annotated[Path, typer.Option("--out", "-o", help="output table (.parquet; variants also .tsv/.csv)")],
        checkpoint: Annotated[
            list[Path] | None,
            typer.Option("--checkpoint", metavar="<path>", help="trained checkpoint (variants: repeatable)"),
        ] = None,
        data: Annotated[
            list[Path] | None, typer.Option("--data", metavar="<path>", help="prepared folder(s) of the genes")
        ] = None,
        fasta: FastaOpt = None,
        gtf: GtfOpt = None,
        dataset: DatasetOpt = None,
        transcripts: TranscriptsOpt = "canonical",
        genes: GenesOpt = None,
        genes_file: GenesFileOpt = None,
        region: RegionOpt = None,
        shard: Annotated[str | None, typer.Option("--shard", help="K/N: every N-th gene, from the K-th")] = None,
        bigwig: Annotated[str | None, typer.Option(help="also write PREFIX.{acceptor,donor}.{plus,minus}.bw")] = None,
        variants: Annotated[
            Path | None, typer.Option(help="variant table: id, ref_seq, alt_seq, exon_start, exon_end [, ref_psi]")
        ] = None,
        base_model: BaseModelOpt = None,
        weights: WeightsOpt = None,
        window: Annotated[
            int, typer.Option(min=0, metavar="<nt>", help="variants: nt each side for the window deltas")
        ] = 50,
        cache: Annotated[
            Path | None,
            typer.Option(help="folder caching base-model predictions (--dataset demo: metalayer demo's is OUT/cache)"),
        ] = None,
        models_dir: ModelsDirOpt = None,
        profile: ProfileOpt = None,
        device: DeviceOpt = None,
        allow_partial: AllowPartialOpt = False,
        progress: ProgressOpt = True,
    ) -> None:
        """Apply a trained checkpoint: recalibrated per-nucleotide probabilities of genes, or variant effects of a
        ref/alt sequence table (base-model deltas, plus variant-model outputs with --checkpoint)."""
        if variants is not None:
            from meta_layer_cli.jobs.predict import predict_variant_table

            result = predict_variant_table(
                variants, out, checkpoint, base_model, weights, window, cache, device, profile
            )
            info(f"{result.height:,} rows -> {out}")
            return
        if not checkpoint or len(checkpoint) != 1:
            raise UsageError("genes need exactly one --checkpoint (a train-canonical or calibrate checkpoint)")
        from meta_layer_cli.jobs.predict import predict_genes

        path = predict_genes(
            checkpoint[0],
            out,
            data=data,
            dataset=dataset,
            fasta=fasta,
            gtf=gtf,
            transcripts=transcripts,
            genes=split_list(genes),
            genes_file=genes_file,
            region=region,
            shard=shard,
            bigwig=bigwig,
            models_dir=models_dir,
            profile=profile,
            device=device,
            progress=progress,
            allow_partial=allow_partial,
            cache=cache,
        )
        info(f"wrote {path}" + (f" and {bigwig}.*.bw" if bigwig else ""))

    @app.command(
        epilog="Examples: metalayer calibrate --checkpoint runs/osai/checkpoints/best --data prepared/osai "
        "--method isotonic --out runs/osai/calibrated; metalayer calibrate --data prepared/osai "
        "--out osai-temperature (a base model alone)"
    )
    @run_command
    def calibrate(
        out: Annotated[Path, typer.Option("--out", "-o", help="new checkpoint folder")],
        checkpoint: Annotated[Path | None, typer.Option(help="checkpoint to calibrate (none: the base model)")] = None,
        data: Annotated[list[Path] | None, typer.Option("--data", metavar="<path>", help="prepared folder(s)")] = None,
        method: Annotated[
            str | None, typer.Option(help="canonical: temperature (default) or isotonic; variant: isotonic or quantile")
        ] = None,
        variants: Annotated[Path | None, typer.Option(help="variant model: held-out measured table")] = None,
        quantile: Annotated[float, typer.Option(help="variant model, quantile: interval coverage")] = 0.9,
        genes: GenesOpt = None,
        test_chroms: Annotated[str | None, typer.Option("--test-chroms", help="base model alone: test chroms")] = None,
        models_dir: ModelsDirOpt = None,
        device: DeviceOpt = None,
        overwrite: Annotated[bool, typer.Option(help="replace a non-empty --out")] = False,
        allow_partial: AllowPartialOpt = False,
    ) -> None:
        """Post-hoc calibration on held-out (validation) data, never on test genes: per-class temperature of a
        base model alone, temperature or isotonic for a canonical checkpoint, isotonic or quantile for a variant
        model. Prints ECE before/after and writes a reliability plot; the new checkpoint works everywhere."""
        from meta_layer_cli.jobs import calibrate as jobs

        if checkpoint is None:
            if not data or len(data) != 1:
                raise UsageError("a base model alone is calibrated on one --data folder")
            if method not in (None, "temperature"):
                raise UsageError("a base model alone takes --method temperature")
            fitted = jobs.calibrate_base_model(
                data[0], out, split_list(genes), split_list(test_chroms), overwrite, allow_partial
            )
        else:
            from meta_layer_cli.models.checkpoint import read_checkpoint_config

            if read_checkpoint_config(checkpoint).get("kind") == "variant_model":
                if variants is None:
                    raise UsageError("a variant model is calibrated on --variants TABLE (held-out measured effects)")
                from meta_layer_cli.jobs.variants import calibrate_variant_checkpoint

                fitted = calibrate_variant_checkpoint(
                    checkpoint, variants, out, method or "isotonic", quantile, device, overwrite, models_dir=models_dir
                )
            else:
                fitted = jobs.calibrate_checkpoint(
                    checkpoint,
                    out,
                    method or "temperature",
                    [str(d) for d in data] if data else None,
                    split_list(genes),
                    device,
                    models_dir,
                    overwrite,
                    allow_partial,
                )
        print_result(fitted.summary())
        print_result(f"reliability plot: {fitted.plot}")

    @app.command(epilog="Example: metalayer demo --device cuda")
    @run_command
    def demo(
        out: Annotated[Path, typer.Option(help="working folder (tracks are cached there)")] = Path("metalayer_demo"),
        profile: ProfileOpt = None,
        device: DeviceOpt = None,
        epochs: Annotated[
            int | None, typer.Option(min=1, metavar="<n>", help="override the lightweight config's epochs")
        ] = None,
        genes: Annotated[str | None, typer.Option(help="demo gene ids (default: ~200 genes up to 40 kb)")] = None,
        overwrite: Annotated[
            bool, typer.Option(help="train again from scratch even if the folder holds a finished demo")
        ] = False,
        progress: ProgressOpt = True,
    ) -> None:
        """The main job on built-in data: SpliceAI on ~200 real genes, train the meta-layer, compare on held-out
        genes, write report.html. A rerun with the same settings shows the finished demo's results without
        training (--overwrite trains again); other settings train again; an interrupted demo continues."""
        from meta_layer_cli.jobs.demo import run_demo

        result, report = run_demo(
            out,
            split_list(genes),
            device=device,
            epochs=epochs,
            progress=progress,
            profile=profile,
            overwrite=overwrite,
        )
        info(f"report: {report}\ncheckpoint: {result.checkpoint_path}")
        _held_out_result(
            result.canonical_test_metrics,
            result.base_test_metrics,
            f"demo: {len(result.split['test'])} held-out genes",
            result.extra_test_metrics.get("meta_per_nucleotide"),
            len(result.split["test"]),
        )

    @app.command(epilog="Example: metalayer init-config pipeline > p.yaml; metalayer pipeline --config p.yaml")
    @run_command
    def pipeline(
        config: Annotated[Path, typer.Option("--config", "-c", help="pipeline YAML (metalayer init-config pipeline)")],
        set_: Annotated[
            list[str] | None,
            typer.Option(
                "--set",
                metavar="<key=value>",
                help="override a pipeline key (device=cpu) or a training key (training.epochs=5, "
                "model.width=16: the train-canonical step's)",
            ),
        ] = None,
        progress: ProgressOpt = True,
    ) -> None:
        """The whole chain on one machine from one config: prepare, train-canonical, evaluate, and optionally
        predict and score-vcf. A rerun skips what is done (use scripts/workflow/Snakefile for many machines)."""
        from meta_layer_cli.jobs.pipeline import run_pipeline

        result = run_pipeline(config, list(set_ or []), progress)
        held_out = result["held_out"]
        info(f"summary: {Path(result['checkpoint']).parents[2] / 'pipeline.json'}")
        _held_out_result(
            held_out["meta"],
            held_out["base"],
            f"{held_out['meta']['n_genes']} held-out genes, same positions",
            held_out.get("meta_per_nucleotide"),
            held_out["meta"]["n_genes"],
        )

    @app.command("init-config", epilog="Example: metalayer init-config canonical > my-run.yaml")
    @run_command
    def init_config(
        kind: Annotated[
            str, typer.Argument(help="canonical, lightweight, hyena, delta, pipeline, or a profile: cpu, m1, gpu")
        ],
        out: Annotated[
            Path | None, typer.Option("--out", "-o", help="write here instead of stdout (- is stdout)")
        ] = None,
    ) -> None:
        """Write a starter config (a built-in one, commented) to edit and pass with --config / --profile."""
        from meta_layer_cli.jobs.canonical import builtin_config
        from meta_layer_cli.runtime.config import PROFILES, profile_path

        names = {
            "canonical": "default",
            "lightweight": "lightweight",
            "hyena": "hyena",
            "delta": "variants",
            "pipeline": "pipeline",
        }
        if kind in PROFILES:
            path = profile_path(kind)
        elif kind in names:
            path = builtin_config(names[kind])
        else:
            raise UsageError(
                f"unknown config kind {kind!r} (canonical, lightweight, hyena, delta, pipeline, cpu, m1, gpu)"
            )
        text = path.read_text()
        if out is None or str(out) == "-":
            sys.stdout.write(text)
            return
        from meta_layer_cli.io.atomic import atomic_path, check_output_file

        check_output_file(out, "--out")
        if out.exists():
            raise UsageError(f"{out} exists; not overwriting it")
        with atomic_path(out) as tmp:
            tmp.write_text(text)
        info(f"wrote {out}")


def _prepare_for_training(out, base_model, weights, flank, models_dir, fasta, gtf, profile, device) -> list[Path]:
    """``train-canonical --fasta --gtf``: prepare each base model's tracks into ``OUT/data/`` first."""
    from meta_layer_cli.jobs.prepare import prepare

    if out is None:
        raise UsageError("--fasta/--gtf need --out (the prepared tracks go to OUT/data/)")
    names = base_model or ["spliceai"]
    given = weights or [None] * len(names)
    if len(given) != len(names):
        raise UsageError(f"{len(given)} --weights for {len(names)} --base-model")
    dirs = []
    for name, w in zip(names, given):
        folder = Path(out) / "data" / name
        prepare(
            folder, name, w, flank=flank, models_dir=models_dir, fasta=fasta, gtf=gtf, profile=profile, device=device
        )
        dirs.append(folder)
    return dirs


def _variant_metrics_text(metrics: dict) -> str:
    from meta_layer_cli.jobs.variants import format_variant_evaluation

    return format_variant_evaluation(metrics)
