"""evaluate_meta chooses each model's F1-optimal thresholds on the validation genes, never on the test genes."""

import numpy as np
import pytest
import torch

from meta_layer_cli.evaluation.evaluator import base_probabilities, evaluate_meta, meta_probabilities
from meta_layer_cli.evaluation.metrics import canonical_metrics, f1_optimal_threshold
from meta_layer_cli.models import MetaModelConfig, build_meta_model
from tests.conftest import TINY_MODEL


def _threshold(probs: list[np.ndarray], genes, cls: int) -> float:
    labels = np.concatenate([g.labels for g in genes])
    return f1_optimal_threshold(np.concatenate(probs)[:, cls], labels == cls)


def test_thresholds_are_chosen_on_the_validation_genes(osai80_arrays):
    channels, genes = osai80_arrays
    validation, test = genes[:3], genes[3:6]  # short genes (2-3 kb each)
    model = build_meta_model(MetaModelConfig(channels=channels, **TINY_MODEL), seed=0)
    with torch.no_grad():  # a meta model that differs from its base model, so "meta" is a second check
        model.head.bias.copy_(torch.tensor([0.0, 0.5, -0.5]))
    evaluation = evaluate_meta(model, channels, test, validation)
    probabilities = {
        "base": lambda gs: [base_probabilities(g.tracks, channels) for g in gs],
        "meta": lambda gs: meta_probabilities(model, gs),
    }
    for name, probs in probabilities.items():
        for cls in (1, 2):
            on_validation, on_test = _threshold(probs(validation), validation, cls), _threshold(probs(test), test, cls)
            assert on_validation != pytest.approx(on_test)  # these genes tell the two apart, so this test can fail
            assert evaluation.thresholds[name][cls] == on_validation, (name, cls)
        # and the FP/FN at the F1-optimal threshold are counted on the test genes at those thresholds
        labels = np.concatenate([g.labels for g in test])
        expected = canonical_metrics(np.concatenate(probs(test)), labels, evaluation.thresholds[name])
        got = evaluation.meta if name == "meta" else evaluation.base
        assert (got["fp_at_f1opt"], got["fn_at_f1opt"]) == (expected["fp_at_f1opt"], expected["fn_at_f1opt"])


def test_stored_thresholds_are_used_as_given(osai80_arrays):
    channels, genes = osai80_arrays
    model = build_meta_model(MetaModelConfig(channels=channels, **TINY_MODEL), seed=0)
    stored = {"meta": {"1": 0.25, "2": 0.75}, "base": {"1": 0.3, "2": 0.6}}
    evaluation = evaluate_meta(model, channels, genes[3:6], [], thresholds=stored)
    assert evaluation.thresholds["meta"] == {1: 0.25, 2: 0.75} and evaluation.thresholds["base"] == {1: 0.3, 2: 0.6}
    with pytest.raises(ValueError, match="validation genes"):
        evaluate_meta(model, channels, genes[3:6], [])


def test_histograms_are_built_once_per_source_not_per_gene(osai80_arrays, monkeypatch):
    """Each SiteScores holds a 33-MB histogram. dict.setdefault(name, SiteScores...) built (and dropped) a pair for
    every gene and source: at 32,736 test genes that was 267 s of allocation in a 430-s evaluation, and the
    cause of evaluate's superlinear time in scripts/memory_scaling.py. The count must not grow with the genes."""
    from meta_layer_cli.evaluation.streaming import SiteScores

    built = []
    original = SiteScores.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(SiteScores, "__init__", counting)
    channels, genes = osai80_arrays
    model = build_meta_model(MetaModelConfig(channels=channels, **TINY_MODEL), seed=0)
    counts = []
    for n in (2, 4):
        built.clear()
        evaluate_meta(model, channels, genes[3 : 3 + n], genes[:n])
        counts.append(len(built))
    assert counts[0] == counts[1] == 8  # (meta, base) x (acceptor, donor), for the validation and the test genes
