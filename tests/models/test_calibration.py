"""Calibrators: isotonic (PAVA, as scikit-learn), temperature scaling, JSON round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from meta_layer_cli.models.calibration import (
    IsotonicCalibrator,
    TemperatureScaler,
    build_calibrator,
    calibration_from_json,
    calibration_to_json,
    calibrator_from_dict,
    pinball_loss,
)


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


def test_pinball_loss():
    pred = torch.tensor([[0.0, 1.0, 2.0]])
    # target 1: losses 0.1*1, 0, (1-0.9)*1 -> mean 0.2/3
    assert float(pinball_loss(pred, torch.tensor([1.0]), [0.1, 0.5, 0.9])) == pytest.approx(0.2 / 3)


def test_a_checkpoints_calibration_survives_json():
    iso = IsotonicCalibrator().fit(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 2.0, 1.0, 5.0]))
    fitted = {
        "isotonic": {"log2_ratio": iso},
        "temperature": TemperatureScaler(2.5),
        "effect_temperature": TemperatureScaler(0.7),
    }
    text = json.dumps(calibration_to_json(fitted))  # plain JSON, nothing pickled
    back = calibration_from_json(json.loads(text))
    assert set(back) == set(fitted) and set(back["isotonic"]) == {"log2_ratio"}
    grid = np.linspace(-1, 4, 11)
    np.testing.assert_array_equal(back["isotonic"]["log2_ratio"](grid), iso(grid))
    assert back["temperature"].temperature == 2.5 and back["effect_temperature"].temperature == 0.7
    assert calibration_from_json(None) == {} and calibration_to_json({}) == {}


def test_site_calibration_says_what_it_fitted():
    """`metalayer calibrate` prints the fitted temperatures, or the isotonic map's size and where it sends 0.5."""
    from meta_layer_cli.models.site_calibration import SiteCalibration

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 4000)
    probs = np.full((4000, 3), 0.1)
    probs[np.arange(4000), labels] = 0.8  # over-confident: a true site only about half of the time
    labels = np.where(rng.random(4000) < 0.5, labels, 0)
    temperature = SiteCalibration.fit(probs, labels, "temperature")
    text = temperature.describe()
    for cls_id, name in ((1, "acceptor"), (2, "donor")):
        assert f"{name} T = {temperature.maps[cls_id].temperature:.3f}" in text
    isotonic = SiteCalibration.fit(probs, labels, "isotonic")
    half = isotonic(np.array([[0.5, 0.5, 0.0]]))[0, 1]
    assert f"acceptor {len(isotonic.maps[1].x)} knots (0.5 -> {half:.3f})" in isotonic.describe()
