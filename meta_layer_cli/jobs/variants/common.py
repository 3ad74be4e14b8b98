"""What the variant verbs share: the measured-table reader, a checkpoint's predictions on a table and
which of its rows the checkpoint saw, per-source metrics and their table."""

from __future__ import annotations

import logging
import math

import numpy as np
import polars as pl

from meta_layer_cli.evaluation.variant_metrics import base_delta_metrics, classifier_metrics, regression_metrics
from meta_layer_cli.features.variants import DEFAULT_THRESHOLDS, TARGET_KINDS, VariantDataset
from meta_layer_cli.runtime.errors import InputDataError
from meta_layer_cli.training.variant_config import DataSpec

logger = logging.getLogger(__name__)


def metrics_table(rows: list[tuple[str, str, dict, dict]], base_model: str, thresholds: dict) -> str:
    """``rows`` of (set, predictor label, model metrics, :func:`base_delta_metrics`) as a text table: each set's
    model line, then its best raw base-model delta on the same rows."""
    head = f"{'set':<18} {'rows':>6}  {'predictor':<38} {'Pearson':>8} {'Spearman':>8} {'AUROC':>7} {'AUPRC':>7}"
    lines = [head, "-" * len(head)]

    def row(name: str, n: int, label: str, m: dict) -> str:
        def f(key: str) -> str:
            v = m.get(key, m.get(f"{key}_abs"))
            return f"{v:8.3f}" if isinstance(v, float) and math.isfinite(v) else f"{'-':>8}"

        return f"{name:<18} {n:>6}  {label:<38} {f('pearson')} {f('spearman')} {f('auroc')[1:]:>7} {f('auprc')[1:]:>7}"

    for name, label, metrics, base in rows:
        lines.append(row(name, metrics["n"], label, metrics))
        best = base["best"]
        sign = "-" if base[best]["sign"] < 0 else ""
        lines.append(row(name, base[best]["n"], f"{base_model} raw: {sign}{best}", base[best]))
    lines.append(f"AUROC/AUPRC: |target| >= threshold per set {thresholds}; classifier correlations use |target|")
    return "\n".join(lines)


def groups_by_source(dataset: VariantDataset) -> dict[str, np.ndarray]:
    """Row indices per evaluation set: the source, split by target kind if a source mixes kinds."""
    out: dict[str, np.ndarray] = {}
    for source in dict.fromkeys(dataset.sources.tolist()):
        rows = np.flatnonzero(dataset.sources == source)
        kinds = np.unique(dataset.kind[rows])
        if len(kinds) == 1:
            out[str(source)] = rows
        else:
            for k in kinds:
                out[f"{source}/{TARGET_KINDS[int(k)]}"] = rows[dataset.kind[rows] == k]
    return out


def majority_threshold(dataset: VariantDataset, rows: np.ndarray, thresholds: dict) -> float:
    kind = TARGET_KINDS[int(np.bincount(dataset.kind[rows]).argmax())]
    return float(thresholds[kind])


def metrics_of_model(scored: dict, dataset: VariantDataset, rows: np.ndarray, threshold: float) -> dict:
    if "delta" in scored:
        return regression_metrics(scored["delta"][rows], dataset.target[rows], threshold)
    return classifier_metrics(scored["probability"][rows], dataset.target[rows], threshold)


def metrics_of_base(dataset: VariantDataset, rows: np.ndarray, threshold: float) -> dict:
    return base_delta_metrics({k: v[rows] for k, v in dataset.base_deltas.items()}, dataset.target[rows], threshold)


def read_measured_table(table) -> pl.DataFrame:
    """A measured variant table: a DataFrame, a config entry (``{"loader": "vexseq", "path": ...}``), or a
    CSV / TSV / parquet file with the loaders' columns (:mod:`meta_layer_cli.io.assays`; ``target`` and
    ``group`` needed). Vex-seq and MaPSy files as published are recognised by their columns and loaded
    with their loaders."""
    from meta_layer_cli.io.assays import load_mapsy, load_vexseq
    from meta_layer_cli.io.tables import read_table

    if isinstance(table, pl.DataFrame):
        frame = table
    elif isinstance(table, (dict, DataSpec)):
        frame = (table if isinstance(table, DataSpec) else DataSpec(**table)).load()
    else:
        frame = read_table(table)
        if "target" not in frame.columns and {"REF_SEQ", "ALT_SEQ", "HepG2_delta_psi"} <= set(frame.columns):
            frame = load_vexseq(table)
        elif "target" not in frame.columns and {"WT_SEQ", "MUT_SEQ"} <= set(frame.columns):
            frame = load_mapsy(table)
    missing = [c for c in ("target", "group") if c not in frame.columns]
    if missing:
        raise InputDataError(
            f"the variant table has no {' or '.join(missing)} column: a measured table needs the "
            "measured effect (target, target_kind) and the exon of each row (group)"
        )
    return frame


def checkpoint_rows(predictor, table, device: str, weights=None, models_dir=None, cache=None):
    """(the table's rows with a measured target as a dataset for the checkpoint, its base model)."""
    from meta_layer_cli.features.variants import build_variant_dataset

    frame = read_measured_table(table)
    base = predictor.record.load(device=device, weights=weights, models_dir=models_dir)
    run = predictor.run
    thresholds = {**DEFAULT_THRESHOLDS, **(run.get("thresholds") or {})}
    ds = build_variant_dataset(
        frame,
        base,
        window=predictor.window,
        cache=cache,
        delta_window=run.get("delta_window", 50),
        thresholds=thresholds,
    )
    ds = ds.subset(np.isfinite(ds.target))
    if len(ds) == 0:
        raise InputDataError("the variant table has no row with a measured target")
    return ds, thresholds


def seen_rows(predictor, ds: VariantDataset) -> tuple[np.ndarray, str]:
    """Rows of exons the checkpoint was trained (or calibrated) on, and a phrase naming them for errors."""
    seen = predictor.seen_groups
    if seen is None:
        raise InputDataError(
            f"{predictor.path} does not record the exons it was trained on, so held-out rows "
            "cannot be told from seen ones"
        )
    mask = np.isin(ds.groups.astype(str), sorted(seen))
    exons = sorted(set(ds.groups[mask].astype(str).tolist()))
    what = (
        (
            f"{int(mask.sum())} of {len(ds)} rows ({len(exons)} exon(s), e.g. {exons[0]}) belong to exons the "
            "checkpoint was trained or calibrated on"
        )
        if exons
        else ""
    )
    return mask, what
