import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from meta_layer_cli.evaluation.metrics import (
    average_precision,
    confusion_at,
    site_metrics,
    topk_accuracy,
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_average_precision_matches_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(5000) < 0.05
    s = np.round(rng.random(5000) + y * rng.random(5000), 2)  # rounding creates ties
    assert average_precision(s, y) == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_topk_accuracy():
    scores = np.array([0.9, 0.8, 0.1, 0.7, 0.2])
    sites = np.array([1, 0, 1, 1, 0], dtype=bool)
    assert topk_accuracy(scores, sites) == pytest.approx(2 / 3)
    assert np.isnan(topk_accuracy(scores, np.zeros(5, bool)))


def test_confusion_and_site_metrics():
    labels = np.array([0, 1, 0, 2, 0, 0])
    probs = np.array([[1, 0, 0], [0.4, 0.6, 0], [0.3, 0.7, 0], [0.6, 0, 0.4], [1, 0, 0], [0.5, 0, 0.5]])
    assert confusion_at(probs[:, 1], labels == 1, 0.5) == (1, 0)
    m = site_metrics(probs, labels)
    assert (m["fp_donor"], m["fn_donor"]) == (1, 1)
    assert m["topk_acceptor"] == 0.0 and m["pr_auc_acceptor"] == pytest.approx(0.5)


def test_precision_recall_curve_follows_recall_not_threshold_count():
    from sklearn.metrics import precision_recall_curve as sk_curve

    from meta_layer_cli.evaluation.metrics import precision_recall_curve

    rng = np.random.default_rng(0)
    y = rng.random(200_000) < 0.002
    s = rng.random(200_000) * 0.1 + y * rng.random(200_000)  # many distinct low scores, few sites
    curve = precision_recall_curve(s, y, max_points=50)
    assert len(curve["recall"]) <= 50
    assert np.all(np.diff(curve["recall"]) >= 0) and curve["recall"][-1] == 1.0
    # sampled points lie on scikit-learn's curve
    sk_p, sk_r, _ = sk_curve(y, s)
    mid = len(curve["recall"]) // 2
    r, p = curve["recall"][mid], curve["precision"][mid]
    assert np.isclose(sk_p[np.isclose(sk_r, r)], p).any()
    # recall is spread over the range instead of piling up at the end
    assert np.median(curve["recall"]) < 0.8


def test_f1_optimal_threshold_by_hand():
    from meta_layer_cli.evaluation.metrics import f1_optimal_threshold

    # calling score >= t a site: t = 0.9 -> F1 2*1/(1+3) = 0.5; 0.8 -> 2/5; 0.7 -> 4/6; 0.4 -> 6/7 (best);
    # 0.3 -> 6/8; 0.2 -> 6/9
    scores = np.array([0.3, 0.9, 0.4, 0.2, 0.7, 0.8])
    sites = np.array([0, 1, 1, 0, 1, 0], dtype=bool)
    assert f1_optimal_threshold(scores, sites) == 0.4
    # tied scores are one threshold: t = 0.5 calls both (F1 2/3), t = 0.1 all three (F1 1/2)
    assert f1_optimal_threshold(np.array([0.5, 0.1, 0.5]), np.array([1, 0, 0], dtype=bool)) == 0.5
    assert f1_optimal_threshold(np.array([0.2, 0.9]), np.zeros(2, dtype=bool)) == 0.5  # no site: the default


def test_expected_calibration_error_by_hand():
    from meta_layer_cli.evaluation.metrics import canonical_metrics, expected_calibration_error, reliability_curve

    # two bins: [0, 0.5) holds 0.1, 0.3 (mean 0.2, observed 1/2: gap 0.3); [0.5, 1] holds 0.6, 0.8, 1.0
    # (mean 0.8, observed 2/3: gap 2/15); ECE = (2 * 0.3 + 3 * 2/15) / 5 = 0.2
    probs = np.array([0.1, 0.3, 0.6, 0.8, 1.0])
    sites = np.array([0, 1, 0, 1, 1], dtype=bool)
    assert expected_calibration_error(probs, sites, bins=2) == pytest.approx(0.2)
    curve = reliability_curve(probs, sites, bins=2)
    assert curve["count"] == [2, 3] and curve["mean_predicted"] == pytest.approx([0.2, 0.8])
    assert expected_calibration_error(np.array([0.0, 1.0]), np.array([0, 1], dtype=bool)) == 0.0  # perfect
    # 15 bins: 0.05 alone in bin 0 (gap 0.05), 0.95 and 0.98 in bin 14 (mean 0.965, observed 0.5: gap 0.465)
    probs, sites = np.array([0.05, 0.95, 0.98]), np.array([0, 1, 0], dtype=bool)
    assert expected_calibration_error(probs, sites) == pytest.approx((0.05 + 2 * 0.465) / 3)
    # the report card's ECE is the mean of the acceptor and the donor one
    p = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.4, 0.0, 0.6], [1.0, 0.0, 0.0]])
    labels = np.array([0, 1, 2, 0])
    acceptor = expected_calibration_error(p[:, 1], labels == 1)  # (0.1 + 0.2) / 4 = 0.075
    donor = expected_calibration_error(p[:, 2], labels == 2)  # 0.4 / 4 = 0.1
    assert (acceptor, donor) == pytest.approx((0.075, 0.1))
    assert canonical_metrics(p, labels)["ece"] == pytest.approx(0.0875)
