"""Post-hoc calibration of a canonical checkpoint's final probabilities (``metalayer calibrate``).

Fitted on validation genes, stored as JSON in the checkpoint's ``config.json`` (``calibration``)
and applied by :func:`meta_layer_cli.models.apply.recalibrate_arrays` after the gene-structure
decoder, so ``predict``, ``evaluate`` and ``score-vcf`` all see calibrated numbers.

Per site class (acceptor, donor), one-vs-rest:

``temperature``
    ``p' = sigmoid(logit(p) / T_c)`` with ``T_c`` minimising the validation log-loss;
``isotonic``
    ``p' = (1 - 1e-6) f_c(p) + 1e-6 p`` with ``f_c`` the centred isotonic fit of the site frequency:
    pool-adjacent-violators, then linear between the pools' centres and out to (0, 0) and (1, 1).
    Plain PAVA is flat within each pool and ties positions the model ranks apart (on 8 validation genes that cost a
    checkpoint 0.06 of held-out PR-AUC); the centring and the 1e-6 share of the raw score keep
    every order (up to float32 resolution).

``neither`` is then ``1 - acceptor - donor``, so rows stay probability vectors (in the rare case the
two would sum past 1, the smaller one gives way). Both maps are strictly increasing, so in float64
the ranking of positions, hence PR-AUC and top-k, is unchanged within each class; what changes is
what the numbers mean (expected calibration error) and where a 0.5 threshold falls. Outputs are
float32, like every track: an isotonic map fitted on few validation genes sends the top scores to
within 1e-7 of 1, where float32 ties them (measured on the demo genome, 8 validation genes:
held-out PR-AUC 0.939 -> 0.928 with isotonic, unchanged with temperature, which also lowered the
held-out ECE more). ``temperature`` is therefore the default.

(A base model alone is calibrated differently: a ``correction: false`` meta checkpoint whose
per-class temperatures divide the base model's log-probabilities before one softmax, as
OpenSpliceAI's ``calibrate`` does.)
"""

from __future__ import annotations

import numpy as np

from meta_layer_cli.models.calibration import IsotonicCalibrator, TemperatureScaler
from meta_layer_cli.runtime.errors import InputDataError, UsageError

SITE_CLASSES = {1: "acceptor", 2: "donor"}
TIE_BREAK = 1e-6
METHODS = ("temperature", "isotonic")
_EPS = 1e-7


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _centered(step: IsotonicCalibrator) -> IsotonicCalibrator:
    """The pool-adjacent-violators step function as knots at each pool's centre (centred isotonic
    regression): strictly increasing between the first and last pool instead of flat within pools."""
    values, starts = np.unique(step.y, return_index=True)  # pools have distinct, increasing values
    order = np.argsort(starts)
    bounds = np.r_[np.sort(starts), len(step.y)]
    centres = np.array([step.x[bounds[i] : bounds[i + 1]].mean() for i in range(len(order))])
    values = values[order]
    # anchored at (0, 0) and (1, 1), so that scores beyond the outer pools stay apart too
    if centres[0] > 0 and values[0] > 0:
        centres, values = np.r_[0.0, centres], np.r_[0.0, values]
    if centres[-1] < 1 and values[-1] < 1:
        centres, values = np.r_[centres, 1.0], np.r_[values, 1.0]
    return IsotonicCalibrator(centres, values, step.increasing)


class SiteCalibration:
    """Per-class monotone maps of ``[L, 3]`` probabilities (module docstring)."""

    def __init__(self, method: str, maps: dict[int, IsotonicCalibrator | TemperatureScaler]):
        if method not in METHODS:
            raise UsageError(f"calibration method must be one of {', '.join(METHODS)}, got {method!r}")
        self.method = method
        self.maps = maps

    @classmethod
    def fit(cls, probs: np.ndarray, labels: np.ndarray, method: str) -> SiteCalibration:
        """Fit on validation ``probs [N, 3]`` and ``labels [N]`` (0 neither, 1 acceptor, 2 donor)."""
        if method not in METHODS:
            raise UsageError(f"calibration method must be one of {', '.join(METHODS)}, got {method!r}")
        maps: dict[int, IsotonicCalibrator | TemperatureScaler] = {}
        for cls_id in SITE_CLASSES:
            is_site = (np.asarray(labels) == cls_id).astype(np.float64)
            if is_site.sum() == 0:
                raise InputDataError(f"no {SITE_CLASSES[cls_id]} sites in the calibration genes")
            if method == "temperature":
                maps[cls_id] = TemperatureScaler().fit(_logit(probs[:, cls_id]), is_site)
            else:
                maps[cls_id] = _centered(IsotonicCalibrator().fit(probs[:, cls_id], is_site))
        return cls(method, maps)

    @classmethod
    def fit_binned(cls, points: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]], method: str) -> SiteCalibration:
        """Fit on per-class summaries of validation scores: ``{class: (score, site fraction, count)}``, one
        row per group of near-equal scores (:class:`~meta_layer_cli.evaluation.streaming.BinnedScores`),
        for validation data too large to hold."""
        if method not in METHODS:
            raise UsageError(f"calibration method must be one of {', '.join(METHODS)}, got {method!r}")
        maps: dict[int, IsotonicCalibrator | TemperatureScaler] = {}
        for cls_id in SITE_CLASSES:
            score, fraction, count = (np.asarray(a, np.float64) for a in points[cls_id])
            if (fraction * count).sum() == 0:
                raise InputDataError(f"no {SITE_CLASSES[cls_id]} sites in the calibration genes")
            if method == "temperature":
                maps[cls_id] = TemperatureScaler().fit(_logit(score), fraction, weights=count)
            else:
                maps[cls_id] = _centered(IsotonicCalibrator().fit(score, fraction, weights=count))
        return cls(method, maps)

    def map_class(self, cls_id: int, scores: np.ndarray) -> np.ndarray:
        """One class's calibrated scores, before rows are made probability vectors again (float64)."""
        fitted = self.maps[cls_id]
        if self.method == "temperature":
            return 1 / (1 + np.exp(-fitted(_logit(scores))))
        # isotonic maps are flat between knots; a 1e-6 share of the raw score keeps the ranking
        raw = np.asarray(scores, np.float64)
        return np.clip((1 - TIE_BREAK) * fitted(raw) + TIE_BREAK * raw, 0, 1)

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        out = np.asarray(probs, np.float64).copy()
        for cls_id in self.maps:
            out[:, cls_id] = self.map_class(cls_id, out[:, cls_id])
        excess = np.maximum(out[:, 1] + out[:, 2] - 1, 0)
        smaller = np.where(out[:, 1] <= out[:, 2], 1, 2)  # the larger class keeps its calibrated value
        rows = np.flatnonzero(excess > 0)
        out[rows, smaller[rows]] -= excess[rows]
        out[:, 0] = 1 - out[:, 1] - out[:, 2]
        return out.astype(np.float32)

    def describe(self) -> str:
        """What was fitted, in one line: each class's temperature (above 1 softens over-confident scores), or
        the isotonic map's size and where it sends a score of 0.5."""
        parts = []
        for cls_id, fitted in self.maps.items():
            if self.method == "temperature":
                parts.append(f"{SITE_CLASSES[cls_id]} T = {fitted.temperature:.3f}")
            else:
                half = float(self(np.array([[0.0, 0.5, 0.0] if cls_id == 1 else [0.0, 0.0, 0.5]]))[0, cls_id])
                parts.append(f"{SITE_CLASSES[cls_id]} {len(fitted.x)} knots (0.5 -> {half:.3f})")
        return f"{self.method}: " + ", ".join(parts)

    def to_dict(self) -> dict:
        return {"method": self.method, "maps": {SITE_CLASSES[c]: m.to_dict() for c, m in self.maps.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> SiteCalibration:
        from meta_layer_cli.models.calibration import calibrator_from_dict

        by_name = {name: c for c, name in SITE_CLASSES.items()}
        return cls(data["method"], {by_name[k]: calibrator_from_dict(v) for k, v in data["maps"].items()})


def calibration_from_config(config: dict) -> SiteCalibration | None:
    """The calibration stored in a checkpoint's ``config.json``, if any."""
    data = config.get("calibration")
    return SiteCalibration.from_dict(data) if data else None
