"""The Python API of the variant models: build a delta predictor by keywords, wrap one in a calibration.

::

    from meta_layer_cli import create_calibrated_predictor, create_validated_delta_predictor

    model = create_validated_delta_predictor(variant="attention", hidden_dim=128, n_layers=6)
    ...  # train it (VariantTrainer, or `metalayer train-delta`)
    calibrated = create_calibrated_predictor(model, strategy="quantile", quantile=0.9, base_model=base)
    calibrated.fit(held_out_rows)          # measured rows of exons the model never trained on
    out = calibrated(new_rows)             # out.delta, out.lo, out.hi

Data is a :class:`~meta_layer_cli.features.variants.VariantDataset` or tables of
:mod:`meta_layer_cli.io.assays` (built into one with ``base_model``). The calibrations are those of
:mod:`meta_layer_cli.models.variant.heldout` (``metalayer calibrate --variants`` fits the same ones
into a checkpoint).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from meta_layer_cli.features.variants import DEFAULT_WINDOW, VariantDataset
from meta_layer_cli.models.variant.apply import calibrated_predictions, predict_variants
from meta_layer_cli.models.variant.architectures import ValidatedDeltaPredictor, VariantModel
from meta_layer_cli.models.variant.config import keyword_config
from meta_layer_cli.models.variant.heldout import HELDOUT_METHODS, HeldOutCalibration
from meta_layer_cli.runtime.errors import InputDataError, UsageError

if TYPE_CHECKING:
    from meta_layer_cli.runtime.device import DeviceLike

POOLINGS = {"attention": True, "meanmax": False, "mean_max": False, "mean-max": False}


def create_validated_delta_predictor(
    variant: str = "attention",
    hidden_dim: int = 128,
    n_layers: int = 6,
    channels: Sequence[str] | None = None,
    **architecture,
) -> ValidatedDeltaPredictor:
    """A :class:`ValidatedDeltaPredictor`: ``variant`` its pooling over positions, ``attention`` or ``meanmax``
    (mean and maximum); ``hidden_dim`` its width; ``n_layers`` gated dilated layers (dilations 1, 2, 4, ...).
    ``channels``: the base model's channel names (default neither/acceptor/donor: SpliceAI, OpenSpliceAI);
    any other key of the ``architecture`` config section (``kernel``, ``dropout``, ``heads``, ...) as is."""
    if variant not in POOLINGS:
        raise UsageError(f"unknown variant {variant!r} (attention or meanmax)")
    config = keyword_config("validated", hidden_dim, n_layers, channels, attention=POOLINGS[variant], **architecture)
    return ValidatedDeltaPredictor(config)


@dataclass
class CalibratedPrediction:
    """What a :class:`CalibratedDeltaPredictor` returns per row: ``delta`` (in each row's target units) and,
    for the quantile strategy, the interval ``[lo, hi]`` (None for isotonic)."""

    delta: np.ndarray
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.delta)


class CalibratedDeltaPredictor:
    """A delta predictor plus a calibration fitted on held-out rows (see :func:`create_calibrated_predictor`)."""

    def __init__(
        self,
        predictor,
        strategy: str = "quantile",
        quantile: float = 0.9,
        base_model=None,
        device: DeviceLike = None,
        window: int | None = None,
    ):
        model = getattr(predictor, "model", predictor)  # a VariantModel, or a loaded checkpoint holding one
        if not isinstance(model, VariantModel) or model.task != "regression":
            raise ValueError("create_calibrated_predictor wraps a delta predictor (a regression variant model)")
        if strategy not in HELDOUT_METHODS:
            raise UsageError(f"unknown strategy {strategy!r} (choose from {', '.join(HELDOUT_METHODS)})")
        if strategy == "quantile" and not 0 < quantile < 1:
            raise UsageError(f"quantile must lie in (0, 1), got {quantile}")
        self.model, self.strategy, self.quantile, self.device = model, strategy, quantile, device
        self.training_calibration = getattr(predictor, "calibration", None) or {}
        self.window = window or getattr(predictor, "window", None) or DEFAULT_WINDOW
        self.base_model = base_model
        self._record = getattr(predictor, "record", None)  # a checkpoint knows its base model
        self.calibration: HeldOutCalibration | None = None

    # -- data ------------------------------------------------------------------------------------
    def dataset(self, data) -> VariantDataset:
        """``data`` as a :class:`VariantDataset` (tables are built with this predictor's base model and window)."""
        if isinstance(data, VariantDataset):
            out = data
        else:
            from meta_layer_cli.features.variants import build_variant_dataset

            if self.base_model is None:
                if self._record is None:
                    raise UsageError("tables need a base model: create_calibrated_predictor(..., base_model=...)")
                self.base_model = self._record.load(device=self.device)
            out = build_variant_dataset(data, self.base_model, window=self.window)
        if list(out.channels) != list(self.model.config.channels):
            raise InputDataError(
                f"the data has base-model channels {list(out.channels)}, the model reads "
                f"{list(self.model.config.channels)}"
            )
        return out

    def raw(self, data) -> tuple[np.ndarray, np.ndarray, VariantDataset]:
        """(the model's delta before this calibration, each row's kind name, the dataset)."""
        ds = self.dataset(data)
        preds = predict_variants(self.model, ds, device=self.device)
        delta = calibrated_predictions(self.model, preds, self.training_calibration, ds)["delta"]
        return delta, ds.kind_names, ds

    # -- fit / predict ----------------------------------------------------------------------------
    def fit(self, data) -> CalibratedDeltaPredictor:
        """Fit the calibration on held-out measured rows (exons the model never trained on); returns self."""
        delta, kinds, ds = self.raw(data)
        self.calibration = HeldOutCalibration.fit(self.strategy, delta, ds.target, kinds, self.quantile)
        return self

    def predict(self, data) -> CalibratedPrediction:
        """Calibrated predictions for ``data`` (each row in its own target kind's units)."""
        if self.calibration is None:
            raise ValueError("the calibration is not fitted: call .fit(held_out_rows) first")
        delta, kinds, _ = self.raw(data)
        return CalibratedPrediction(*self.calibration.apply(delta, kinds))

    __call__ = predict


def create_calibrated_predictor(
    predictor,
    strategy: str = "quantile",
    quantile: float = 0.9,
    base_model=None,
    device: DeviceLike = None,
    window: int | None = None,
):
    """Wrap a delta predictor (a trained variant model, or a checkpoint loaded with
    :func:`~meta_layer_cli.inference.variant_models.load_variant_predictor`) in a calibration fitted on held-out
    data with ``.fit(rows)``.

    ``strategy``: ``quantile`` (a split-conformal interval: ``predict`` returns the delta and ``lo``/``hi`` =
    delta ∓ the ``quantile`` conformal quantile of ``|measured - predicted|`` on the held-out rows, which
    covers that fraction of new variants of the same kind) or ``isotonic`` (a monotone map prediction ->
    measured delta). ``base_model`` builds tables into datasets (a loaded checkpoint brings its own).
    Returns a :class:`CalibratedDeltaPredictor`.
    """
    return CalibratedDeltaPredictor(predictor, strategy, quantile, base_model, device, window)
