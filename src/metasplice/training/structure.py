"""Fitting the gene-structure decoder (:mod:`metasplice.models.structure`) on validation genes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from metasplice.evaluation.metrics import average_precision
from metasplice.models.structure import GeneStructureDecoder

# scale and bias matter; the length limits barely do (measured on SpliceAI tracks), so they stay fixed
DEFAULT_GRID: dict[str, Sequence] = {
    "scale": (0.75, 1.0, 1.25, 1.5),
    "bias": (-1.0, -0.5, 0.0, 0.5),
    "min_exon": (3,),
    "min_intron": (30,),
}


def fit_structure_decoder(
    probs: Iterable[np.ndarray],
    labels: Iterable[np.ndarray],
    grid: dict[str, Sequence] | None = None,
    threshold: float = 1e-3,
) -> tuple[GeneStructureDecoder, float]:
    """Grid-search the decoder on validation genes; returns it and its macro PR-AUC there.

    ``probs``: per gene ``[L, 3]`` (neither, acceptor, donor); ``labels``: per gene ``[L]``
    (0 neither, 1 acceptor, 2 donor). One scale and bias serve both site types.
    """
    grid = {**DEFAULT_GRID, **(grid or {})}
    unknown = set(grid) - set(DEFAULT_GRID)
    if unknown:
        raise ValueError(f"unknown structure grid key(s): {', '.join(sorted(unknown))}")
    probs, labels = list(probs), list(labels)
    truth = {c: np.concatenate([lab == c for lab in labels]) for c in (1, 2)}
    best: tuple[float, GeneStructureDecoder] | None = None
    for scale in grid["scale"]:
        for bias in grid["bias"]:
            for min_exon in grid["min_exon"]:
                for min_intron in grid["min_intron"]:
                    dec = GeneStructureDecoder(scale, bias, scale, bias, int(min_exon), int(min_intron), threshold)
                    decoded = [dec(p) for p in probs]
                    scores = [average_precision(np.concatenate([d[:, c] for d in decoded]), truth[c]) for c in (1, 2)]
                    score = float(np.mean(scores))
                    if best is None or score > best[0]:
                        best = (score, dec)
    if best is None:
        raise ValueError("empty structure grid")
    return best[1], best[0]
