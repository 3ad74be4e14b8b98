"""Applying trained variant models (``train-delta`` checkpoints) to ref/alt sequence tables.

:func:`score_sequences_with_models` = :func:`meta_layer_cli.artifacts.sequences.score_sequences`
plus, from one or more checkpoints:

``predicted_delta_psi``
    the delta predictor's prediction in percent delta PSI (its ``delta_psi_percent``
    readout, with the checkpoint's isotonic calibration if it has one). Models with the
    ``logit_psi`` link (``site_logit``) read the exon's reference PSI from an optional
    ``ref_psi`` column (percent) and use the training rows' median where it is missing. Null, with a
    warning, when the model was not trained on any delta-PSI data; then
    ``predicted_<kind>`` (e.g. ``predicted_log2_ratio``) carries its prediction in the
    units it was trained on. Every other kind it was trained on gets such a column too.
``p_splice_altering``
    with a classifier checkpoint (``splice_inducing`` / ``unified``): its probability
    (temperature-scaled if the checkpoint was calibrated). Otherwise, from the delta
    predictor, **an estimate, not a classifier output**: the fraction of variants with
    ``|measured delta| >= threshold`` (20 % delta PSI by default) among the training
    variants whose cross-validated (held-out) ``|predicted delta|`` was similar -- an
    isotonic map fitted on the out-of-fold predictions of ``train-delta`` and
    stored in the checkpoint. It is only as good as the assay it was fitted on and
    says nothing about effects that assay could not measure.
``predicted_delta_psi_q10`` / ``_q90`` (and so on)
    with quantile heads (``calibration: quantile``): the predicted 10 % / 90 % quantiles.
``predicted_delta_psi_lo`` / ``_hi`` (and ``predicted_<kind>_lo`` / ``_hi``)
    with a checkpoint calibrated by ``metalayer calibrate --variants TABLE --method quantile``: the
    split-conformal interval ``predicted ± q`` (:mod:`meta_layer_cli.models.variant.heldout`). A
    checkpoint calibrated with ``--method isotonic`` has its held-out isotonic map applied to the
    predicted deltas (``p_splice_altering`` still reads the delta before that map, which is what
    its out-of-fold fit saw).
``effect_type``, ``p_effect_type``
    with an ``effect_type`` / ``unified`` checkpoint: the most likely effect type and
    its probability. (On exon-inclusion assays the effect labels are approximations,
    see :func:`meta_layer_cli.features.variants.effect_type_labels`.)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from meta_layer_cli.artifacts.cache import MemoryCache, PredictionCache, as_cache
from meta_layer_cli.base_models.record import BaseModelRecord
from meta_layer_cli.features.variants import EFFECT_TYPES, TARGET_KINDS, build_variant_dataset
from meta_layer_cli.models.calibration import calibration_from_json, calibrator_from_dict
from meta_layer_cli.models.checkpoint import read_checkpoint_config
from meta_layer_cli.models.variant import VariantModel, calibrated_predictions, load_variant_model, predict_variants
from meta_layer_cli.models.variant.heldout import HeldOutCalibration
from meta_layer_cli.runtime.errors import InputDataError, UsageError

if TYPE_CHECKING:
    from meta_layer_cli.runtime.device import DeviceLike

logger = logging.getLogger(__name__)
MODEL_COLUMNS = ("predicted_delta_psi", "p_splice_altering", "effect_type", "p_effect_type")


@dataclass
class VariantPredictor:
    """A loaded checkpoint: model, calibration, ``p_splice_altering`` map, the run's settings and the
    calibration fitted on held-out rows by ``metalayer calibrate`` (``heldout``, or None)."""

    model: VariantModel
    config: dict
    calibration: dict
    p_map: dict
    path: str
    heldout: HeldOutCalibration | None = None

    @property
    def run(self) -> dict:
        return self.config.get("run", {})

    @property
    def window(self) -> int:
        return int(self.run.get("window", 320))

    @property
    def kinds(self) -> list[str]:
        return list(self.model.config.target_kinds) or ["delta_psi_percent"]

    @property
    def record(self) -> BaseModelRecord:
        """The base model the checkpoint was trained on (:func:`checkpoint_record`)."""
        return checkpoint_record(self.config, self.path)

    def check_base_model(self, base) -> None:
        """Refuse a base model other than the one the checkpoint was trained with (InputDataError)."""
        self.record.require(base, f"the checkpoint {self.path}")

    def readout_kind(self) -> str:
        return "delta_psi_percent" if "delta_psi_percent" in self.kinds else self.kinds[0]

    @property
    def seen_groups(self) -> set[str] | None:
        """Exon groups the checkpoint was trained or calibrated on (None: it does not record them)."""
        if "training_groups" not in self.run:
            return None
        return set(self.run["training_groups"]) | set(self.run.get("calibration_groups", []))

    def scored(self, dataset, device: DeviceLike = None) -> dict[str, np.ndarray]:
        """Every row in its own target kind: :func:`calibrated_predictions` (``delta`` and/or ``probability``,
        ...), then the held-out calibration (``delta`` mapped, or ``lo`` / ``hi`` added)."""
        out = calibrated_predictions(
            self.model, predict_variants(self.model, dataset, device=device), self.calibration, dataset
        )
        if self.heldout is not None and "delta" in out:
            out["delta"], lo, hi = self.heldout.apply(out["delta"], dataset.kind_names)
            if lo is not None:
                out["lo"], out["hi"] = lo, hi
        return out


def load_variant_predictor(checkpoint: str | os.PathLike, device: DeviceLike = None) -> VariantPredictor:
    """A ``train-delta`` checkpoint with its calibration and ``p_splice_altering`` map."""
    model, config = load_variant_model(checkpoint, device)
    checkpoint_record(config, str(checkpoint))  # an old checkpoint fails here, with one clear line
    return VariantPredictor(
        model,
        config,
        calibration_from_json(config.get("calibration")),
        config.get("p_splice_altering") or {},
        str(checkpoint),
        HeldOutCalibration.from_dict(config.get("heldout_calibration")),
    )


def checkpoint_record(checkpoint: str | os.PathLike | dict, path: str | None = None) -> BaseModelRecord:
    """The :class:`BaseModelRecord` a variant checkpoint (its folder or its ``config.json`` dict) stores under
    ``run.base_model``. Checkpoints written before the record existed (a flat description) are refused."""
    config = checkpoint if isinstance(checkpoint, dict) else read_checkpoint_config(checkpoint)
    where = path or (str(checkpoint) if not isinstance(checkpoint, dict) else "the checkpoint")
    stored = (config.get("run") or {}).get("base_model")
    if not isinstance(stored, dict) or "name" not in stored or "context" not in stored:
        raise InputDataError(
            f"{where} does not record its base model the current way (a checkpoint of an older "
            "metalayer?): retrain it with `metalayer train-delta`"
        )
    return BaseModelRecord.from_dict(stored)


def predict_table_columns(
    predictors: Sequence[VariantPredictor], datasets: dict[int, object], device: DeviceLike = None
) -> dict[str, np.ndarray]:
    """The model columns of the module docstring from datasets built per window size."""
    cols: dict[str, np.ndarray] = {}
    p_classifier = p_delta = None
    for pred in predictors:
        ds = datasets[pred.window]
        n = len(ds)
        task = pred.model.task
        if task == "regression":
            if "predicted_delta_psi" in cols:
                logger.warning(f"{pred.path}: a second delta predictor is ignored")
                continue
            for kind in pred.kinds:
                out = predict_variants(pred.model, ds, device=device, kind=kind)
                delta = out["delta"].copy()
                iso = pred.calibration.get("isotonic", {}).get(kind)
                if iso is not None:
                    delta = iso(delta)
                name = "predicted_delta_psi" if kind == "delta_psi_percent" else f"predicted_{kind}"
                before, lo = delta, None
                if pred.heldout is not None:
                    delta, lo, hi = pred.heldout.apply(delta, kind)
                cols[name] = delta
                if lo is not None:  # the split-conformal interval
                    cols[f"{name}_lo"], cols[f"{name}_hi"] = lo, hi
                if pred.model.config.calibration == "quantile":  # the interval of the quantile heads
                    for j, q in enumerate(pred.model.quantile_levels):
                        if j != pred.model.median_index:
                            cols[f"{name}_q{round(q * 100):02d}"] = out["quantiles"][:, j]
                if kind == pred.readout_kind() and kind in pred.p_map:
                    p_delta = calibrator_from_dict(pred.p_map[kind])(np.abs(before))
            if "predicted_delta_psi" not in cols:
                logger.warning(
                    f"{pred.path} was not trained on delta PSI data: predicted_delta_psi is null; "
                    f"see predicted_{pred.kinds[0]}"
                )
                cols["predicted_delta_psi"] = np.full(n, np.nan)
        else:
            out = predict_variants(pred.model, ds, device=device, kind=pred.readout_kind())
            scored = calibrated_predictions(pred.model, out, pred.calibration, ds)
            if task in ("binary", "unified") and p_classifier is None:
                p_classifier = scored["probability"]
            if "effect_probs" in scored and "effect_type" not in cols:
                probs = scored["effect_probs"]
                cols["effect_type"] = np.asarray(EFFECT_TYPES, dtype=object)[probs.argmax(1)]
                cols["p_effect_type"] = probs.max(1)
                if p_classifier is None and task == "multiclass":
                    p_classifier = scored["probability"]
    p = p_classifier if p_classifier is not None else p_delta
    if p is not None:
        cols["p_splice_altering"] = p
    return cols


def score_sequences_with_models(
    table,
    checkpoints: Sequence[str | os.PathLike],
    base_model=None,
    weights: str | os.PathLike | None = None,
    device: DeviceLike = None,
    window: int = 50,
    cache: PredictionCache | str | os.PathLike | None = None,
) -> pl.DataFrame:
    """``score_sequences`` columns plus the variant models' columns (module docstring).

    ``base_model`` defaults to the first checkpoint's (:meth:`BaseModelRecord.load`: ``weights`` if given,
    else the recorded path if it exists here, else the usual lookup); every checkpoint must have been trained
    on this base model's tracks (:meth:`BaseModelRecord.require`).
    """
    from meta_layer_cli.artifacts.sequences import score_sequences
    from meta_layer_cli.base_models import resolve_base_model
    from meta_layer_cli.io.tables import read_table

    if not checkpoints:
        raise UsageError("no checkpoint given")
    predictors = [load_variant_predictor(c, device) for c in checkpoints]
    if base_model is None:  # the first checkpoint's, found again by its record (weights: a path or the lookup)
        model = predictors[0].record.load(device=device, weights=weights)
    else:
        model = resolve_base_model(base_model, weights, device)
    for pred in predictors:
        pred.check_base_model(model)
    frame = read_table(table)
    memory = MemoryCache(as_cache(cache))
    result = score_sequences(frame, base_model=model, window=window, cache=memory)
    datasets = {}
    for w in sorted({p.window for p in predictors}):
        datasets[w] = build_variant_dataset(
            frame, model, window=w, cache=memory, delta_window=predictors[0].run.get("delta_window", 50)
        )
    cols = predict_table_columns(predictors, datasets, device)
    added = []
    for name, values in cols.items():
        if values.dtype == object:
            added.append(pl.Series(name, values.tolist(), dtype=pl.Utf8))
        else:
            added.append(
                pl.Series(name, np.where(np.isfinite(values), values, np.nan), dtype=pl.Float64).fill_nan(None)
            )
    return result.drop([c for c in cols if c in result.columns]).with_columns(added)


__all__ = [
    "MODEL_COLUMNS",
    "TARGET_KINDS",
    "VariantPredictor",
    "checkpoint_record",
    "load_variant_predictor",
    "score_sequences_with_models",
]
