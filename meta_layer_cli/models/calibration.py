"""Calibration for the variant models, selectable by name (:data:`CALIBRATIONS`).

``none``
    raw outputs.
``quantile``
    not a post-hoc map but a head: delta predictors built with
    ``calibration="quantile"`` predict several quantiles of the target (10/50/90 %
    by default) and train with the pinball loss (:func:`pinball_loss`); the
    reported delta is the median, the outer quantiles an 80 % interval.
``isotonic``
    a monotone map from predicted to measured values, fitted on validation
    predictions (:class:`IsotonicCalibrator`, pool-adjacent-violators). Used for
    delta predictors (prediction -> measured delta) and, with 0/1 targets, to turn
    a score into a probability (``p_splice_altering``).
``temperature``
    one scalar ``T`` dividing a classifier's logits, fitted on validation logits
    by minimising the negative log-likelihood (:class:`TemperatureScaler`).

Fitted calibrators serialise to plain JSON (``to_dict`` / ``calibrator_from_dict``):
arrays as lists, never pickle. A variant checkpoint's whole ``calibration`` entry (isotonic maps
per target kind, temperatures) goes through :func:`calibration_to_json` / :func:`calibration_from_json`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from meta_layer_cli.runtime.errors import InputDataError, UsageError

CALIBRATIONS = ("none", "quantile", "isotonic", "temperature")
DEFAULT_QUANTILES = (0.1, 0.5, 0.9)


def pinball_loss(pred: torch.Tensor, target: torch.Tensor, quantiles: Sequence[float]) -> torch.Tensor:
    """Mean quantile (pinball) loss: ``pred [B, Q]`` vs ``target [B]`` for ``quantiles`` (Q values in (0, 1))."""
    q = torch.as_tensor(list(quantiles), dtype=pred.dtype, device=pred.device)[None, :]
    diff = target[:, None] - pred
    return torch.maximum(q * diff, (q - 1) * diff).mean()


class IsotonicCalibrator:
    """Non-decreasing piecewise-linear map fitted by pool-adjacent-violators (PAVA, scikit-learn's
    ``IsotonicRegression``).

    ``fit(x, y)`` on validation predictions ``x`` and measured values ``y``;
    ``__call__(x)`` interpolates between the fitted knots (constant beyond the
    ends). ``increasing=False`` fits a non-increasing map.
    """

    name = "isotonic"

    def __init__(self, x: Sequence[float] | None = None, y: Sequence[float] | None = None, increasing: bool = True):
        self.x = np.asarray(x if x is not None else [], dtype=np.float64)
        self.y = np.asarray(y if y is not None else [], dtype=np.float64)
        self.increasing = increasing

    def fit(self, x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> IsotonicCalibrator:
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        keep = np.isfinite(x) & np.isfinite(y)
        x, y = x[keep], y[keep]
        w = np.ones_like(x) if weights is None else np.asarray(weights, np.float64)[keep]
        if len(x) == 0:
            raise InputDataError("isotonic calibration needs at least one finite (prediction, target) pair")
        # scikit-learn's PAVA (tied x pooled to their weighted mean first), read back at every distinct x: the
        # knots are then each distinct x with its pool's value, which the centred maps of
        # meta_layer_cli.models.site_calibration need (IsotonicRegression itself keeps only the ends of each pool)
        from sklearn.isotonic import IsotonicRegression  # imported here: scipy costs ~1 s at start-up

        fitted = IsotonicRegression(increasing=self.increasing, out_of_bounds="clip").fit(x, y, sample_weight=w)
        self.x = np.unique(x)
        self.y = fitted.predict(self.x).astype(np.float64)
        return self

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if len(self.x) == 0:
            raise ValueError("isotonic calibrator is not fitted")
        return np.interp(np.asarray(x, np.float64), self.x, self.y)

    def to_dict(self) -> dict:
        return {"name": self.name, "x": self.x.tolist(), "y": self.y.tolist(), "increasing": self.increasing}


class TemperatureScaler:
    """Divides logits by a scalar temperature ``T`` (> 0) fitted on validation data.

    Binary logits ``[N]`` with 0/1 labels, or class logits ``[N, K]`` with integer labels.
    """

    name = "temperature"

    def __init__(self, temperature: float = 1.0):
        self.temperature = float(temperature)

    def fit(
        self, logits: np.ndarray, labels: np.ndarray, steps: int = 200, weights: np.ndarray | None = None
    ) -> TemperatureScaler:
        """Fit ``T``. ``weights``: how many observations each row stands for (binary labels may then be
        fractions: the share of positives among them)."""
        z = torch.as_tensor(np.asarray(logits, np.float64))
        y = torch.as_tensor(np.asarray(labels))
        w = (
            torch.ones(len(z), dtype=torch.float64)
            if weights is None
            else torch.as_tensor(np.asarray(weights, np.float64))
        )
        if z.ndim == 1:
            keep = torch.isfinite(z) & torch.isfinite(y.double())
            z, y, w = z[keep], y[keep].double(), w[keep]
            if len(z) == 0 or y.min() == y.max():
                return self  # nothing to calibrate against: keep T
        else:
            keep = y >= 0
            z, y, w = z[keep], y[keep].long(), w[keep]
            if len(z) == 0:
                return self
        w = w / w.sum()
        log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=steps, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            scaled = z / log_t.exp()
            if scaled.ndim == 1:
                losses = torch.nn.functional.binary_cross_entropy_with_logits(scaled, y, reduction="none")
            else:
                losses = torch.nn.functional.cross_entropy(scaled, y, reduction="none")
            loss = (w * losses).sum()
            loss.backward()
            return loss

        opt.step(closure)
        t = float(log_t.detach().exp())
        self.temperature = t if np.isfinite(t) and t > 0 else 1.0
        return self

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        return np.asarray(logits, np.float64) / self.temperature

    def to_dict(self) -> dict:
        return {"name": self.name, "temperature": self.temperature}


def build_calibrator(name: str) -> IsotonicCalibrator | TemperatureScaler | None:
    """An unfitted post-hoc calibrator by name; ``none`` and ``quantile`` (a head, not a map) give None."""
    if name not in CALIBRATIONS:
        raise UsageError(f"unknown calibration {name!r} (choose from {', '.join(CALIBRATIONS)})")
    if name == "isotonic":
        return IsotonicCalibrator()
    if name == "temperature":
        return TemperatureScaler()
    return None


def calibrator_from_dict(data: dict | None) -> IsotonicCalibrator | TemperatureScaler | None:
    """Rebuild a calibrator written by ``to_dict`` (None stays None)."""
    if not data:
        return None
    if data.get("name") == "isotonic":
        return IsotonicCalibrator(data["x"], data["y"], bool(data.get("increasing", True)))
    if data.get("name") == "temperature":
        return TemperatureScaler(float(data["temperature"]))
    raise InputDataError(f"unknown calibrator in checkpoint: {data.get('name')!r}")


def calibration_to_json(calibration: dict) -> dict:
    """A model's fitted calibrators -> the checkpoint's ``calibration`` entry (plain JSON).

    ``calibration``: ``isotonic`` (target kind -> :class:`IsotonicCalibrator`), ``temperature`` and
    ``effect_temperature`` (:class:`TemperatureScaler`), each optional."""
    out: dict = {}
    if "isotonic" in calibration:
        out["isotonic"] = {k: c.to_dict() for k, c in calibration["isotonic"].items()}
    for key in ("temperature", "effect_temperature"):
        if key in calibration:
            out[key] = calibration[key].to_dict()
    return out


def calibration_from_json(data: dict | None) -> dict:
    """Inverse of :func:`calibration_to_json` (None or empty: no calibration)."""
    data = data or {}
    out: dict = {}
    if "isotonic" in data:
        out["isotonic"] = {k: calibrator_from_dict(v) for k, v in data["isotonic"].items()}
    for key in ("temperature", "effect_temperature"):
        if key in data:
            out[key] = calibrator_from_dict(data[key])
    return out
