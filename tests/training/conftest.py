"""Fixtures of the variant-model training tests."""

from __future__ import annotations

import pytest

from tests.variant_helpers import small_vexseq


@pytest.fixture(scope="package")
def vexseq_dataset(osai80):
    """40 real Vex-seq rows with OpenSpliceAI-80nt tracks (cheap: 40 nt of context each side)."""
    from meta_layer_cli.training.variant_data import build_variant_dataset

    return build_variant_dataset(small_vexseq(40), osai80)
