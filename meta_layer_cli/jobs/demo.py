"""The main job on built-in data (``metalayer demo``): SpliceAI on real demo genes, train, compare, report."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from meta_layer_cli.io.demo import demo_gene_ids, demo_gene_length
from meta_layer_cli.jobs.canonical import (
    CanonicalResult,
    builtin_config,
    read_finished_run,
    run_canonical_training,
    write_run_report,
)
from meta_layer_cli.jobs.run_folder import FolderPolicy
from meta_layer_cli.runtime.errors import UpToDate

logger = logging.getLogger(__name__)


def demo_gene_subset(max_length: int = 40_000, every: int = 2) -> list[str]:
    """The demo job's genes: every ``every``-th demo gene no longer than ``max_length`` nt (by id)."""
    short = [g for g in demo_gene_ids() if demo_gene_length(g) <= max_length]
    return short[::every]


def run_demo(
    out_dir: str | os.PathLike = "metalayer_demo",
    genes: list[str] | None = None,
    device: str | None = None,
    epochs: int | None = None,
    progress: bool = True,
    profile: str | None = None,
    overwrite: bool = False,
) -> tuple[CanonicalResult, Path]:
    """SpliceAI tracks for demo genes (cached in ``OUT/cache``), the lightweight meta model trained on them,
    evaluated on held-out genes; writes ``OUT/report.html``. Returns (result, report path).

    A rerun follows the run-folder rule of ``train-canonical --if-changed`` (see
    :class:`~meta_layer_cli.jobs.run_folder.RunFolder`), so a finished demo is never deleted by accident: the
    same genes and settings train nothing and return the finished run's results; other settings (``epochs``,
    ``genes``) train again; an interrupted demo continues where it stopped. ``overwrite`` trains again from
    scratch whatever the folder holds.
    """
    out = Path(out_dir)
    overrides = {"training.progress": progress}
    if epochs is not None:
        overrides["training.epochs"] = epochs
    try:
        result = run_canonical_training(
            config=builtin_config("lightweight"),
            output_dir=out / "run",
            overrides=overrides,
            profile=profile,
            genes=genes or demo_gene_subset(),
            tracks_cache=str(out / "cache"),
            device=device,
            folder=FolderPolicy(resume=not overwrite, overwrite=overwrite, if_changed=not overwrite),
        )
    except UpToDate as done:
        logger.info(f"{done}: showing the finished demo's results (--overwrite trains it again)")
        return read_finished_run(out / "run"), out / "report.html"
    report = write_run_report(result, out / "report.html", "metalayer demo")
    return result, report
