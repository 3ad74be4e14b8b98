"""Meta model vs base model on exactly the same positions of held-out genes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn

from metasplice.artifacts import GeneArrays
from metasplice.evaluation.metrics import (
    canonical_metrics,
    f1_optimal_threshold,
    precision_recall_curve,
    reliability_curve,
)
from metasplice.features.scores import splice_groups
from metasplice.models.apply import recalibrate_arrays


@dataclass
class Evaluation:
    meta: dict
    base: dict | None
    thresholds: dict[str, dict[int, float]]
    reliability: dict[str, dict]
    gene_ids: list[str]
    pr_curves: dict[str, dict[str, dict]]


def base_probabilities(tracks: np.ndarray, channels: Sequence[str]) -> np.ndarray | None:
    """``[L, 3]`` (neither, acceptor, donor) of the first base model that has them, else None."""
    groups = splice_groups(channels)
    if not groups:
        return None
    return tracks[list(groups[0])].T


def meta_probabilities(model: nn.Module, genes: Sequence[GeneArrays], device: str = "cpu") -> list[np.ndarray]:
    return [recalibrate_arrays(model, g.codes, g.tracks, device=device) for g in genes]


def evaluate_meta(
    model: nn.Module,
    channels: Sequence[str],
    test_genes: Sequence[GeneArrays],
    validation_genes: Sequence[GeneArrays],
    device: str = "cpu",
) -> Evaluation:
    """Metrics of the meta model and of the base model on every position of ``test_genes``.

    F1-optimal thresholds are chosen on ``validation_genes`` for each model separately.
    """
    labels_val = np.concatenate([g.labels for g in validation_genes])
    labels_test = np.concatenate([g.labels for g in test_genes])
    sources = {"meta": (np.concatenate(meta_probabilities(model, validation_genes, device)),
                        np.concatenate(meta_probabilities(model, test_genes, device)))}  # fmt: skip
    base_val = [base_probabilities(g.tracks, channels) for g in validation_genes]
    if base_val and base_val[0] is not None:
        sources["base"] = (
            np.concatenate(base_val),
            np.concatenate([base_probabilities(g.tracks, channels) for g in test_genes]),
        )
    results, thresholds, curves, pr = {}, {}, {}, {}
    for name, (val, test) in sources.items():
        thr = {cls: f1_optimal_threshold(val[:, cls], labels_val == cls) for cls in (1, 2)}
        thresholds[name] = thr
        results[name] = canonical_metrics(test, labels_test, thr)
        is_site = np.concatenate([labels_test == 1, labels_test == 2])
        curves[name] = reliability_curve(np.concatenate([test[:, 1], test[:, 2]]), is_site)
        pr[name] = {
            kind: precision_recall_curve(test[:, cls], labels_test == cls)
            for cls, kind in ((1, "acceptor"), (2, "donor"))
        }
    return Evaluation(results["meta"], results.get("base"), thresholds, curves, [g.gene_id for g in test_genes], pr)
