"""Fitting the gene-structure decoder (:mod:`meta_layer_cli.models.structure`) on validation genes."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np

from meta_layer_cli.evaluation.metrics import average_precision
from meta_layer_cli.models.structure import GeneStructureDecoder

# scale, bias and the coding reward matter; the length limits and the start weight barely do
# (measured on SpliceAI tracks of the demo genes), so they stay fixed
DEFAULT_GRID: dict[str, Sequence] = {
    "scale": (0.75, 1.0, 1.25),
    "bias": (-0.5, 0.0, 0.5, 1.0),
    "coding_reward": (0.0, 0.01, 0.02),
    "start_weight": (-10.0,),
    "min_exon": (3,),
    "min_intron": (30,),
}


def fit_structure_decoder(
    probs: Iterable[np.ndarray],
    labels: Iterable[np.ndarray],
    codes: Iterable[np.ndarray],
    grid: dict[str, Sequence] | None = None,
    threshold: float = 3e-3,
) -> tuple[GeneStructureDecoder, float]:
    """Grid-search the decoder on validation genes; returns it and its macro PR-AUC there.

    Per gene: ``probs [L, 3]`` (neither, acceptor, donor), ``labels [L]`` (0 neither, 1 acceptor,
    2 donor), ``codes [L]`` (0-3 ACGT, 4 N; read when the coding reward is > 0). One scale and bias
    serve both site types.
    """
    grid = {**DEFAULT_GRID, **(grid or {})}
    unknown = set(grid) - set(DEFAULT_GRID)
    if unknown:
        raise ValueError(f"unknown structure grid key(s): {', '.join(sorted(unknown))}")
    probs, labels, codes = list(probs), list(labels), list(codes)
    if not len(probs) == len(labels) == len(codes):
        raise ValueError(f"{len(probs)} probability arrays, {len(labels)} label arrays, {len(codes)} code arrays")
    truth = {c: np.concatenate([lab == c for lab in labels]) for c in (1, 2)}
    best: tuple[float, GeneStructureDecoder] | None = None
    for scale, bias, reward, start, min_exon, min_intron in itertools.product(*(grid[k] for k in DEFAULT_GRID)):
        dec = GeneStructureDecoder(scale, bias, scale, bias, int(min_exon), int(min_intron), threshold,
                                   coding_reward=reward, start_weight=start)  # fmt: skip
        decoded = [dec(p, c) for p, c in zip(probs, codes)]
        scores = [average_precision(np.concatenate([d[:, c] for d in decoded]), truth[c]) for c in (1, 2)]
        score = float(np.mean(scores))
        if best is None or score > best[0]:
            best = (score, dec)
    if best is None:
        raise ValueError("empty structure grid")
    return best[1], best[0]
