"""Post-hoc calibration of a delta predictor on **held-out** measured rows, per target kind.

``isotonic``
    a non-decreasing map from the model's predicted delta to the measured delta
    (:class:`~meta_layer_cli.models.calibration.IsotonicCalibrator`), fitted on rows of exons the
    model never trained on; predictions become the map's value.
``quantile``
    a split-conformal interval: with ``q`` the ``quantile`` (e.g. 0.9) conformal quantile of
    ``|measured - predicted|`` on the held-out rows (the ``ceil((n + 1) * quantile)``-th smallest of
    the ``n`` residuals), ``predicted ± q`` covers a new variant's measured delta with probability
    at least ``quantile`` when the new variants are exchangeable with the held-out ones (same assay,
    unseen exons). The point prediction is unchanged.

Both are fitted per target kind (delta PSI in percent, log2 ratio, ...). A checkpoint stores the
fit as plain JSON under ``heldout_calibration`` (:meth:`HeldOutCalibration.to_dict`); ``metalayer
calibrate --variants`` writes it, ``predict --variants`` and ``score-vcf`` apply it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from meta_layer_cli.models.calibration import IsotonicCalibrator, calibrator_from_dict
from meta_layer_cli.runtime.errors import InputDataError, UsageError

HELDOUT_METHODS = ("isotonic", "quantile")


def conformal_half_width(residuals: np.ndarray, level: float) -> float:
    """The split-conformal half-width: the ``ceil((n + 1) * level)``-th smallest ``|residual|``.

    Raises ValueError when ``n`` is too small for that rank to exist (fewer than
    ``level / (1 - level)`` rows, e.g. 9 for 0.9)."""
    r = np.sort(np.abs(np.asarray(residuals, np.float64)[np.isfinite(residuals)]))
    n = len(r)
    k = _rank(n, level)
    if k > n or n == 0:
        need = next(m for m in range(1, 10**7) if _rank(m, level) <= m)
        raise InputDataError(f"a {level:g} split-conformal interval needs at least {need} held-out rows, got {n}")
    return float(r[k - 1])


def _rank(n: int, level: float) -> int:
    return math.ceil((n + 1) * level - 1e-9)  # (n + 1) * level in floating point may land just above an integer


@dataclass
class HeldOutCalibration:
    """A fitted post-hoc calibration (module docstring): per target kind, an isotonic map or a half-width."""

    method: str
    quantile: float | None = None
    maps: dict[str, IsotonicCalibrator] = field(default_factory=dict)
    half_width: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        method: str,
        prediction: np.ndarray,
        target: np.ndarray,
        kinds: Sequence[str] | np.ndarray,
        quantile: float = 0.9,
    ) -> HeldOutCalibration:
        """Fit on held-out rows: ``prediction`` and measured ``target`` ``[N]``, ``kinds`` ``[N]`` (kind names)."""
        if method not in HELDOUT_METHODS:
            raise UsageError(f"unknown held-out calibration {method!r} (choose from {', '.join(HELDOUT_METHODS)})")
        if method == "quantile" and not 0 < quantile < 1:
            raise UsageError(f"quantile must lie in (0, 1), got {quantile}")
        prediction, target = np.asarray(prediction, np.float64), np.asarray(target, np.float64)
        kinds = np.asarray(kinds, dtype=object)
        out = cls(method, quantile if method == "quantile" else None)
        for kind in dict.fromkeys(kinds.tolist()):
            rows = (kinds == kind) & np.isfinite(prediction) & np.isfinite(target)
            if not rows.any():
                continue
            out.rows[kind] = int(rows.sum())
            if method == "isotonic":
                out.maps[kind] = IsotonicCalibrator().fit(prediction[rows], target[rows])
            else:
                out.half_width[kind] = conformal_half_width(target[rows] - prediction[rows], quantile)
        if not out.rows:
            raise InputDataError("no held-out row has both a prediction and a measured target")
        return out

    @property
    def kinds(self) -> list[str]:
        return list(self.rows)

    def apply(
        self, prediction: np.ndarray, kinds: Sequence[str] | np.ndarray | str
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``(delta, lo, hi)`` for predictions of ``kinds`` (one name or one per row). Isotonic: the mapped
        delta, no interval (None); quantile: the delta unchanged and ``delta ± half-width``. Rows of a kind
        the calibration was not fitted on keep their delta (NaN bounds)."""
        prediction = np.asarray(prediction, np.float64)
        kinds = np.full(len(prediction), kinds, dtype=object) if isinstance(kinds, str) else np.asarray(kinds, object)
        delta = prediction.copy()
        if self.method == "isotonic":
            for kind, cal in self.maps.items():
                rows = kinds == kind
                if rows.any():
                    delta[rows] = cal(prediction[rows])
            return delta, None, None
        width = np.array([self.half_width.get(k, np.nan) for k in kinds], dtype=np.float64)
        return delta, delta - width, delta + width

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "quantile": self.quantile,
            "rows": dict(self.rows),
            "isotonic": {k: c.to_dict() for k, c in self.maps.items()},
            "half_width": dict(self.half_width),
        }

    @classmethod
    def from_dict(cls, data: dict | None) -> HeldOutCalibration | None:
        if not data:
            return None
        if data.get("method") not in HELDOUT_METHODS:
            raise InputDataError(f"unknown held-out calibration in checkpoint: {data.get('method')!r}")
        return cls(
            data["method"],
            data.get("quantile"),
            {k: calibrator_from_dict(v) for k, v in (data.get("isotonic") or {}).items()},
            {k: float(v) for k, v in (data.get("half_width") or {}).items()},
            {k: int(v) for k, v in (data.get("rows") or {}).items()},
        )

    def describe(self) -> str:
        if self.method == "isotonic":
            return f"isotonic map fitted on held-out rows ({', '.join(f'{k}: {n}' for k, n in self.rows.items())})"
        widths = ", ".join(f"{k} ±{w:.3g}" for k, w in self.half_width.items())
        return f"{self.quantile:g} split-conformal interval ({widths})"
