"""The keyword API of the variant models and the held-out calibrations (isotonic, split-conformal)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meta_layer_cli.models.variant import (
    AttentionPool,
    HeldOutCalibration,
    MeanMaxPool,
    SimpleCNNDeltaPredictor,
    ValidatedDeltaPredictor,
    build_variant_model,
    conformal_half_width,
    create_calibrated_predictor,
    create_validated_delta_predictor,
)
from tests.models.variant.tensors import inputs, randomise


@pytest.mark.parametrize("variant, pool", [("attention", AttentionPool), ("meanmax", MeanMaxPool)])
def test_validated_factory_builds_what_it_is_asked(variant, pool):
    model = create_validated_delta_predictor(variant=variant, hidden_dim=16, n_layers=3)
    assert isinstance(model, ValidatedDeltaPredictor) and isinstance(model.pool, pool)
    assert model.config.width == 16 and model.config.dilations == [1, 2, 4]
    assert len(model.encoder.blocks) == 3
    assert model.readout.hidden[0].out_features == 16
    default = create_validated_delta_predictor()
    assert default.config.width == 128 and default.config.dilations == [1, 2, 4, 8, 16, 32] and default.config.attention
    # the same network as the registry builds from the equivalent config (same seed, same outputs)
    torch.manual_seed(0)
    a = create_validated_delta_predictor(variant=variant, hidden_dim=16, n_layers=3, kernel=5, dropout=0.0)
    torch.manual_seed(0)
    b = build_variant_model(
        "validated",
        {
            "width": 16,
            "dilations": [1, 2, 4],
            "kernel": 5,
            "dropout": 0.0,
            "attention": variant == "attention",
            "channels": ["neither", "acceptor", "donor"],
        },
    )
    randomise(a)
    randomise(b)
    x = inputs()
    torch.testing.assert_close(a.eval()(x), b.eval()(x))
    with pytest.raises(ValueError, match="attention or meanmax"):
        create_validated_delta_predictor(variant="lstm")


def test_simple_cnn_keyword_constructor():
    model = SimpleCNNDeltaPredictor(hidden_dim=24)
    assert model.config.width == 24 and model.config.architecture == "simple_cnn"
    assert model.head.in_channels == 24
    assert SimpleCNNDeltaPredictor().config.width == 64
    assert SimpleCNNDeltaPredictor(hidden_dim=30, n_layers=2).config.dilations == [1, 2]  # heads adapt to 30
    four = SimpleCNNDeltaPredictor(hidden_dim=8, channels=["heart", "liver", "brain", "testis"])
    assert four(inputs(c=4)).shape == (3,)
    with pytest.raises(TypeError, match="config or keywords"):
        SimpleCNNDeltaPredictor(four.config, hidden_dim=8)


def test_split_conformal_interval_covers_new_rows():
    """q = the ceil((n+1) 0.9)-th smallest |residual|: fresh exchangeable rows fall inside pred ± q >= 90 %
    of the time on average (and not much more)."""
    rng = np.random.default_rng(0)
    covered = []
    for _ in range(300):
        pred = rng.normal(0, 10, 60)
        target = pred + rng.standard_t(3, 60) * 5  # heavy-tailed errors: no Gaussian assumption
        cal = HeldOutCalibration.fit("quantile", pred[:40], target[:40], ["delta_psi_percent"] * 40, 0.9)
        delta, lo, hi = cal.apply(pred[40:], "delta_psi_percent")
        np.testing.assert_array_equal(delta, pred[40:])
        covered.append(np.mean((lo <= target[40:]) & (target[40:] <= hi)))
    assert 0.895 <= np.mean(covered) <= 0.95
    r = np.arange(1, 11, dtype=float)  # n = 10: rank ceil(11 * 0.9) = 10
    assert conformal_half_width(r, 0.9) == 10.0 and conformal_half_width(r, 0.5) == 6.0
    with pytest.raises(ValueError, match="needs at least 9"):
        conformal_half_width(r[:5], 0.9)


def test_held_out_calibration_per_kind_and_round_trip():
    pred = np.array([0.0, 1.0, 2.0, 3.0, 0.5, 1.5])
    target = np.array([0.0, 2.0, 4.0, 6.0, 10.0, 30.0])
    kinds = np.array(["delta_psi_percent"] * 4 + ["log2_ratio"] * 2, dtype=object)
    iso = HeldOutCalibration.fit("isotonic", pred, target, kinds)
    delta, lo, hi = iso.apply(pred, kinds)
    assert lo is None and hi is None
    np.testing.assert_allclose(delta, target)  # a monotone relation is learned exactly, per kind
    np.testing.assert_allclose(iso.apply(np.array([1.0]), "log2_ratio")[0], [20.0])  # that kind's map, interpolated
    back = HeldOutCalibration.from_dict(iso.to_dict())
    np.testing.assert_allclose(back.apply(pred, kinds)[0], delta)
    q = HeldOutCalibration.fit("quantile", np.zeros(20), np.arange(20.0), ["log2_ratio"] * 20, 0.5)
    _, lo, hi = HeldOutCalibration.from_dict(q.to_dict()).apply(np.zeros(2), ["log2_ratio", "delta_psi_percent"])
    assert hi[0] == 10.0 and lo[0] == -10.0 and np.isnan(hi[1])  # a kind it was not fitted on: no interval


def test_calibrated_wrapper_on_a_dataset(vexseq_dataset):
    ds = vexseq_dataset
    torch.manual_seed(0)
    model = create_validated_delta_predictor(hidden_dim=8, n_layers=2, heads=2)
    randomise(model)
    model.set_target_scales({"delta_psi_percent": 10.0})
    held_out, new = ds.subset(np.arange(20)), ds.subset(np.arange(20, len(ds)))
    calibrated = create_calibrated_predictor(model, strategy="quantile", quantile=0.8).fit(held_out)
    out = calibrated(new)
    raw = model.eval()
    from meta_layer_cli.models.variant import predict_variants

    np.testing.assert_allclose(out.delta, predict_variants(raw, new)["delta"])
    q = conformal_half_width(held_out.target - predict_variants(raw, held_out)["delta"], 0.8)
    np.testing.assert_allclose(out.hi - out.delta, q)
    np.testing.assert_allclose(out.delta - out.lo, q)
    iso = create_calibrated_predictor(model, strategy="isotonic").fit(held_out)
    mapped = iso.predict(new)
    assert mapped.lo is None and np.all(np.diff(mapped.delta[np.argsort(out.delta)]) >= -1e-9)  # monotone
    with pytest.raises(ValueError, match="not fitted"):
        create_calibrated_predictor(model).predict(new)
    with pytest.raises(ValueError, match="delta predictor"):
        create_calibrated_predictor(build_variant_model("unified", {"channels": ds.channels, "width": 8, "heads": 2}))
