"""The variant-model registry and checkpoints (safetensors + JSON)."""

from __future__ import annotations

import json

import pytest
import torch

from meta_layer_cli.models.variant import (
    VARIANT_MODELS,
    UnifiedSpliceClassifier,
    build_variant_model,
    load_variant_model,
    save_variant_model,
)
from tests.models.variant.tensors import CHANNELS, TINY, inputs, randomise


def test_registry_errors():
    with pytest.raises(ValueError, match="unknown variant model"):
        build_variant_model("lstm", TINY)
    with pytest.raises(ValueError, match="channels"):
        build_variant_model("validated", {})
    with pytest.raises(ValueError, match="isotonic"):
        build_variant_model("unified", {**TINY, "calibration": "isotonic"})


def test_checkpoint_round_trip(tmp_path):
    for name in VARIANT_MODELS:
        model = build_variant_model(name, {**TINY, "target_kinds": ["log2_ratio"]}).eval()
        randomise(model)
        if hasattr(model, "set_target_scales"):
            model.set_target_scales({"log2_ratio": 1.7})
        path = save_variant_model(tmp_path / name, model, {"note": "x"})
        loaded, config = load_variant_model(path)
        x = inputs()
        a, b = model(x), loaded(x)
        for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            torch.testing.assert_close(u, v)
        assert config["note"] == "x" and config["model"]["architecture"] == name
        assert config["model"]["target_kinds"] == ["log2_ratio"]
        assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
        json.loads((path / "config.json").read_text())  # plain JSON
    assert isinstance(load_variant_model(tmp_path / "unified")[0], UnifiedSpliceClassifier)


def test_loading_a_canonical_checkpoint_is_refused(tmp_path):
    from meta_layer_cli.models import build_meta_model
    from meta_layer_cli.models.checkpoint import save_model

    save_model(tmp_path / "meta", build_meta_model({"channels": CHANNELS, "width": 8}))
    with pytest.raises(ValueError, match="not a variant-model checkpoint"):
        load_variant_model(tmp_path / "meta")
