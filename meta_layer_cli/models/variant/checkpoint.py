"""Variant models by name (the registry) and their checkpoints: ``model.safetensors`` + ``config.json``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from meta_layer_cli.models.checkpoint import read_checkpoint_config, read_weights, save_model
from meta_layer_cli.models.variant.architectures import (
    DeltaPredictor,
    EffectTypeClassifier,
    SimpleCNNDeltaPredictor,
    SiteLogitDeltaPredictor,
    SpliceInducingClassifier,
    UnifiedSpliceClassifier,
    ValidatedDeltaPredictor,
    VariantModel,
)
from meta_layer_cli.models.variant.config import VARIANT_MODELS, VariantModelConfig
from meta_layer_cli.runtime.device import resolve_device
from meta_layer_cli.runtime.errors import InputDataError, reading

if TYPE_CHECKING:
    from meta_layer_cli.runtime.device import DeviceLike

_REGISTRY: dict[str, type[VariantModel]] = {
    "splice_inducing": SpliceInducingClassifier,
    "effect_type": EffectTypeClassifier,
    "unified": UnifiedSpliceClassifier,
    "delta": DeltaPredictor,
    "simple_cnn": SimpleCNNDeltaPredictor,
    "validated": ValidatedDeltaPredictor,
    "site_logit": SiteLogitDeltaPredictor,
}


def build_variant_model(name: str | None, config: VariantModelConfig | dict | None = None) -> VariantModel:
    """A variant model by registry name (:data:`VARIANT_MODELS`); ``config`` needs ``channels``.

    ``name`` overrides ``config.architecture`` (None keeps it).
    """
    if isinstance(config, VariantModelConfig):
        config = config.model_dump()
    config = dict(config or {})
    if name is not None:
        if name not in _REGISTRY:
            raise InputDataError(f"unknown variant model {name!r} (choose from {', '.join(VARIANT_MODELS)})")
        config["architecture"] = name
    cfg = VariantModelConfig(**config)
    return _REGISTRY[cfg.architecture](cfg)


def save_variant_model(directory: str | os.PathLike, model: VariantModel, extra: dict | None = None) -> Path:
    """``model.safetensors`` + ``config.json`` (architecture under ``model``, plus ``extra``), atomically."""
    return save_model(directory, model, {"kind": "variant_model", **(extra or {})})


def load_variant_model(directory: str | os.PathLike, device: DeviceLike = None) -> tuple[VariantModel, dict]:
    """Rebuild a variant model from its checkpoint directory; returns (model in eval mode, config.json)."""
    config = read_checkpoint_config(directory)
    if config.get("kind") != "variant_model":
        raise InputDataError(f"{directory} is not a variant-model checkpoint (written by train-delta)")
    weights = read_weights(directory)
    with reading(f"{Path(directory) / 'config.json'} (the variant model)"):  # an architecture it cannot build
        model = build_variant_model(None, config["model"])
        model.load_state_dict(weights)
    return model.to(resolve_device(device)).eval(), config
