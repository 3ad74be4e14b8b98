"""Evaluate a tracks folder written by :func:`meta_layer_cli.artifacts.predict_tracks` (the base model alone)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from meta_layer_cli.artifacts import iter_tracks, read_manifest
from meta_layer_cli.artifacts.tracks import finished_gene_ids, manifest_record, require_complete
from meta_layer_cli.evaluation.streaming import SiteScores
from meta_layer_cli.runtime.errors import InputDataError, UsageError
from meta_layer_cli.runtime.progress import Progress, phase


@phase("evaluate")
def evaluate_tracks(
    tracks_dir: str | os.PathLike,
    gene_ids: Sequence[str] | None = None,
    threshold: float = 0.5,
    allow_partial: bool = False,
) -> dict:
    """Top-k accuracy, PR-AUC and FP/FN at ``threshold`` over all (or the given) genes.

    Needs ``neither, acceptor, donor`` channels (SpliceAI, OpenSpliceAI). A folder with planned
    genes still missing, or ``gene_ids`` it lacks, is refused unless ``allow_partial``.
    """
    if not (isinstance(threshold, (int, float)) and 0 <= threshold <= 1):  # NaN fails both comparisons
        raise UsageError(f"--threshold {threshold}: a score threshold is a probability in [0, 1]")
    manifest = read_manifest(tracks_dir)
    if not {"acceptor", "donor"} <= set(manifest["channels"]):
        raise InputDataError(f"{tracks_dir}: channels {manifest['channels']} have no acceptor/donor to evaluate")
    require_complete(tracks_dir, manifest, allow_partial)
    finished = finished_gene_ids(tracks_dir, manifest)
    if gene_ids is not None:
        gene_ids = list(dict.fromkeys(gene_ids))
        if not gene_ids:
            raise UsageError("no genes named")
        known = set(finished)
        unknown = [g for g in gene_ids if g not in known]
        if unknown:
            raise InputDataError(f"gene(s) not in {tracks_dir}: {', '.join(unknown[:10])}")
    else:
        gene_ids = finished
    # streamed gene by gene (memory does not grow with the genome); PR-AUC and top-k within a stated bound
    scores = {c: SiteScores([threshold]) for c in (1, 2)}
    n_genes = n_nt = 0
    with Progress("evaluate: genes", total=len(gene_ids), unit="genes", enabled=None) as bar:
        for _, frame in iter_tracks(tracks_dir, gene_ids):
            probs = frame.select("neither", "acceptor", "donor").to_numpy()
            labels = frame["label"].to_numpy()
            for c, s in scores.items():
                s.add(probs[:, c], labels == c)
            n_genes += 1
            n_nt += len(labels)
            bar.update(1)
    if not n_genes:
        raise InputDataError(f"{tracks_dir}: no finished gene tracks to evaluate")
    result: dict = {}
    bounds = []
    for c, name in ((1, "acceptor"), (2, "donor")):
        s = scores[c]
        result[f"topk_{name}"], _ = s.topk()
        result[f"pr_auc_{name}"], bound = s.average_precision()
        bounds.append(bound)
        result[f"fp_{name}"], result[f"fn_{name}"] = s.confusion_at(threshold)
        result[f"n_{name}"] = s.n_sites
    result["pr_auc_macro"] = (result["pr_auc_acceptor"] + result["pr_auc_donor"]) / 2
    result["n_nt"] = n_nt
    result["pr_auc_error_bound"] = max(bounds)
    result["topk_mean"] = (result["topk_acceptor"] + result["topk_donor"]) / 2
    result["threshold"] = float(threshold)
    record = manifest_record(manifest)
    result["n_genes"] = n_genes
    result["base_model"] = record.name
    result["weights_checksum"] = record.weights_checksum
    return result
