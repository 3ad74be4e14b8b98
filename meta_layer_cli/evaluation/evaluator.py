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
from meta_layer_cli.runtime.errors import InputDataError


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
    thresholds: dict[str, dict] | None = None,
    calibration=None,
) -> Evaluation:
    """Metrics of the meta model and of the base model on every position of ``test_genes``.

    F1-optimal thresholds are chosen on ``validation_genes`` for each model separately, or taken
    from ``thresholds`` (``{"meta": {"1": t, "2": t}, "base": ...}``, as a checkpoint stores them:
    then ``validation_genes`` may be empty). ``calibration``: the checkpoint's post-hoc
    calibration (:class:`~meta_layer_cli.models.site_calibration.SiteCalibration`), applied to the
    final output as ``predict`` applies it.
    With ``structure`` the meta model's output is decoded gene by gene (what
    ``recalibrate`` writes for such a checkpoint), and the undecoded meta model is
    reported too, as ``extra["meta_per_nucleotide"]``. ``per_nucleotide``: the meta
    model's (validation, test) probabilities if already computed.
    """
    if not test_genes:
        raise InputDataError("no test genes to evaluate on")
    if thresholds is not None:
        validation_genes = []
    elif not validation_genes:
        raise InputDataError("no validation genes to choose the F1-optimal thresholds on")
    if per_nucleotide is None:
        per_nucleotide = (meta_probabilities(model, validation_genes, device),
                          meta_probabilities(model, test_genes, device))  # fmt: skip
    val_meta, test_meta = per_nucleotide

    def joined(arrays: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(arrays) if arrays else np.zeros((0, 3), np.float32)

    def final(p: np.ndarray, g: GeneArrays) -> np.ndarray:
        p = structure(p, g.codes) if structure is not None else p
        return calibration(p) if calibration is not None else p

    sources = {"meta": (joined([final(p, g) for p, g in zip(val_meta, validation_genes)]),
                        joined([final(p, g) for p, g in zip(test_meta, test_genes)]))}  # fmt: skip
    if structure is not None or calibration is not None:
        sources["meta_per_nucleotide"] = (joined(val_meta), joined(test_meta))
    if base_probabilities(test_genes[0].tracks, channels) is not None:
        sources["base"] = (
            joined([base_probabilities(g.tracks, channels) for g in validation_genes]),
            joined([base_probabilities(g.tracks, channels) for g in test_genes]),
        )
    labels_val = np.concatenate([g.labels for g in validation_genes]) if validation_genes else np.zeros(0, np.int8)
    labels_test = np.concatenate([g.labels for g in test_genes])
    given = thresholds
    results, thresholds, curves, pr = {}, {}, {}, {}
    for name, (val, test) in sources.items():
        if given is not None:
            if name not in given:
                if name in ("meta", "base"):
                    raise InputDataError(f"no stored thresholds for {name!r}")
                continue  # a further variant the checkpoint kept no thresholds for
            thr = {cls: float(given[name][str(cls)] if str(cls) in given[name] else given[name][cls])
                   for cls in (1, 2)}  # fmt: skip
        else:
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
