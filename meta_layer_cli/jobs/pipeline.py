"""``metalayer pipeline``: one config, the whole chain on one machine: prepare -> train-canonical -> evaluate ->
(predict) -> (score-vcf). Each step is the same library function the command of that name calls; a rerun
skips what is done (prepared genes, a finished run whose data and config did not change) and resumes what was
interrupted (a training run continues from its last epoch). Every input and output is checked before the first
expensive step (:func:`preflight`). For many machines,
``scripts/workflow/Snakefile`` runs the same steps as separate, sharded jobs.

A starter config: ``metalayer init-config pipeline``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Literal

from pydantic import Field

from meta_layer_cli.artifacts import open_source
from meta_layer_cli.io.atomic import write_json_atomic
from meta_layer_cli.runtime.config import StrictSection, load_yaml_config, parse_overrides
from meta_layer_cli.runtime.errors import InputDataError, UpToDate, UsageError
from meta_layer_cli.training.config import SPLICEAI_TEST_CHROMOSOMES

logger = logging.getLogger(__name__)


class PipelineConfig(StrictSection):
    """What ``metalayer pipeline`` runs. Paths are relative to the working directory."""

    fasta: str
    annotation: str  # GTF/GFF3, a SpliceAI annotation table, grch37 or grch38
    base_model: str = "openspliceai"
    weights: str | None = None  # default: the lookup ($METALAYER_MODELS, models_dir)
    flank: int | None = Field(None, gt=0, le=100_000)
    models_dir: str | None = None
    transcripts: str = "canonical"
    biotype: list[str] | None = None
    out: str = "runs/pipeline"
    test_chromosomes: list[str] = Field(default_factory=lambda: list(SPLICEAI_TEST_CHROMOSOMES), min_length=1)
    split: Literal["chromosome", "gene", "block"] | None = None  # None: the train config's (a genome: chromosome)
    test_fraction: float | None = Field(None, gt=0, lt=1)  # gene and block splits: share of genes held out (0.2)
    train_config: str | None = None  # a train-canonical config (metalayer init-config canonical)
    train_set: dict = Field(default_factory=dict)  # extra train-canonical keys, e.g. {"training.epochs": 5}
    profile: str | None = None
    device: str | None = None
    predict_genes: list[str] | None = None  # genes to write recalibrated probabilities (and bigWigs) for
    vcf: str | None = None  # a VCF to score with the trained meta-layer
    distance: int = Field(50, ge=0, le=4999)


#: ``--set`` keys in these sections of the train-canonical config go to the training step (``train_set``)
TRAIN_SECTIONS = ("training", "model", "split", "structure")


def pipeline_settings(
    config: str | os.PathLike | dict, overrides: list[str] | dict | None = None
) -> tuple[PipelineConfig, dict]:
    """The pipeline config with ``overrides`` applied, and the training step's extra keys (``train_set``).

    An override in a section of the train-canonical config (:data:`TRAIN_SECTIONS`, e.g.
    ``training.epochs=5``) goes to the training step, as ``train_set.training.epochs=5`` does; any other
    key must be a pipeline key (an unknown one is a usage error naming it)."""
    items = dict(overrides) if isinstance(overrides, dict) else parse_overrides(list(overrides or []))
    for_training = {k: v for k, v in items.items() if k.replace("__", ".").split(".")[0] in TRAIN_SECTIONS}
    cfg = load_yaml_config(PipelineConfig, config, {k: v for k, v in items.items() if k not in for_training})
    return cfg, {**cfg.train_set, **for_training}


def run_pipeline(
    config: str | os.PathLike | dict, overrides: list[str] | dict | None = None, progress: bool = True
) -> dict:
    """Run the chain (module docstring); returns ``{"prepared", "checkpoint", "evaluation", ...}`` paths and
    the held-out metrics, also written to ``OUT/pipeline.json``."""
    from meta_layer_cli.jobs.canonical import evaluate_checkpoint_metrics, run_canonical_training
    from meta_layer_cli.jobs.prepare import prepare
    from meta_layer_cli.jobs.run_folder import FolderPolicy

    cfg, train_set = pipeline_settings(config, overrides)
    out = Path(cfg.out)
    prepared, run = out / "prepared", out / "run"
    preflight(cfg, train_set)  # every input and output, before anything is read at length
    source = open_source(None, cfg.fasta, cfg.annotation, None, cfg.transcripts, cfg.biotype)
    check_split_before_preparing(cfg, train_set, source, prepared)  # not after an hour of base-model predictions
    # predict_genes entries resolved now (names, ids...), not when the predict step reaches them
    predict_ids = [e.gene_id for e in source.select(cfg.predict_genes).entries] if cfg.predict_genes else None
    logger.info(f"pipeline: prepare {cfg.base_model} tracks in {prepared}")
    prepare(
        prepared,
        cfg.base_model,
        cfg.weights,
        flank=cfg.flank,
        models_dir=cfg.models_dir,
        profile=cfg.profile,
        device=cfg.device,
        progress=progress,
        source=source,
    )
    checkpoint = run / "checkpoints" / "best"
    logger.info(f"pipeline: train-canonical into {run}")
    try:
        run_canonical_training(
            base_model=cfg.base_model,
            base_weights=cfg.weights,
            flank=cfg.flank,
            data=[str(prepared)],
            test_chroms=cfg.test_chromosomes,
            split=cfg.split,
            test_fraction=cfg.test_fraction,
            config=cfg.train_config,
            profile=cfg.profile,
            device=cfg.device,
            output_dir=run,
            folder=FolderPolicy(resume=True, overwrite=False, if_changed=True),
            overrides={**({"models_dir": cfg.models_dir} if cfg.models_dir else {}), **train_set},
        )
    except UpToDate as done:
        logger.info(f"pipeline: {done}")
    held_out = evaluate_checkpoint_metrics(checkpoint, [str(prepared)], device=cfg.device, models_dir=cfg.models_dir)
    meta, base = held_out["meta"], held_out["base"]
    result = {"prepared": str(prepared), "checkpoint": str(checkpoint), "held_out": held_out}
    write_json_atomic(out / "evaluation.json", result["held_out"])
    if cfg.predict_genes:
        from meta_layer_cli.jobs.predict import predict_genes

        table = out / "predictions.parquet"
        predict_genes(
            checkpoint,
            table,
            data=[prepared],
            genes=predict_ids,
            bigwig=str(out / "bigwig" / "meta"),
            models_dir=cfg.models_dir,
            profile=cfg.profile,
            device=cfg.device,
            progress=progress,
        )
        result["predictions"] = str(table)
    if cfg.vcf:
        from meta_layer_cli.inference.vcf import score_vcf
        from meta_layer_cli.runtime.device import resolve_device

        scored = out / "scored.vcf.gz"
        score_vcf(
            cfg.vcf,
            scored,
            cfg.fasta,
            cfg.annotation,
            weights=cfg.weights,
            models_dir=cfg.models_dir,
            distance=cfg.distance,
            device=str(resolve_device(cfg.device)),
            progress=progress,
            checkpoints=[checkpoint],
        )
        result["scored_vcf"] = str(scored)
    write_json_atomic(out / "pipeline.json", result)
    logger.info(
        f"pipeline: done; held-out PR-AUC macro base {base['pr_auc_macro']:.4f} -> meta "
        f"{meta['pr_auc_macro']:.4f} ({json.dumps(str(out / 'pipeline.json'))})"
    )
    return result


def check_split_before_preparing(cfg: PipelineConfig, train_set: dict, source, prepared: Path) -> None:
    """Make the training step's gene split on the annotation's genes, before any base-model prediction: a split
    that cannot be made (e.g. every gene on the test chromosomes) stops the pipeline now, with the same message
    ``train-canonical`` would give after ``prepare``."""
    from meta_layer_cli.jobs.canonical import TrainingData, checked_split, gene_table, resolve_canonical_config

    run_cfg = resolve_canonical_config(
        cfg.train_config, train_set, cfg.profile, data=[str(prepared)], test_chroms=cfg.test_chromosomes
    )
    entries = source.entries
    genes = gene_table(
        {
            "gene_id": [e.gene_id for e in entries],
            "chrom": [e.chrom for e in entries],
            "start": [e.start for e in entries],
            "end": [e.end for e in entries],
            "length": [e.length for e in entries],
        }
    )
    data = TrainingData(
        [],
        [],
        [e.gene_id for e in entries],
        True,
        {},
        None,
        genes,
        contig_chromosomes=dict(source.info.get("chromosomes") or {}),
    )
    checked_split(
        run_cfg,
        data,
        {
            "test_chroms": "test_chromosomes: [{chrom}] in the pipeline config",
            "gene_split": "--set split.method=gene --set split.test=0.2",
            "shares": "--set split.test=0.1 --set split.validation=0.05",
        },
    )


def _outputs(out: Path) -> list[Path]:
    """Everything a pipeline run writes under ``out``."""
    names = (
        "prepared",
        "run",
        "evaluation.json",
        "pipeline.json",
        "predictions.parquet",
        "predictions.parquet.base",
        "bigwig",
        "scored.vcf.gz",
    )
    return [out / name for name in names]


def preflight(cfg: PipelineConfig, train_set: dict) -> None:
    """What the chain will need, checked before it reads the genome (not hours later when a step reaches it):
    the inputs exist (FASTA, annotation, VCF, train config, weights), the train config (with ``train_set``) and
    the hardware settings are valid, the output folder is writable and holds none of the inputs, the VCF's
    header reads. (:func:`run_pipeline` then resolves ``predict_genes`` and makes the split on the annotation's
    genes before ``prepare``.)"""
    from meta_layer_cli.base_models import BASE_MODELS
    from meta_layer_cli.base_models.weights import find_weights
    from meta_layer_cli.io.annotation import BUILTIN_TABLES
    from meta_layer_cli.io.atomic import refuse_overwriting_inputs
    from meta_layer_cli.jobs.canonical import resolve_canonical_config
    from meta_layer_cli.runtime.config import hardware_settings

    for key, path in (
        ("fasta", cfg.fasta),
        ("annotation", cfg.annotation),
        ("vcf", cfg.vcf),
        ("train_config", cfg.train_config),
        ("models_dir", cfg.models_dir),
    ):
        if path is None or (key == "annotation" and path in BUILTIN_TABLES):
            continue
        if not Path(path).expanduser().exists():
            raise InputDataError(f"pipeline {key}: {path} does not exist")
    if cfg.base_model not in BASE_MODELS or cfg.base_model == "precomputed":
        raise UsageError(
            f"pipeline base_model: {cfg.base_model!r} is not a base model the pipeline can run "
            f"({', '.join(b for b in BASE_MODELS if b != 'precomputed')})"
        )
    find_weights(cfg.base_model, cfg.weights, cfg.flank, cfg.models_dir)
    hardware_settings(cfg.profile, device=cfg.device)
    resolve_canonical_config(
        cfg.train_config,
        {**({"models_dir": cfg.models_dir} if cfg.models_dir else {}), **train_set},
        cfg.profile,
        base_model=cfg.base_model,
        data=[str(Path(cfg.out) / "prepared")],
        test_chroms=cfg.test_chromosomes,
        split=cfg.split,
        test_fraction=cfg.test_fraction,
        device=cfg.device,
    )
    out = Path(cfg.out)
    refuse_overwriting_inputs(
        {"out": _outputs(out)},
        {
            "fasta": cfg.fasta,
            "annotation": cfg.annotation,
            "vcf": cfg.vcf,
            "weights": cfg.weights,
            "train_config": cfg.train_config,
            "models_dir": cfg.models_dir,
        },
    )
    _check_writable(out)
    if cfg.vcf:
        from meta_layer_cli.io.vcf import VcfReader

        with VcfReader(cfg.vcf):  # reads the header: not a VCF, or unreadable, fails here
            pass


def _check_writable(out: Path) -> None:
    import tempfile

    if out.exists() and not out.is_dir():
        raise UsageError(f"pipeline out: {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as err:
        raise UsageError(f"pipeline out: cannot write to {out} ({err.strerror or err})") from None
