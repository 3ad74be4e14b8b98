"""A canonical checkpoint judged on measured variant effects: meta(alt) - meta(ref) at the assayed exon's sites."""

import numpy as np
import torch

from meta_layer_cli.base_models.record import BaseModelRecord
from meta_layer_cli.evaluation.variant_effects import evaluate_canonical_on_variants
from meta_layer_cli.models.checkpoint import save_model
from meta_layer_cli.models.meta import build_meta_model
from tests.conftest import TINY_MODEL
from tests.variant_helpers import small_vexseq


def checkpoint(path, base, correction: bool):
    torch.manual_seed(0)
    model = build_meta_model({**TINY_MODEL, "channels": list(base.channels)})
    if correction:
        with torch.no_grad():
            model.head.weight.normal_(0, 0.5)
    run = {"base_models": [BaseModelRecord.of(base).to_dict()], "channels": list(base.channels)}
    return save_model(path, model, {"run": run})


def test_an_untrained_meta_layer_scores_exactly_like_its_base_model(osai80, tmp_path):
    """An untrained meta model is its base model: identical deltas, so identical metrics on the same rows."""
    table = small_vexseq(30)
    result = evaluate_canonical_on_variants(checkpoint(tmp_path / "a", osai80, False), [table], device="cpu")
    ((name, both),) = result.sets.items()
    assert name == "vexseq" and both["meta"]["n"] == both["base"]["n"] == 30
    for key in ("pearson", "spearman", "auroc"):
        assert np.isclose(both["meta"][key], both["base"][key], atol=1e-6, equal_nan=True)
    changed = evaluate_canonical_on_variants(checkpoint(tmp_path / "b", osai80, True), [table], device="cpu")
    assert not np.isclose(changed.sets["vexseq"]["meta"]["pearson"], both["base"]["pearson"], atol=1e-6)
    text = changed.summary()
    assert "meta(alt) - meta(ref)" in text and "base(alt) - base(ref)" in text and "vexseq" in text


def test_rows_without_an_exon_or_a_target_are_left_out(osai80, tmp_path):
    import polars as pl

    table = small_vexseq(12).with_columns(
        pl.when(pl.int_range(pl.len()) < 4).then(None).otherwise(pl.col("target")).alias("target")
    )
    result = evaluate_canonical_on_variants(checkpoint(tmp_path / "a", osai80, False), [table], device="cpu")
    assert result.sets["vexseq"]["meta"]["n"] == 8
