"""The main job on built-in data (``metalayer demo``): SpliceAI on real demo genes, train, compare, report."""

from __future__ import annotations

import os
from pathlib import Path

from meta_layer_cli.io.demo import demo_gene_ids, demo_gene_length
from meta_layer_cli.jobs.canonical import (
    CanonicalResult,
    builtin_config,
    run_canonical_training,
    write_run_report,
)


def demo_gene_subset(max_length: int = 40_000, every: int = 2) -> list[str]:
    """The demo job's genes: every ``every``-th demo gene no longer than ``max_length`` nt (by id)."""
    short = [g for g in demo_gene_ids() if demo_gene_length(g) <= max_length]
    return short[::every]


def run_demo(out_dir: str | os.PathLike = "metalayer_demo", genes: list[str] | None = None, device: str = "auto",
             epochs: int | None = None, progress: bool = True,
             profile: str | None = None) -> tuple[CanonicalResult, Path]:  # fmt: skip
    """SpliceAI tracks for demo genes (cached in ``OUT/cache``), the lightweight meta model trained on them,
    evaluated on held-out genes; writes ``OUT/report.html``. Reruns retrain (the tracks stay cached).
    Returns (result, report path)."""
    out = Path(out_dir)
    overrides = {"training.progress": progress}
    if epochs is not None:
        overrides["training.epochs"] = epochs
    result = run_canonical_training(
        config=builtin_config("lightweight"), output_dir=out / "run", overrides=overrides, profile=profile,
        genes=genes or demo_gene_subset(), tracks_cache=str(out / "cache"), device=device, overwrite=True,
    )  # fmt: skip
    split = result.split
    notes = [f"split by gene, seed 0: {len(split['train'])} training, {len(split['validation'])} validation, "
             f"{len(split['test'])} held-out test genes"]  # fmt: skip
    report = write_run_report(result, out / "report.html", "metalayer demo", notes)
    return result, report
