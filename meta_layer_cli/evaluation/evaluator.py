"""Meta model vs base model on exactly the same positions of held-out genes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from meta_layer_cli.artifacts import GeneArrays
from meta_layer_cli.evaluation.metrics import (
    canonical_metrics,
    f1_optimal_threshold,
    precision_recall_curve,
    reliability_curve,
)
from meta_layer_cli.features.scores import splice_groups
from meta_layer_cli.models.apply import recalibrate_arrays
from meta_layer_cli.models.structure import GeneStructureDecoder


@dataclass
class Evaluation:
    meta: dict
    base: dict | None
    thresholds: dict[str, dict[int, float]]
    reliability: dict[str, dict]
    gene_ids: list[str]
    pr_curves: dict[str, dict[str, dict]]
    extra: dict[str, dict] = field(default_factory=dict)  # metrics of further variants (name -> metrics)


def base_probabilities(tracks: np.ndarray, channels: Sequence[str]) -> np.ndarray | None:
    """``[L, 3]`` (neither, acceptor, donor) of the first base model that has them, else None."""
    groups = splice_groups(channels)
    if not groups:
        return None
    return tracks[list(groups[0])].T


def meta_probabilities(model: nn.Module, genes: Sequence[GeneArrays], device: str = "cpu") -> list[np.ndarray]:
    """Per gene ``[L, 3]``: the meta model alone (no gene-structure decoding)."""
    return [recalibrate_arrays(model, g.codes, g.tracks, device=device) for g in genes]


def evaluate_meta(
    model: nn.Module,
    channels: Sequence[str],
    test_genes: Sequence[GeneArrays],
    validation_genes: Sequence[GeneArrays],
    device: str = "cpu",
    structure: GeneStructureDecoder | None = None,
    per_nucleotide: tuple[list[np.ndarray], list[np.ndarray]] | None = None,
) -> Evaluation:
    """Metrics of the meta model and of the base model on every position of ``test_genes``.

    F1-optimal thresholds are chosen on ``validation_genes`` for each model separately.
    With ``structure`` the meta model's output is decoded gene by gene (what
    ``recalibrate`` writes for such a checkpoint), and the undecoded meta model is
    reported too, as ``extra["meta_per_nucleotide"]``. ``per_nucleotide``: the meta
    model's (validation, test) probabilities if already computed.
    """
    if per_nucleotide is None:
        per_nucleotide = (meta_probabilities(model, validation_genes, device),
                          meta_probabilities(model, test_genes, device))  # fmt: skip
    val_meta, test_meta = per_nucleotide
    sources = {}
    if structure is not None:
        sources["meta"] = (np.concatenate([structure(p, g.codes) for p, g in zip(val_meta, validation_genes)]),
                           np.concatenate([structure(p, g.codes) for p, g in zip(test_meta, test_genes)]))  # fmt: skip
        sources["meta_per_nucleotide"] = (np.concatenate(val_meta), np.concatenate(test_meta))
    else:
        sources["meta"] = (np.concatenate(val_meta), np.concatenate(test_meta))
    base_val = [base_probabilities(g.tracks, channels) for g in validation_genes]
    if base_val and base_val[0] is not None:
        sources["base"] = (
            np.concatenate(base_val),
            np.concatenate([base_probabilities(g.tracks, channels) for g in test_genes]),
        )
    labels_val = np.concatenate([g.labels for g in validation_genes])
    labels_test = np.concatenate([g.labels for g in test_genes])
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
    extra = {k: v for k, v in results.items() if k not in ("meta", "base")}
    return Evaluation(results["meta"], results.get("base"), thresholds, curves, [g.gene_id for g in test_genes], pr,
                      extra)  # fmt: skip
