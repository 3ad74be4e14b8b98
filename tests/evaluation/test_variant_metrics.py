"""Variant metrics in numpy against scikit-learn (and scipy where installed)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from meta_layer_cli.evaluation.variant_metrics import (
    base_delta_metrics,
    classifier_metrics,
    pearson,
    pr_auc,
    rankdata,
    regression_metrics,
    roc_auc,
    spearman,
)


def data(seed: int = 0, n: int = 500):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = 0.6 * x + rng.normal(size=n)
    x[:100] = np.round(x[:100])  # ties
    return x, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_sklearn_and_numpy(seed):
    x, y = data(seed)
    labels = np.abs(y) >= 1.0
    assert roc_auc(x, labels) == pytest.approx(roc_auc_score(labels, x), abs=1e-12)
    assert pr_auc(x, labels) == pytest.approx(average_precision_score(labels, x), abs=1e-12)
    assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)
    ranks = rankdata(x)
    assert ranks.sum() == pytest.approx(len(x) * (len(x) + 1) / 2)
    assert spearman(x, y) == pytest.approx(np.corrcoef(rankdata(x), rankdata(y))[0, 1], abs=1e-12)


def test_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    x, y = data(3)
    np.testing.assert_allclose(rankdata(x), stats.rankdata(x))
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)


def test_edge_cases():
    assert np.isnan(pearson([1.0], [2.0])) and np.isnan(pearson([1, 1, 1], [1, 2, 3]))
    assert np.isnan(roc_auc([0.1, 0.2], [1, 1])) and np.isnan(pr_auc([0.1, 0.2], [0, 0]))
    assert roc_auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5
    # NaN pairs are left out
    assert pearson([1, 2, np.nan, 4], [1, 2, 3, 4]) == pytest.approx(1.0)


def test_regression_and_classifier_metrics():
    target = np.array([-40.0, -25.0, -5.0, 0.0, 3.0, 30.0, np.nan])
    prediction = np.array([-30.0, -10.0, -2.0, 1.0, 0.0, 20.0, 5.0])
    m = regression_metrics(prediction, target, 20.0)
    assert m["n"] == 6 and m["n_positive"] == 3 and m["auroc"] == 1.0 and m["auprc"] == 1.0
    assert m["pearson"] > 0.9
    c = classifier_metrics(np.array([0.9, 0.8, 0.1, 0.2, 0.3, 0.7, 0.5]), target, 20.0)
    assert c["auroc"] == 1.0 and c["pearson_abs"] > 0.8 and "pearson" not in c


def test_base_delta_metrics_pick_and_sign_adjust():
    rng = np.random.default_rng(0)
    loss = rng.random(200)
    target = -50 * loss + rng.normal(0, 5, 200)  # losses lower PSI
    deltas = {
        "delta_acceptor": rng.normal(0, 0.1, 200),
        "delta_donor": rng.normal(0, 0.1, 200),
        "delta_gain": np.zeros(200),
        "delta_loss": loss,
        "max_abs_delta": loss,
    }
    m = base_delta_metrics(deltas, target, 20.0)
    assert m["best"] in ("max_abs_delta", "signed_max_delta")
    assert m["max_abs_delta"]["sign"] == -1.0 and m["max_abs_delta"]["pearson"] > 0.9
    assert m["signed_max_delta"]["sign"] == 1.0  # already negative for losses
    assert m[m["best"]]["auroc"] > 0.9
