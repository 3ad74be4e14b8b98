"""Variant models: shapes of every model, registry, quantile heads, calibration, checkpoint round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from meta_layer_cli.models.calibration import (
    IsotonicCalibrator,
    TemperatureScaler,
    build_calibrator,
    calibrator_from_dict,
    pinball_loss,
)
from meta_layer_cli.models.variant import (
    EFFECT_TYPES,
    TARGET_KINDS,
    VARIANT_MODELS,
    SimpleCNNDeltaPredictor,
    UnifiedSpliceClassifier,
    VariantInputs,
    build_variant_model,
    exon_ends,
    load_variant_model,
    model_outputs,
    psi_link,
    save_variant_model,
    site_logit_features,
)

B, L = 3, 64
CHANNELS = ["neither", "acceptor", "donor"]
TINY = {"channels": CHANNELS, "width": 8, "kernel": 5, "dilations": [1, 2], "dropout": 0.0, "heads": 2}


def inputs(c: int = 3, seed: int = 0) -> VariantInputs:
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 4, (B, L), generator=g)
    ref = torch.nn.functional.one_hot(codes, 4).permute(0, 2, 1).float()
    alt = ref.clone()
    alt[:, :, L // 2] = torch.tensor([0.0, 0.0, 0.0, 1.0])
    ref_tracks = torch.softmax(torch.randn(B, c, L, generator=g), 1)
    alt_tracks = torch.softmax(torch.randn(B, c, L, generator=g), 1)
    mask = torch.zeros(B, 2, L)
    mask[:, 0, 20:40] = 1
    mask[:, 1, L // 2] = 1
    return VariantInputs(ref, alt, ref_tracks, alt_tracks, mask)


def randomise(model: torch.nn.Module) -> None:
    """Give the zero-initialised output layers weights, so outputs depend on the input."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.3)


@pytest.mark.parametrize("name", VARIANT_MODELS)
@pytest.mark.parametrize("attention", [True, False])
def test_shapes_of_every_model(name, attention):
    model = build_variant_model(name, {**TINY, "attention": attention}).eval()
    x = inputs()
    kind = torch.tensor([0, 1, 2])
    out = model(x, kind)
    if name == "unified":
        logit, effect = out
        assert logit.shape == (B,) and effect.shape == (B, len(EFFECT_TYPES))
        assert model.attention_weights(x).shape == (B, 2, L)
    elif name == "effect_type":
        assert out.shape == (B, len(EFFECT_TYPES))
    else:
        assert out.shape == (B,)
    assert torch.isfinite(out[0] if isinstance(out, tuple) else out).all()
    # Pangolin-like tracks (4 tissue channels)
    four = build_variant_model(name, {**TINY, "channels": ["heart", "liver", "brain", "testis"]}).eval()
    out4 = four(inputs(c=4))
    assert (out4[0] if isinstance(out4, tuple) else out4).shape[0] == B


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
    torch.testing.assert_close(model(VariantInputs(ref_seq, alt_seq, ref_tracks, alt_tracks, mask), log2),
                               torch.full((B,), 2.0 * y), atol=1e-5, rtol=1e-5)  # fmt: skip
    assert torch.equal(model(VariantInputs(*inputs(seed=4)[:2], ref_tracks, alt_tracks, mask), psi, ref_psi), got)
    # identical alleles: no change, whatever the reference PSI
    same = VariantInputs(ref_seq, ref_seq, ref_tracks, ref_tracks, mask)
    assert torch.equal(model(same, psi, ref_psi), torch.zeros(B))


def test_exon_ends_are_not_the_window_edges():
    mask = torch.zeros(3, 2, 10)
    mask[0, 0, 2:5] = 1  # inside
    mask[1, 0, :4] = 1  # runs past the left edge: only its donor is in the window
    mask[2, 0, 6:] = 1  # past the right edge: only its acceptor
    first, last = exon_ends(mask)
    assert first.nonzero().tolist() == [[0, 2], [2, 6]]
    assert last.nonzero().tolist() == [[0, 4], [1, 3]]


def test_psi_link_is_bounded_by_the_reference():
    ref = torch.tensor([0.0, 30.0, 95.0, 100.0])
    for y, bound in ((-50.0, -ref), (50.0, 100 - ref)):
        out = psi_link(torch.full((4, 1), y), ref)[:, 0]
        torch.testing.assert_close(out, bound, atol=0.2, rtol=0)
    assert torch.equal(psi_link(torch.zeros(4, 2), ref), torch.zeros(4, 2))


def test_site_logit_features_by_channel_names():
    assert site_logit_features(["neither", "acceptor", "donor"]) == [(1, 0), (2, 1)]
    assert site_logit_features(["heart", "liver"]) == [(0, 0), (1, 0), (0, 1), (1, 1)]


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
    out = model_outputs(model, {"ref_seq": x[0], "alt_seq": x[1], "ref_tracks": x[2], "alt_tracks": x[3],
                                "mask": x[4]})  # fmt: skip
    assert set(out) == {"quantiles", "delta"}
    pred = torch.tensor([[0.0, 1.0, 2.0]])
    # target 1: losses 0.1*1, 0, (1-0.9)*1 -> mean 0.2/3
    assert float(pinball_loss(pred, torch.tensor([1.0]), [0.1, 0.5, 0.9])) == pytest.approx(0.2 / 3)


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


def test_isotonic_matches_sklearn_and_serialises():
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    x[:50] = np.round(x[:50], 1)  # ties
    y = 2 * x + rng.normal(size=300)
    ours = IsotonicCalibrator().fit(x, y)
    ref = IsotonicRegression(out_of_bounds="clip").fit(x, y)
    grid = np.linspace(-3, 3, 101)
    np.testing.assert_allclose(ours(grid), ref.predict(grid), atol=1e-9)
    assert np.all(np.diff(ours(grid)) >= -1e-12)
    back = calibrator_from_dict(json.loads(json.dumps(ours.to_dict())))
    np.testing.assert_array_equal(back(grid), ours(grid))
    dec = IsotonicCalibrator(increasing=False).fit(x, -y)
    ref_dec = IsotonicRegression(increasing=False, out_of_bounds="clip").fit(x, -y)
    np.testing.assert_allclose(dec(grid), ref_dec.predict(grid), atol=1e-9)


def test_temperature_scaler_recovers_a_temperature():
    rng = np.random.default_rng(0)
    true_logit = rng.normal(0, 2, size=4000)
    labels = (rng.random(4000) < 1 / (1 + np.exp(-true_logit))).astype(float)
    scaler = TemperatureScaler().fit(3.0 * true_logit, labels)  # over-confident by 3x
    assert scaler.temperature == pytest.approx(3.0, rel=0.15)
    multi = rng.normal(size=(2000, 7))
    y = np.array([rng.choice(7, p=np.exp(r) / np.exp(r).sum()) for r in multi])
    assert TemperatureScaler().fit(0.5 * multi, y).temperature == pytest.approx(0.5, rel=0.2)
    assert calibrator_from_dict(scaler.to_dict()).temperature == scaler.temperature
    assert build_calibrator("none") is None and build_calibrator("quantile") is None
    with pytest.raises(ValueError, match="unknown calibration"):
        build_calibrator("platt")
