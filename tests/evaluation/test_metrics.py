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
