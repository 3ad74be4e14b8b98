"""Meta model vs base model on exactly the same positions of held-out genes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from torch import nn

from meta_layer_cli.artifacts import GeneArrays, gene_lengths
from meta_layer_cli.evaluation.streaming import CanonicalScores, SiteScores, add_source
from meta_layer_cli.features.scores import splice_groups
from meta_layer_cli.models.apply import recalibrate_arrays
from meta_layer_cli.models.structure import GeneStructureDecoder
from meta_layer_cli.runtime.errors import InputDataError
from meta_layer_cli.runtime.progress import Progress

if TYPE_CHECKING:
    from meta_layer_cli.runtime.device import DeviceLike


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


def meta_probabilities(model: nn.Module, genes: Sequence[GeneArrays], device: DeviceLike = None) -> list[np.ndarray]:
    """Per gene ``[L, 3]``: the meta model alone (no gene-structure decoding). Holds every gene's
    probabilities: for a few genes; :func:`evaluate_meta` streams."""
    return [recalibrate_arrays(model, g.codes, g.tracks, device=device) for g in genes]


def gene_probabilities(
    model: nn.Module,
    channels: Sequence[str],
    genes: Iterable[GeneArrays],
    device: DeviceLike = None,
    structure: GeneStructureDecoder | None = None,
    calibration=None,
    per_nucleotide: Iterable[np.ndarray] | None = None,
) -> Iterator[tuple[GeneArrays, np.ndarray, dict[str, np.ndarray]]]:
    """Gene by gene: (gene, labels ``[L]``, ``{source: [L, 3]}``) with sources ``meta`` (the final output:
    decoded with ``structure``, calibrated with ``calibration``), ``meta_per_nucleotide`` (the meta model
    alone, when it differs from ``meta``) and ``base`` (the first base model with neither/acceptor/donor
    channels, if any). ``per_nucleotide``: the meta model's probabilities if already computed."""
    has_base = bool(splice_groups(channels))
    precomputed = iter(per_nucleotide) if per_nucleotide is not None else None
    for g in genes:
        codes, tracks = g.codes, g.tracks
        p = next(precomputed) if precomputed is not None else recalibrate_arrays(model, codes, tracks, device=device)
        final = structure(p, codes) if structure is not None else p
        final = calibration(final) if calibration is not None else final
        sources = {"meta": final}
        if structure is not None or calibration is not None:
            sources["meta_per_nucleotide"] = p
        if has_base:
            sources["base"] = base_probabilities(tracks, channels)
        yield g, np.asarray(g.labels), sources


def total_nt(genes: Sequence[GeneArrays]) -> int:
    return int(gene_lengths(genes).sum())


def choose_thresholds(scores: dict[str, dict[int, SiteScores]]) -> dict[str, dict[int, float]]:
    """F1-optimal per-class thresholds of each source's streamed validation scores."""
    return {name: {c: s.f1_optimal_threshold() for c, s in by_class.items()} for name, by_class in scores.items()}


def evaluate_meta(
    model: nn.Module,
    channels: Sequence[str],
    test_genes: Sequence[GeneArrays],
    validation_genes: Sequence[GeneArrays],
    device: DeviceLike = None,
    structure: GeneStructureDecoder | None = None,
    per_nucleotide: tuple[list[np.ndarray], list[np.ndarray]] | None = None,
    thresholds: dict[str, dict] | None = None,
    calibration=None,
    progress: bool | None = None,
    phase: str = "evaluate",
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

    Genes are streamed, one at a time (:mod:`~meta_layer_cli.evaluation.streaming`): memory does
    not grow with their number, PR-AUC and top-k come with an error bound
    (``pr_auc_error_bound``, ``topk_error_bound``), the rest is exact. ``phase`` names the progress
    lines (``progress=None``: shown as the phase it runs in is).
    """
    if not test_genes:
        raise InputDataError("no test genes to evaluate on")
    if thresholds is not None:
        validation_genes = []
    elif not validation_genes:
        raise InputDataError("no validation genes to choose the F1-optimal thresholds on")
    val_p, test_p = per_nucleotide if per_nucleotide is not None else (None, None)
    given = thresholds
    if given is None:
        scores: dict[str, dict[int, SiteScores]] = {}
        with Progress(
            f"{phase}: validation genes (thresholds)", total=total_nt(validation_genes), unit="nt", enabled=progress
        ) as bar:
            for n, (_, labels, sources) in enumerate(
                gene_probabilities(model, channels, validation_genes, device, structure, calibration, val_p), 1
            ):
                for name, p in sources.items():
                    add_source(scores, name, p, labels)
                bar.update(len(labels), genes=f"{n:,}/{len(validation_genes):,}")
        chosen = choose_thresholds(scores)
    else:
        chosen = {}
        for name in ("meta", "meta_per_nucleotide", "base"):
            if name not in given:
                if name in ("meta", "base") and (name == "meta" or splice_groups(channels)):
                    raise InputDataError(f"no stored thresholds for {name!r}")
                continue  # a further variant the checkpoint kept no thresholds for
            chosen[name] = {
                cls: float(given[name][str(cls)] if str(cls) in given[name] else given[name][cls]) for cls in (1, 2)
            }
    results: dict[str, CanonicalScores] = {}
    with Progress(f"{phase}: test genes", total=total_nt(test_genes), unit="nt", enabled=progress) as bar:
        for n, (_, labels, sources) in enumerate(
            gene_probabilities(model, channels, test_genes, device, structure, calibration, test_p), 1
        ):
            for name, p in sources.items():
                if name not in chosen:
                    continue
                if name not in results:  # once per source (setdefault built a pair of histograms per gene)
                    results[name] = CanonicalScores(chosen[name])
                results[name].add(p, labels)
            bar.update(len(labels), genes=f"{n:,}/{len(test_genes):,}")
    metrics = {name: r.metrics() for name, r in results.items()}
    curves = {name: r.reliability_curve() for name, r in results.items()}
    pr = {name: r.pr_curves() for name, r in results.items()}
    thresholds_used = {name: chosen[name] for name in results}
    extra = {k: v for k, v in metrics.items() if k not in ("meta", "base")}
    return Evaluation(
        metrics["meta"], metrics.get("base"), thresholds_used, curves, [g.gene_id for g in test_genes], pr, extra
    )
