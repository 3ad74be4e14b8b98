"""``metalayer calibrate --checkpoint DELTA --variants TABLE``: an isotonic map or a split-conformal interval
fitted on a measured table of exons the checkpoint never saw, written as a new checkpoint."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from meta_layer_cli.evaluation.variant_metrics import binned_calibration_error
from meta_layer_cli.io.atomic import write_json_atomic
from meta_layer_cli.io.json_values import json_safe
from meta_layer_cli.jobs.variants.common import checkpoint_rows, seen_rows
from meta_layer_cli.models.variant.heldout import conformal_half_width
from meta_layer_cli.runtime.errors import InputDataError, UsageError

logger = logging.getLogger(__name__)


COVERAGE_LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


@dataclass
class VariantCalibrationResult:
    """What :func:`calibrate_variant_checkpoint` returns; ``errors`` per target kind (also in
    ``calibration.json`` and the checkpoint's ``calibration_report``)."""

    checkpoint: Path
    method: str
    quantile: float | None
    rows: int
    exons: int
    errors: dict
    plot: Path
    calibration: object = field(repr=False, default=None)

    def summary(self) -> str:
        lines = [
            f"{self.method} calibration fitted on {self.rows} held-out rows ({self.exons} exons) -> "
            f"{self.checkpoint}: {self.calibration.describe()}"
        ]

        def f(v) -> str:
            return "-" if v is None else f"{v:.3g}"

        for kind, e in self.errors.items():
            if self.method == "isotonic":
                lines.append(
                    f"{kind}: binned |mean predicted - mean measured| {f(e['before'])} before, "
                    f"{f(e['after'])} after (in-sample), {f(e.get('after_cross_fitted'))} after "
                    "(cross-fitted by exon)"
                )
            else:
                lines.append(
                    f"{kind}: coverage of the {self.quantile:g} interval ±{e['half_width']:.3g}: "
                    f"{f(e['after'])} on the table (in-sample), {f(e.get('after_cross_fitted'))} "
                    f"cross-fitted by exon; before: {f(e['before'])} "
                    f"({e['before_interval']})"
                )
        return "\n".join(lines)


def _cross_fitted(
    method: str,
    delta: np.ndarray,
    target: np.ndarray,
    kinds: np.ndarray,
    groups: np.ndarray,
    quantile: float,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Honest after-values: the calibration fitted on half of the exons, applied to the other half, and back
    (None with fewer than two exons or too few rows per half)."""
    from meta_layer_cli.models.variant.heldout import HeldOutCalibration
    from meta_layer_cli.training.splits import grouped_kfold

    if len(np.unique(groups.astype(str))) < 2:
        return None
    out_delta, lo, hi = delta.copy(), np.full(len(delta), np.nan), np.full(len(delta), np.nan)
    for fit_rows, apply_rows in grouped_kfold(groups, 2, seed):
        try:
            cal = HeldOutCalibration.fit(method, delta[fit_rows], target[fit_rows], kinds[fit_rows], quantile)
        except ValueError:
            return None
        d, a, b = cal.apply(delta[apply_rows], kinds[apply_rows])
        out_delta[apply_rows] = d
        if a is not None:
            lo[apply_rows], hi[apply_rows] = a, b
    return out_delta, lo, hi


def _isotonic_errors(
    kind: str,
    rows: np.ndarray,
    delta: np.ndarray,
    after: np.ndarray,
    target: np.ndarray,
    crossed: tuple | None,
    curves: dict,
) -> dict:
    """Binned error of an isotonic map for one target kind: before, after (in-sample) and cross-fitted by exon;
    adds the kind's reliability curves to ``curves``."""
    before_err, before_curve = binned_calibration_error(delta[rows], target[rows])
    after_err, after_curve = binned_calibration_error(after[rows], target[rows])
    e = {"before": before_err, "after": after_err, "rows": int(rows.sum())}
    curves[f"{kind}: before"] = before_curve
    if crossed is not None:
        e["after_cross_fitted"], curves[f"{kind}: after (cross-fitted by exon)"] = binned_calibration_error(
            crossed[0][rows], target[rows]
        )
    else:
        curves[f"{kind}: after (in-sample)"] = after_curve
    return e


def _interval_coverage(
    kind: str,
    rows: np.ndarray,
    delta: np.ndarray,
    target: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    fitted,
    predictor,
    scored: dict,
    crossed: tuple | None,
    levels: list[float],
    cross_by_level: dict,
    curves: dict,
) -> dict:
    """Empirical coverage of a split-conformal interval for one target kind: before (the quantile heads' interval,
    if any), after (in-sample) and cross-fitted by exon; adds coverage-vs-level curves to ``curves``."""
    t, d = target[rows], delta[rows]
    inside = (lo[rows] <= t) & (t <= hi[rows])
    e = {"half_width": fitted.half_width[kind], "after": float(inside.mean()), "rows": int(rows.sum())}
    if "q10" in scored or predictor.model.config.calibration == "quantile":
        qs = predictor.model.quantile_levels
        low, high = f"q{round(qs[0] * 100):02d}", f"q{round(qs[-1] * 100):02d}"
        e["before"] = float(((scored[low][rows] <= t) & (t <= scored[high][rows])).mean())
        e["before_interval"] = f"the quantile heads' {low}-{high}"
    else:
        e["before"], e["before_interval"] = None, "the model gives no interval"
    if crossed is not None:
        e["after_cross_fitted"] = float(((crossed[1][rows] <= t) & (t <= crossed[2][rows])).mean())
    residual = np.abs(t - d)
    observed = []
    for level in levels:
        try:
            observed.append(float((residual <= conformal_half_width(residual, level)).mean()))
        except ValueError:
            observed.append(float("nan"))
    curves[f"{kind}: in-sample"] = {"mean_predicted": levels, "observed": observed, "count": [1] * len(levels)}
    if crossed is not None:
        cross = []
        for level in levels:
            c = cross_by_level[level]
            cross.append(float("nan") if c is None else float(((c[1][rows] <= t) & (t <= c[2][rows])).mean()))
        curves[f"{kind}: cross-fitted by exon"] = {
            "mean_predicted": levels,
            "observed": cross,
            "count": [1] * len(levels),
        }
    return e


def calibrate_variant_checkpoint(
    checkpoint: str | os.PathLike,
    table,
    out: str | os.PathLike,
    method: str = "isotonic",
    quantile: float = 0.9,
    device: str | None = None,
    overwrite: bool = False,
    weights: str | os.PathLike | None = None,
    models_dir: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
) -> VariantCalibrationResult:
    """Calibrate a delta predictor on a held-out measured table (``metalayer calibrate --checkpoint DELTA
    --variants TABLE``) -> a calibrated copy of the checkpoint in ``out``.

    ``method``: ``isotonic`` (a monotone map prediction -> measured delta, per target kind) or ``quantile``
    (a split-conformal interval: ``predicted ± q``, ``q`` the ``quantile`` conformal quantile of
    ``|measured - predicted|`` on the table, covering that fraction of new variants of unseen exons);
    see :mod:`meta_layer_cli.models.variant.heldout`. ``predict --variants`` and ``score-vcf`` apply it
    (``predicted_delta_psi_lo`` / ``_hi`` for the interval).

    The table must hold only exons the checkpoint was not trained on (refused otherwise: a calibration
    fitted on training exons would learn the model's training fit). Reported per target kind: for
    isotonic, the binned error ``|mean predicted - mean measured|`` (:func:`binned_calibration_error`)
    before, after on the table itself (in-sample) and after cross-fitting by exon (fitted on half the
    exons, measured on the other half: the honest number); for quantile, the interval's empirical
    coverage likewise (before: the quantile heads' interval if the model has them). Writes
    ``reliability.png`` (isotonic: mean measured vs mean predicted per bin; quantile: empirical vs
    nominal coverage) and ``calibration.json`` beside the checkpoint files.
    """
    from meta_layer_cli.evaluation.report import write_reliability_plot
    from meta_layer_cli.inference.variant_models import load_variant_predictor
    from meta_layer_cli.jobs.calibrate import check_output_folder, fresh_folder
    from meta_layer_cli.models.checkpoint import copy_checkpoint, update_checkpoint_config
    from meta_layer_cli.models.variant.heldout import HeldOutCalibration
    from meta_layer_cli.runtime.device import resolve_device

    if method not in ("isotonic", "quantile"):
        raise UsageError(f"--method {method!r}: a variant model takes isotonic or quantile")
    if method == "quantile" and not 0 < quantile < 1:
        raise UsageError(f"--quantile {quantile}: must lie between 0 and 1")
    check_output_folder(out, overwrite, {"--checkpoint": checkpoint, "--variants": table})
    device = str(resolve_device(device))
    predictor = load_variant_predictor(checkpoint, device)
    if predictor.model.task != "regression":
        raise InputDataError(
            f"{checkpoint} is a {predictor.model.config.architecture} classifier: isotonic and "
            "quantile calibration apply to delta predictors"
        )
    if predictor.heldout is not None:
        raise InputDataError(
            f"{checkpoint} is already calibrated ({predictor.heldout.describe()}); calibrate the "
            "uncalibrated checkpoint instead"
        )
    ds, _ = checkpoint_rows(predictor, table, device, weights, models_dir, cache)
    seen, what = seen_rows(predictor, ds)
    if seen.any():
        raise InputDataError(f"{what}: a calibration must be fitted on held-out data; give a table of other exons")
    scored = predictor.scored(ds, device)
    delta, target, kinds, groups = scored["delta"], ds.target, ds.kind_names, ds.groups
    try:
        fitted = HeldOutCalibration.fit(method, delta, target, kinds, quantile)
    except ValueError as err:
        raise InputDataError(f"the variant table cannot be calibrated on: {err}") from None
    after, lo, hi = fitted.apply(delta, kinds)
    crossed = _cross_fitted(method, delta, target, kinds, groups, quantile)
    # reliability of the interval at several levels: empirical vs nominal coverage (the cross-fitted
    # intervals pool every kind, so they are fitted once per level, not once per kind and level)
    levels = sorted(set(COVERAGE_LEVELS) | {quantile})
    cross_by_level = (
        {level: _cross_fitted("quantile", delta, target, kinds, groups, level) for level in levels}
        if method == "quantile" and crossed is not None
        else {}
    )
    errors: dict[str, dict] = {}
    curves: dict[str, dict] = {}
    for kind in fitted.kinds:
        rows = (kinds == kind) & np.isfinite(delta) & np.isfinite(target)
        if method == "isotonic":
            errors[kind] = _isotonic_errors(kind, rows, delta, after, target, crossed, curves)
        else:
            errors[kind] = _interval_coverage(
                kind, rows, delta, target, lo, hi, fitted, predictor, scored, crossed, levels, cross_by_level, curves
            )

    with fresh_folder(out, overwrite) as out:
        copy_checkpoint(checkpoint, out)
        calibration_groups = sorted(set(groups.astype(str).tolist()))
        run = {**predictor.run, "calibration_groups": calibration_groups}
        table_name = None if isinstance(table, (pl.DataFrame, dict)) else Path(table).name  # a name, not a machine path
        report = {
            "method": method,
            "quantile": fitted.quantile,
            "rows": len(ds),
            "exons": len(calibration_groups),
            "errors": errors,
            "table": table_name,
        }
        update_checkpoint_config(
            out, {"run": run, "heldout_calibration": fitted.to_dict(), "calibration_report": json_safe(report)}
        )
        write_json_atomic(out / "calibration.json", json_safe({**report, "calibration": fitted.to_dict()}))
        if method == "isotonic":
            plot = write_reliability_plot(
                out / "reliability.png",
                curves,
                "isotonic calibration (held-out rows)",
                "mean predicted delta (bin)",
                "mean measured delta (bin)",
                limits=None,
            )
        else:
            plot = write_reliability_plot(
                out / "reliability.png",
                curves,
                "split-conformal interval (held-out rows)",
                "nominal coverage",
                "empirical coverage",
            )
        return VariantCalibrationResult(
            out, method, fitted.quantile, len(ds), len(calibration_groups), errors, plot, fitted
        )
