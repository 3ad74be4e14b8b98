"""Variant-model configs: invalid settings are refused with a message naming them."""

from __future__ import annotations

import pytest

from meta_layer_cli.models.variant import build_variant_model
from tests.models.variant.tensors import TINY


@pytest.mark.parametrize(
    "config, message",
    [
        ({"calibration": "temperature"}, "temperature"),
        ({"width": 10, "heads": 4}, "divisible"),
        ({"kernel": 4}, "odd"),
        ({"quantiles": [0.1, 0.9]}, "calibration=quantile"),
        ({"widht": 3}, "widht"),
        ({"target_kinds": ["psi"]}, "psi"),
    ],
)
def test_config_errors(config, message):
    with pytest.raises(ValueError, match=message):
        build_variant_model("validated", {**TINY, **config})
