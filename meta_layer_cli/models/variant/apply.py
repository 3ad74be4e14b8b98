"""Running a variant model over a :class:`~meta_layer_cli.features.variants.VariantDataset`: raw outputs
(:func:`predict_variants`) and calibrated predictions (:func:`calibrated_predictions`), the same at
training (cross-validation, evaluation) and at inference (``predict --variants``, ``score-vcf``)."""

from __future__ import annotations

import numpy as np
import torch

from meta_layer_cli.features.variants import EFFECT_TYPES, TARGET_KINDS, VariantDataset
from meta_layer_cli.models.variant.architectures import VariantModel
from meta_layer_cli.models.variant.inputs import VariantInputs


def model_outputs(model: VariantModel, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Run ``model`` on a batch dict (keys as :meth:`VariantDataset.batch`) -> named outputs.

    ``delta`` ``[B]`` and ``quantiles`` ``[B, Q]`` (delta predictors; ``ref_psi`` read if present), ``logit`` ``[B]``
    (splice-altering), ``effect_logits`` ``[B, 7]``.
    """
    x = VariantInputs.from_batch(batch)
    kind = batch.get("kind")
    if model.task == "regression":
        q = model.quantiles(x, kind, batch.get("ref_psi"))
        return {"quantiles": q, "delta": q[:, model.median_index]}
    if model.task == "binary":
        return {"logit": model(x, kind)}
    if model.task == "multiclass":
        return {"effect_logits": model(x, kind)}
    logit, effect = model(x, kind)
    return {"logit": logit, "effect_logits": effect}


@torch.no_grad()
def predict_variants(
    model: VariantModel,
    dataset: VariantDataset,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    kind: str | None = None,
) -> dict[str, np.ndarray]:
    """Raw model outputs for every row: ``delta`` ``[N]`` and ``quantiles`` ``[N, Q]`` (target units of each
    row's kind, or of ``kind`` if given), ``logit`` ``[N]``, ``effect_logits`` ``[N, 7]`` -- whichever apply.
    ``device``: ``auto``, ``cpu``, ``cuda[:N]``, ``mps`` or a ``torch.device``."""
    from meta_layer_cli.runtime.device import full_precision_convolutions, resolve_device

    device = resolve_device(device)
    model.eval().to(device)
    chunks: dict[str, list[np.ndarray]] = {}
    override = None if kind is None else TARGET_KINDS.index(kind)
    for i in range(0, len(dataset), batch_size):
        batch = dataset.batch(np.arange(i, min(i + batch_size, len(dataset))), device)
        if override is not None:
            batch["kind"] = torch.full_like(batch["kind"], override)
        with full_precision_convolutions():  # a GPU's TF32 would move the reported numbers
            outputs = model_outputs(model, batch)
        for name, value in outputs.items():
            chunks.setdefault(name, []).append(value.float().cpu().numpy())
    return {k: np.concatenate(v).astype(np.float64) for k, v in chunks.items()}


def calibrated_predictions(
    model: VariantModel, preds: dict, calibration: dict, dataset: VariantDataset
) -> dict[str, np.ndarray]:
    """Calibrated predictions from :func:`predict_variants`' ``preds``: ``delta`` (delta predictors; isotonic per
    kind where ``calibration`` has one) with ``qNN`` quantiles, and/or ``probability`` (splice-altering;
    temperature-scaled) and ``effect_probs`` ``[N, 7]``. ``calibration`` as
    :func:`meta_layer_cli.models.calibration.calibration_from_json` returns it."""
    out: dict[str, np.ndarray] = {}
    if "delta" in preds:
        delta = preds["delta"].copy()
        for kind, cal in calibration.get("isotonic", {}).items():
            rows = dataset.kind == TARGET_KINDS.index(kind)
            if rows.any():
                delta[rows] = cal(delta[rows])
        out["delta"] = delta
        if model.config.calibration == "quantile":
            for j, q in enumerate(model.quantile_levels):
                out[f"q{round(q * 100):02d}"] = preds["quantiles"][:, j]
    if "logit" in preds:
        scaler = calibration.get("temperature")
        logit = scaler(preds["logit"]) if scaler is not None else preds["logit"]
        out["probability"] = 1 / (1 + np.exp(-logit))
    if "effect_logits" in preds:
        scaler = calibration.get("effect_temperature")
        logits = scaler(preds["effect_logits"]) if scaler is not None else preds["effect_logits"]
        z = np.exp(logits - logits.max(1, keepdims=True))
        probs = z / z.sum(1, keepdims=True)
        out["effect_probs"] = probs
        if "probability" not in out:  # effect-type classifier alone: anything but "normal"
            out["probability"] = 1 - probs[:, EFFECT_TYPES.index("normal")]
    return out
