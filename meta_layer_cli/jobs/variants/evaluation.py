"""``metalayer evaluate --checkpoint DELTA --variants TABLE``: a variant checkpoint's metrics on a measured
table of exons it never saw, beside the raw base-model deltas."""

from __future__ import annotations

import logging
import os

import numpy as np

from meta_layer_cli.io.json_values import json_safe
from meta_layer_cli.jobs.variants.common import (
    checkpoint_rows,
    groups_by_source,
    majority_threshold,
    metrics_of_base,
    metrics_of_model,
    metrics_table,
    seen_rows,
)
from meta_layer_cli.runtime.errors import InputDataError

logger = logging.getLogger(__name__)


def evaluate_variant_checkpoint(
    checkpoint: str | os.PathLike,
    table,
    device: str | None = None,
    allow_seen: bool = False,
    weights: str | os.PathLike | None = None,
    models_dir: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
) -> dict:
    """A variant checkpoint's metrics on a measured table (``metalayer evaluate --checkpoint --variants``).

    ``table``: see :func:`read_measured_table`. Per data set (``source``, split by target kind), on the rows
    with a measured target: the checkpoint's Pearson / Spearman with the target and AUROC / AUPRC for
    ``|target| >= threshold`` (its own thresholds), with its calibrations applied as ``predict`` applies
    them (a quantile-calibrated checkpoint adds ``coverage``, the fraction of targets inside its interval),
    and the raw base-model deltas on the same rows (:func:`base_delta_metrics`), as ``metrics.json`` of
    ``train-delta`` reports them. The base model is the checkpoint's
    (:meth:`~meta_layer_cli.base_models.record.BaseModelRecord.load`; ``weights`` / ``models_dir`` to find it).

    Rows of exons the checkpoint was trained or calibrated on are refused (InputDataError) unless
    ``allow_seen``; then they are evaluated with the rest and counted in ``seen_rows``.

    Returns ``{"checkpoint", "model", "base_model", "rows", "exons", "seen_rows", "thresholds",
    "sets": {set: {"model": metrics, "base": base metrics}}}``.
    """
    from meta_layer_cli.inference.variant_models import load_variant_predictor
    from meta_layer_cli.runtime.device import resolve_device

    device = str(resolve_device(device))
    predictor = load_variant_predictor(checkpoint, device)
    ds, thresholds = checkpoint_rows(predictor, table, device, weights, models_dir, cache)
    seen, what = seen_rows(predictor, ds)
    if seen.any():
        if not allow_seen:
            raise InputDataError(
                f"{what}: their metrics would not be held-out metrics; give a table of other "
                "exons, or --allow-seen to evaluate anyway"
            )
        logger.warning(f"{what}: evaluated anyway (--allow-seen), the metrics are optimistic")
    scored = predictor.scored(ds, device)
    sets = {}
    for name, rows in groups_by_source(ds).items():
        thr = majority_threshold(ds, rows, thresholds)
        model_metrics = metrics_of_model(scored, ds, rows, thr)
        if "lo" in scored:
            inside = (scored["lo"][rows] <= ds.target[rows]) & (ds.target[rows] <= scored["hi"][rows])
            model_metrics["coverage"] = float(inside.mean())
        sets[name] = {"model": model_metrics, "base": metrics_of_base(ds, rows, thr)}
    return json_safe(
        {
            "checkpoint": str(checkpoint),
            "model": predictor.model.config.architecture,
            "base_model": predictor.record.portable(),
            "rows": len(ds),
            "exons": int(len(np.unique(ds.groups.astype(str)))),
            "seen_rows": int(seen.sum()),
            "thresholds": thresholds,
            "calibration": predictor.heldout.describe() if predictor.heldout is not None else None,
            "sets": sets,
        }
    )


def format_variant_evaluation(metrics: dict) -> str:
    """:func:`evaluate_variant_checkpoint`'s result as a text table (the checkpoint vs the best raw delta)."""
    rows = [
        (name, f"{metrics['model']} (checkpoint)", both["model"], both["base"])
        for name, both in metrics["sets"].items()
    ]
    thresholds = {name: both["model"]["threshold"] for name, both in metrics["sets"].items()}
    lines = [metrics_table(rows, metrics["base_model"]["name"], thresholds)]
    coverage = {
        name: both["model"]["coverage"] for name, both in metrics["sets"].items() if "coverage" in both["model"]
    }
    if coverage:
        lines.append(f"interval coverage ({metrics['calibration']}): {coverage}")
    lines.append(
        f"{metrics['rows']} rows, {metrics['exons']} exons"
        + (
            f"; {metrics['seen_rows']} rows of exons the checkpoint has seen"
            if metrics["seen_rows"]
            else "; none of them seen by the checkpoint"
        )
    )
    return "\n".join(lines)
