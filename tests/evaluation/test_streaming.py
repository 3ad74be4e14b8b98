"""Metrics streamed gene by gene equal the exact ones on all scores at once, within the bound they state."""

import numpy as np
import pytest

from meta_layer_cli.evaluation import metrics as exact
from meta_layer_cli.evaluation.evaluator import base_probabilities
from meta_layer_cli.evaluation.streaming import BinnedScores, CanonicalScores, SiteScores


@pytest.fixture(scope="module")
def real(osai80_arrays):
    """OpenSpliceAI-80nt probabilities and labels of ten real demo genes, gene by gene."""
    channels, genes = osai80_arrays
    return [(np.ascontiguousarray(base_probabilities(g.tracks, channels)), np.asarray(g.labels)) for g in genes]


def test_streamed_report_card_equals_the_exact_one(real):
    thresholds = {1: 0.3, 2: 0.6}
    streamed = CanonicalScores(thresholds)
    for probs, labels in real:
        streamed.add(probs, labels)
    probs = np.concatenate([p for p, _ in real])
    labels = np.concatenate([lab for _, lab in real])
    want = exact.canonical_metrics(probs, labels, thresholds)
    got = streamed.metrics()
    assert got["pr_auc_error_bound"] <= 1e-4
    for key in ("pr_auc_acceptor", "pr_auc_donor", "pr_auc_macro"):
        assert abs(got[key] - want[key]) <= got["pr_auc_error_bound"] + 1e-12, key
    for key in ("topk_acceptor", "topk_donor"):
        assert abs(got[key] - want[key]) <= got["topk_error_bound"] + 1e-12, key
    for key in ("fp_at_0.5", "fn_at_0.5", "fp_at_f1opt", "fn_at_f1opt"):
        assert got[key] == want[key], key
    assert got["ece"] == pytest.approx(want["ece"], rel=1e-9)
    curve = exact.reliability_curve(
        np.concatenate([probs[:, 1], probs[:, 2]]), np.concatenate([labels == 1, labels == 2])
    )
    assert streamed.reliability_curve()["count"] == curve["count"]
    np.testing.assert_allclose(streamed.reliability_curve()["observed"], curve["observed"], rtol=1e-9)
    for cls, name in ((1, "acceptor"), (2, "donor")):
        assert streamed.classes[cls].f1_optimal_threshold() == exact.f1_optimal_threshold(probs[:, cls], labels == cls)
        pr, pr_exact = streamed.pr_curves()[name], exact.precision_recall_curve(probs[:, cls], labels == cls)
        np.testing.assert_allclose(pr["recall"], pr_exact["recall"])
        np.testing.assert_allclose(pr["precision"], pr_exact["precision"], atol=1e-4)


def test_many_small_pieces_give_the_same_card(real):
    """Past PIECES genes the exact score lists are joined into one array (their count must not grow with the genes):
    the same report card as the whole genes give."""
    from meta_layer_cli.evaluation.streaming import PIECES

    whole, pieces, n = CanonicalScores({1: 0.3, 2: 0.6}), CanonicalScores({1: 0.3, 2: 0.6}), 0
    for probs, labels in real:
        whole.add(probs, labels)
        for start in range(0, len(labels), 97):
            pieces.add(probs[start : start + 97], labels[start : start + 97])
            n += 1
    assert n > 2 * PIECES
    assert pieces.metrics() == pytest.approx(whole.metrics(), rel=1e-12)


@pytest.mark.parametrize("bits", [2, 6])
def test_the_bound_holds_when_bins_are_coarse(real, bits):
    """With few bins many negatives share a positive's bin: the estimate moves, never past its bound."""
    for cls in (1, 2):
        s = SiteScores(mantissa_bits=bits)
        for probs, labels in real:
            s.add(probs[:, cls], labels == cls)
        scores = np.concatenate([p[:, cls] for p, _ in real])
        truth = np.concatenate([lab == cls for _, lab in real])
        ap, bound = s.average_precision()
        assert bound > 0 and abs(ap - exact.average_precision(scores, truth)) <= bound + 1e-12
        topk, bound = s.topk()
        assert abs(topk - exact.topk_accuracy(scores, truth)) <= bound + 1e-12


def test_ties_and_empty_classes():
    rng = np.random.default_rng(0)
    scores = rng.choice(np.array([0.0, 0.1, 0.5, 0.9], np.float32), 5000)
    truth = rng.random(5000) < 0.1
    s = SiteScores()
    for part in range(0, 5000, 700):
        s.add(scores[part : part + 700], truth[part : part + 700])
    ap, bound = s.average_precision()
    assert abs(ap - exact.average_precision(scores, truth)) <= bound + 1e-12
    topk, bound = s.topk()
    assert abs(topk - exact.topk_accuracy(scores, truth)) <= bound + 1e-12
    none = SiteScores()
    none.add(scores, np.zeros(5000, bool))
    assert np.isnan(none.average_precision()[0]) and np.isnan(none.topk()[0]) and none.f1_optimal_threshold() == 0.5


def test_calibration_fitted_on_bins_equals_the_fit_on_every_score(real):
    from meta_layer_cli.models.site_calibration import SiteCalibration

    probs = np.concatenate([p for p, _ in real])
    labels = np.concatenate([lab for _, lab in real])
    binned = {c: BinnedScores() for c in (1, 2)}
    for p, lab in real:
        for c, b in binned.items():
            b.add(p[:, c], lab == c)
    # the temperature is the same; an isotonic map's knots (pool centres) move within a bin's width
    for method, tolerance in (("temperature", 1e-6), ("isotonic", 1e-3)):
        whole = SiteCalibration.fit(probs, labels, method)
        from_bins = SiteCalibration.fit_binned({c: b.points() for c, b in binned.items()}, method)
        np.testing.assert_allclose(from_bins(probs), whole(probs), atol=tolerance)
