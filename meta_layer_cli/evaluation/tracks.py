"""Evaluate a tracks directory written by :func:`meta_layer_cli.artifacts.predict_tracks`."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from meta_layer_cli.artifacts import iter_tracks, read_manifest
from meta_layer_cli.evaluation.metrics import site_metrics


def evaluate_tracks(
    tracks_dir: str | os.PathLike, gene_ids: Sequence[str] | None = None, threshold: float = 0.5
) -> dict:
    """Top-k accuracy, PR-AUC and FP/FN at ``threshold`` over all (or the given) genes.

    Needs ``neither, acceptor, donor`` channels (SpliceAI, OpenSpliceAI).
    """
    manifest = read_manifest(tracks_dir)
    if not {"acceptor", "donor"} <= set(manifest["channels"]):
        raise ValueError(f"{tracks_dir}: channels {manifest['channels']} have no acceptor/donor to evaluate")
    probs, labels, n_genes = [], [], 0
    for _, frame in iter_tracks(tracks_dir, gene_ids):
        probs.append(frame.select("neither", "acceptor", "donor").to_numpy())
        labels.append(frame["label"].to_numpy())
        n_genes += 1
    if not n_genes:
        raise ValueError(f"{tracks_dir}: no finished gene tracks to evaluate")
    result = site_metrics(np.concatenate(probs), np.concatenate(labels), threshold)
    result["n_genes"] = n_genes
    result["base_model"] = manifest["base_model"]
    result["weights_checksum"] = manifest["weights_checksum"]
    return result
