"""The main job on built-in data (``metalayer demo``): SpliceAI on real demo genes, train, compare, report."""

from __future__ import annotations

import json
import os
from pathlib import Path

from meta_layer_cli.artifacts import load_gene_arrays
from meta_layer_cli.io.demo import demo_gene_ids, demo_gene_length
from meta_layer_cli.jobs.canonical import CanonicalResult, builtin_config, run_canonical_training


def demo_gene_subset(max_length: int = 40_000, every: int = 2) -> list[str]:
    """The demo job's genes: every ``every``-th demo gene no longer than ``max_length`` nt (by id)."""
    short = [g for g in demo_gene_ids() if demo_gene_length(g) <= max_length]
    return short[::every]


def run_demo(out_dir: str | os.PathLike = "metalayer_demo", genes: list[str] | None = None, device: str = "cpu",
             epochs: int | None = None, progress: bool = True) -> tuple[CanonicalResult, Path]:  # fmt: skip
    """The main job on built-in data: SpliceAI tracks for demo genes (cached), train the lightweight
    meta model, evaluate on held-out genes, write ``report.html``. Returns (result, report path)."""
    from meta_layer_cli.evaluation.report import write_report
    from meta_layer_cli.models.apply import recalibrate_arrays
    from meta_layer_cli.models.checkpoint import load_model
    from meta_layer_cli.models.structure import structure_from_config

    out = Path(out_dir)
    overrides = {"training.progress": progress}
    if epochs is not None:
        overrides["training.epochs"] = epochs
    result = run_canonical_training(
        config=builtin_config("lightweight"), output_dir=str(out / "run"), overrides=overrides,
        genes=genes or demo_gene_subset(), tracks_cache=str(out / "cache"), device=device,
    )  # fmt: skip
    model, config = load_model(result.checkpoint_path, device)
    dirs = [Path(b["tracks"]) for b in config["run"]["base_models"]]
    _, test = load_gene_arrays(dirs, result.split["test"])
    shown = max(test, key=lambda g: (int((g.labels > 0).sum()), -len(g)))
    from meta_layer_cli.evaluation.evaluator import base_probabilities

    gene = {"gene_id": shown.gene_id, "labels": shown.labels, "base": base_probabilities(shown.tracks, result.channels),
            "meta": recalibrate_arrays(model, shown.codes, shown.tracks, device=device,
                                       structure=structure_from_config(config))}  # fmt: skip

    metrics = json.loads((result.output_dir / "metrics.json").read_text())
    notes = [
        f"base model: SpliceAI; {len(result.split['train'])} training, {len(result.split['validation'])} validation, "
        f"{len(result.split['test'])} held-out test genes (split by gene, seed 0)",
        f"timing: {result.timing}",
    ]
    report = write_report(out / "report.html", metrics, "metalayer demo", gene, notes)
    return result, report
