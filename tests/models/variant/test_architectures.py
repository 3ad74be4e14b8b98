"""Variant-model architectures: what every model computes per row, per kind and per allele."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meta_layer_cli.features.variants import EFFECT_TYPES, TARGET_KINDS
from meta_layer_cli.models.variant import (
    VARIANT_MODELS,
    SimpleCNNDeltaPredictor,
    VariantInputs,
    build_variant_model,
)
from tests.models.variant.tensors import TINY, B, L, inputs, randomise


def outputs(model, x: VariantInputs, kind: torch.Tensor) -> tuple[torch.Tensor, ...]:
    out = model(x, kind)
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("name", VARIANT_MODELS)
@pytest.mark.parametrize("attention", [True, False])
@pytest.mark.parametrize("channels", [3, 4])  # SpliceAI-like (neither/acceptor/donor), Pangolin-like (tissues)
def test_every_model_scores_each_row_on_its_own(name, attention, channels):
    """Shapes per task, and each row's output depends on that row only: alone or in a batch, the same value;
    a change to one row's ALT moves that row's output and no other's (a reshape or a pooling over the wrong
    axis would mix rows)."""
    names = TINY["channels"] if channels == 3 else ["heart", "liver", "brain", "testis"]
    model = build_variant_model(name, {**TINY, "channels": names, "attention": attention}).eval()
    randomise(model)
    x = inputs(c=channels)
    kind = torch.tensor([0, 1, 2])
    out = outputs(model, x, kind)
    expected = {"unified": [(B,), (B, len(EFFECT_TYPES))], "effect_type": [(B, len(EFFECT_TYPES))]}
    assert [tuple(o.shape) for o in out] == expected.get(name, [(B,)])
    assert all(torch.isfinite(o).all() for o in out)
    if name == "unified":
        assert model.attention_weights(x).shape == (B, TINY["heads"], L)
    for i in range(B):
        alone = outputs(model, VariantInputs(*(t[i : i + 1] for t in x)), kind[i : i + 1])
        for o, a in zip(out, alone):
            torch.testing.assert_close(a[0], o[i], rtol=1e-5, atol=1e-6)
    alt_tracks = x.alt_tracks.clone()
    alt_tracks[0] = torch.softmax(torch.randn(channels, L, generator=torch.Generator().manual_seed(9)), 0)
    moved = outputs(model, x._replace(alt_tracks=alt_tracks), kind)
    for o, m in zip(out, moved):
        assert not torch.allclose(m[0], o[0]), "row 0's ALT changed, its output did not"
        torch.testing.assert_close(m[1:], o[1:])


def test_delta_predictors_start_at_zero_and_scale_per_kind():
    x = inputs()
    for name in ("delta", "simple_cnn", "validated"):
        model = build_variant_model(name, TINY).eval()
        assert torch.equal(model(x), torch.zeros(B))
        randomise(model)
        model.set_target_scales({"delta_psi_percent": 10.0, "log2_ratio": 2.0})
        psi = torch.full((B,), TARGET_KINDS.index("delta_psi_percent"))
        z = model.standardized(x, psi)[:, 0]
        torch.testing.assert_close(model(x, psi), 10.0 * z)
        assert not torch.equal(model(x), model(inputs(seed=5)))


def logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def sigmoid(x: float) -> float:
    return float(1 / (1 + np.exp(-x)))


def test_site_logit_untrained_is_the_base_models_own_change_in_inclusion():
    """Untrained: delta log-odds at the acceptor + at the donor, through the reference PSI."""
    ref_seq, alt_seq, _, _, mask = inputs()
    ref_tracks = torch.full((B, 3, L), 1e-6)
    ref_tracks[:, 1, 21] = 0.9  # acceptor peak 1 nt inside the exon (20:40): the +-2 nt maximum finds it
    ref_tracks[:, 2, 39] = 0.6  # donor at the exon's last nt
    alt_tracks = ref_tracks.clone()
    alt_tracks[:, 1, 21] = 0.3
    alt_tracks[:, 1, 60] = 0.99  # far from both ends: not read
    model = build_variant_model("site_logit", TINY).eval()
    assert model.config.link == "logit_psi"
    ref_psi = torch.tensor([80.0, float("nan"), 0.0])
    psi = torch.zeros(B, dtype=torch.long)
    got = model(VariantInputs(ref_seq, alt_seq, ref_tracks, alt_tracks, mask), psi, ref_psi)
    y = logit(0.3) - logit(0.9)
    expected = [100 * (sigmoid(logit(r) + y) - r) for r in (0.8, 0.5, 1e-3)]  # NaN: reference_psi (50)
    torch.testing.assert_close(got, torch.tensor(expected), atol=1e-4, rtol=1e-4)
    # other kinds: the log-odds change in units of the target's scale; sequence not read
    model.set_target_scales({"log2_ratio": 2.0})
    log2 = torch.full((B,), TARGET_KINDS.index("log2_ratio"))
    torch.testing.assert_close(
        model(VariantInputs(ref_seq, alt_seq, ref_tracks, alt_tracks, mask), log2),
        torch.full((B,), 2.0 * y),
        atol=1e-5,
        rtol=1e-5,
    )
    assert torch.equal(model(VariantInputs(*inputs(seed=4)[:2], ref_tracks, alt_tracks, mask), psi, ref_psi), got)
    # identical alleles: no change, whatever the reference PSI
    same = VariantInputs(ref_seq, ref_seq, ref_tracks, ref_tracks, mask)
    assert torch.equal(model(same, psi, ref_psi), torch.zeros(B))


def test_link_applies_to_delta_predictors_only():
    assert build_variant_model("validated", TINY).config.link == "identity"
    linked = build_variant_model("validated", {**TINY, "link": "logit_psi"}).eval()
    x = inputs()
    untrained = build_variant_model("site_logit", TINY).eval()
    ref_psi = torch.tensor([10.0, 50.0, 90.0])
    # the network's correction starts at zero: the linked model starts as site_logit
    torch.testing.assert_close(linked(x, None, ref_psi), untrained(x, None, ref_psi))
    with pytest.raises(ValueError, match="logit_psi"):
        build_variant_model("unified", {**TINY, "link": "logit_psi"})


def test_siamese_identical_alleles_give_the_same_output():
    model = build_variant_model("delta", TINY).eval()
    randomise(model)
    ref, _, ref_tracks, _, mask = inputs()
    other, _, other_tracks, _, _ = inputs(seed=3)
    a = model(VariantInputs(ref, ref, ref_tracks, ref_tracks, mask))
    b = model(VariantInputs(other, other, other_tracks, other_tracks, mask))
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, model(VariantInputs(ref, other, ref_tracks, other_tracks, mask)))


def test_simple_cnn_per_position_sums_to_the_delta():
    model = build_variant_model("simple_cnn", TINY).eval()
    randomise(model)
    assert isinstance(model, SimpleCNNDeltaPredictor)
    x = inputs()
    per = model.per_position(x)
    assert per.shape == (B, L)
    torch.testing.assert_close(per.sum(-1), model(x))
    linked = build_variant_model("simple_cnn", {**TINY, "link": "logit_psi"}).eval()
    with pytest.raises(ValueError, match="additive"):
        linked.per_position(x)


def test_quantile_heads():
    model = build_variant_model("validated", {**TINY, "calibration": "quantile"}).eval()
    randomise(model)
    x = inputs()
    q = model.quantiles(x)
    assert q.shape == (B, 3) and model.quantile_levels == [0.1, 0.5, 0.9]
    torch.testing.assert_close(model(x), q[:, 1])
