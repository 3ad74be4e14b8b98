"""End-to-end jobs composed from the layers below: base tracks -> training -> evaluation."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from meta_layer_cli.artifacts import GeneArrays, common_gene_ids, demo_genes, load_gene_arrays, predict_tracks
from meta_layer_cli.base_models import load_base_model
from meta_layer_cli.io.atomic import write_json_atomic
from meta_layer_cli.io.demo import demo_gene_ids, demo_gene_info, demo_gene_length
from meta_layer_cli.training.config import RunConfig, load_run_config

CANONICAL_DEFAULTS = {
    "base_model": "spliceai",
    "epochs": 30,
    "sequence_encoder": "cnn",
    "output_dir": None,
    "dataset": "demo",
    "train_genes": None,
    "test_genes": None,
    "base_weights": None,
}


def default_cache_dir() -> Path:
    """Where base-model tracks are cached: ``$METALAYER_CACHE`` or ``~/.cache/metalayer``."""
    return Path(os.environ.get("METALAYER_CACHE", Path.home() / ".cache" / "metalayer"))


def default_demo_genes(n_genes: int) -> list[str]:
    """The ``n_genes`` shortest demo genes (cheap to predict on 2 CPU cores), by id."""
    ids = sorted(demo_gene_ids(), key=lambda g: (demo_gene_length(g), int(g)))
    return sorted(ids[:n_genes], key=int)


def base_tracks(
    name: str,
    weights: str | None,
    gene_ids: list[str],
    cache: str | os.PathLike | None,
    device: str = "cpu",
    progress: bool = True,
) -> tuple[Path, dict]:
    """Demo-gene tracks of one base model in the cache (keyed by model and weights checksum), resumable."""
    model = load_base_model(name, weights=weights, device=device)
    directory = Path(cache or default_cache_dir()).expanduser() / "tracks" / f"{model.name}-{model.weights_checksum}"
    manifest = predict_tracks(
        model, demo_genes(gene_ids), directory, genome_build="hg19", source={"dataset": "demo"}, progress=progress
    )
    return directory, manifest


@dataclass
class CanonicalResult:
    """What :func:`run_canonical_training` returns."""

    canonical_test_metrics: dict
    base_test_metrics: dict | None
    checkpoint_path: Path
    output_dir: Path
    split: dict
    history: list[dict]
    thresholds: dict
    timing: dict
    channels: list[str]
    variant_evaluation: object | None = None
    reliability: dict = field(default_factory=dict)
    pr_curves: dict = field(default_factory=dict)
    # test metrics of further variants, e.g. "meta_per_nucleotide" (the meta model without the decoder)
    extra_test_metrics: dict = field(default_factory=dict)


def resolve_canonical_config(config=None, overrides: dict | None = None, **arguments) -> RunConfig:
    """Merge a config (path, dict or :class:`RunConfig`) with keyword arguments.

    Arguments left at their defaults do not override the config. Extra keyword
    ``overrides`` use ``section__key=value`` (or ``"section.key"`` in a dict).
    """
    dotted = {}
    for key, value in arguments.items():
        if key in CANONICAL_DEFAULTS and value == CANONICAL_DEFAULTS[key] and config is not None:
            continue
        target = {"epochs": "training.epochs", "sequence_encoder": "model.sequence_encoder"}.get(key, key)
        if value is not None or key in ("train_genes", "test_genes"):
            dotted[target] = value
    for key, value in (overrides or {}).items():
        dotted[key.replace("__", ".")] = value
    return load_run_config(config, dotted)


def run_canonical_training(
    base_model: str | list[str] = "spliceai",
    epochs: int = 30,
    sequence_encoder: str = "cnn",
    output_dir: str | os.PathLike | None = None,
    dataset: str = "demo",
    train_genes: list[str] | None = None,
    test_genes: list[str] | None = None,
    base_weights: str | list[str | None] | None = None,
    config: str | os.PathLike | dict | RunConfig | None = None,
    **overrides,
) -> CanonicalResult:
    """Train the meta-layer on demo genes and evaluate it against the base model on held-out genes.

    Base-model tracks are cached (``tracks_cache``, keyed by model and weights
    checksum) and reused by later runs. Genes are split by gene (seeded) or by
    chromosome; ``train_genes``/``test_genes`` fix the split (validation genes
    are then drawn from the training genes). Any config key can be overridden as
    ``section__key=value`` (``training__lr=1e-3``), a top-level key (``max_genes=50``), or a dict
    ``overrides={"training.lr": 1e-3}``. Returns a :class:`CanonicalResult`.
    """
    from meta_layer_cli.models import build_meta_model
    from meta_layer_cli.models.checkpoint import update_checkpoint_config
    from meta_layer_cli.training import Trainer, TrainerConfig, split_genes
    from meta_layer_cli.training.trainer import BEST, distributed_rank

    nested = overrides.pop("overrides", None) or {}  # a dict of dotted keys, e.g. {"training.lr": 1e-3}
    cfg = resolve_canonical_config(
        config, {**overrides, **nested}, base_model=base_model, epochs=epochs, sequence_encoder=sequence_encoder,
        output_dir=str(output_dir) if output_dir is not None else None, dataset=dataset,
        train_genes=train_genes, test_genes=test_genes, base_weights=base_weights,
    )  # fmt: skip
    out = Path(cfg.output_dir)
    rank, _ = distributed_rank()
    if cfg.genes:
        ids = list(cfg.genes)
    elif cfg.train_genes is not None and cfg.test_genes is not None:
        ids = []  # exactly the genes named in the split
    else:
        ids = default_demo_genes(cfg.max_genes) if cfg.max_genes else demo_gene_ids()
    ids = list(dict.fromkeys([*ids, *(cfg.train_genes or []), *(cfg.test_genes or [])]))
    timing: dict[str, float] = {}
    started = time.perf_counter()
    dirs, described = [], []
    for name, weights in cfg.base_models():
        if rank == 0:
            directory, manifest = base_tracks(name, weights, ids, cfg.tracks_cache, cfg.device, cfg.training.progress)
        _barrier()
        if rank != 0:
            directory, manifest = base_tracks(name, weights, ids, cfg.tracks_cache, cfg.device, False)
        dirs.append(directory)
        described.append({"name": name, "weights": weights, "weights_checksum": manifest["weights_checksum"],
                          "tracks": str(directory)})  # fmt: skip
    timing["base_tracks_s"] = round(time.perf_counter() - started, 2)
    available = set(common_gene_ids(dirs))
    ids = [g for g in ids if g in available]
    chromosomes = {g: demo_gene_info().get(g, {}).get("chrom") for g in ids}
    split = split_genes(
        ids, cfg.split.seed, cfg.split.validation, cfg.split.test, cfg.train_genes, cfg.test_genes,
        chromosomes, cfg.split.test_chromosomes,
    )  # fmt: skip
    channels, arrays = load_gene_arrays(dirs, ids)
    by_id = {g.gene_id: g for g in arrays}
    train, val, test = ([by_id[g] for g in part] for part in (split.train, split.validation, split.test))

    model = build_meta_model(cfg.model.model_copy(update={"channels": channels}))
    trainer_config = TrainerConfig(**cfg.training.model_dump(), device=cfg.device)
    started = time.perf_counter()
    state = Trainer(trainer_config).fit(model, channels, train, val, out / "checkpoints")
    timing["training_s"] = round(time.perf_counter() - started, 2)
    checkpoint = out / "checkpoints" / BEST
    if rank != 0:
        return CanonicalResult({}, None, checkpoint, out, split.to_dict(), state.history, {}, timing, channels)
    run_info = {"base_models": described, "channels": channels, "split": split.to_dict(), "config": cfg.model_dump()}
    update_checkpoint_config(checkpoint, {"run": run_info}, drop=("structure",))
    return finish_canonical_run(checkpoint, cfg.structure, cfg.device, state.history, timing, (val, test))


def finish_canonical_run(
    checkpoint: str | os.PathLike,
    structure: bool = True,
    device: str = "cpu",
    history: list[dict] | None = None,
    timing: dict | None = None,
    genes: tuple[list[GeneArrays], list[GeneArrays]] | None = None,
) -> CanonicalResult:
    """Fit the gene-structure decoder on the run's validation genes (``structure``), evaluate on its
    test genes, store decoder and thresholds in the checkpoint and write ``metrics.json`` beside
    ``checkpoints/``. ``run_canonical_training`` ends with it; it also upgrades a checkpoint trained
    without a decoder. ``genes``: the run's (validation, test) arrays if already loaded.
    """
    from meta_layer_cli.evaluation.evaluator import evaluate_meta, meta_probabilities
    from meta_layer_cli.models.checkpoint import load_model, update_checkpoint_config
    from meta_layer_cli.training.structure import fit_structure_decoder

    checkpoint = Path(checkpoint)
    out = checkpoint.parent.parent
    best, config = load_model(checkpoint, device)
    run = config.get("run")
    if not run:
        raise ValueError(f"{checkpoint}: no run information (was it written by `metalayer train`?)")
    channels = run["channels"]
    if genes is None:
        dirs = [Path(b["tracks"]) for b in run["base_models"]]
        genes = load_gene_arrays(dirs, run["split"]["validation"])[1], load_gene_arrays(dirs, run["split"]["test"])[1]
    val, test = genes
    timing = dict(timing or {})
    started = time.perf_counter()
    per_nt = meta_probabilities(best, val, device), meta_probabilities(best, test, device)
    decoder = None
    if structure:
        t = time.perf_counter()
        decoder, _ = fit_structure_decoder(per_nt[0], [g.labels for g in val], [g.codes for g in val])
        timing["structure_fit_s"] = round(time.perf_counter() - t, 2)
    evaluation = evaluate_meta(best, channels, test, val, device, decoder, per_nt)
    timing["evaluation_s"] = round(time.perf_counter() - started, 2)
    thresholds = {k: {str(c): t for c, t in v.items()} for k, v in evaluation.thresholds.items()}
    entries = {"run": {**run, "thresholds": thresholds}}
    if decoder is not None:
        entries["structure"] = decoder.to_dict()
    update_checkpoint_config(checkpoint, entries, drop=("structure",))
    history = history if history is not None else _saved_history(checkpoint)
    result = CanonicalResult(
        canonical_test_metrics=evaluation.meta,
        base_test_metrics=evaluation.base,
        checkpoint_path=checkpoint,
        output_dir=out,
        split=run["split"],
        history=history,
        thresholds=thresholds,
        timing=timing,
        channels=channels,
        reliability=evaluation.reliability,
        pr_curves=evaluation.pr_curves,
        extra_test_metrics=evaluation.extra,
    )
    write_json_atomic(
        out / "metrics.json",
        {
            "meta": evaluation.meta,
            "base": evaluation.base,
            **evaluation.extra,
            "structure": decoder.to_dict() if decoder is not None else None,
            "thresholds": thresholds,
            "timing": timing,
            "history": history,
            "split": run["split"],
            "reliability": evaluation.reliability,
            "pr_curves": evaluation.pr_curves,
            "base_models": run["base_models"],
        },
    )
    return result


def _saved_history(checkpoint: Path) -> list[dict]:
    state = checkpoint.parent / "last" / "trainer_state.json"
    return json.loads(state.read_text()).get("history", []) if state.is_file() else []


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()


def builtin_config(name: str) -> Path:
    """Path of a config shipped with the package (``default``, ``lightweight``, ``gpu``)."""
    from importlib.resources import files

    path = Path(str(files("meta_layer_cli.configs") / f"{name}.yaml"))
    if not path.is_file():
        raise FileNotFoundError(f"no built-in config {name!r} (default, lightweight, gpu)")
    return path




def evaluate_checkpoint(
    checkpoint: str | os.PathLike, genes: list[str] | None = None, device: str = "cpu"
) -> tuple[dict, dict | None]:
    """(meta metrics, base metrics) on the run's held-out genes (or ``genes``), from cached tracks."""
    from meta_layer_cli.evaluation.evaluator import evaluate_meta
    from meta_layer_cli.models.checkpoint import load_model
    from meta_layer_cli.models.structure import structure_from_config

    model, config = load_model(checkpoint, device)
    run = config.get("run")
    if not run:
        raise ValueError(f"{checkpoint}: no run information (was it written by `metalayer train`?)")
    dirs = [Path(b["tracks"]) for b in run["base_models"]]
    channels, test = load_gene_arrays(dirs, genes or run["split"]["test"])
    _, val = load_gene_arrays(dirs, run["split"]["validation"])
    evaluation = evaluate_meta(model, channels, test, val, device, structure_from_config(config))
    return evaluation.meta, evaluation.base
