"""Fitting the gene-structure decoder (:mod:`meta_layer_cli.models.structure`) on validation genes."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Sequence

import numpy as np

from meta_layer_cli.evaluation.streaming import SiteScores
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


# the grid search decodes each of its genes once per grid point (36 by default, at ~0.4-3.5 M nt/s each on a 2-core
# CPU): it runs on a seeded sample of the validation genes of at most this many nucleotides (every gene when they
# are fewer), which holds thousands of sites, plenty to rank 36 settings; thresholds use every validation gene
GRID_SAMPLE_NT = 5_000_000


def grid_sample(lengths: Sequence[int], limit: int = GRID_SAMPLE_NT, seed: int = 0) -> set[int]:
    """Indices of the genes (of these ``lengths``) the grid search decodes: all, or a seeded random subset of
    at most ``limit`` nt (genes longer than what is left are skipped, so one giant gene cannot take it all)."""
    if sum(lengths) <= limit:
        return set(range(len(lengths)))
    chosen, total = set(), 0
    for i in np.random.default_rng(seed).permutation(len(lengths)):
        if total + lengths[i] <= limit:
            chosen.add(int(i))
            total += lengths[i]
    return chosen


class StructureSearch:
    """The decoder grid search, fed one validation gene at a time (memory does not grow with their number).

    Each grid point keeps its decoded scores in :class:`~meta_layer_cli.evaluation.streaming.SiteScores`
    with ``mantissa_bits`` of histogram resolution (12: 1 MB per class and grid point, PR-AUC to about
    1e-4 and usually much better; the bound is :attr:`error_bound`), so the chosen decoder's F1-optimal
    thresholds come from the same pass.
    """

    def __init__(self, grid: dict[str, Sequence] | None = None, threshold: float = 3e-3, mantissa_bits: int = 12):
        grid = {**DEFAULT_GRID, **(grid or {})}
        unknown = set(grid) - set(DEFAULT_GRID)
        if unknown:
            raise ValueError(f"unknown structure grid key(s): {', '.join(sorted(unknown))}")
        self.decoders = [
            GeneStructureDecoder(
                scale,
                bias,
                scale,
                bias,
                int(min_exon),
                int(min_intron),
                threshold,
                coding_reward=reward,
                start_weight=start,
            )
            for scale, bias, reward, start, min_exon, min_intron in itertools.product(*(grid[k] for k in DEFAULT_GRID))
        ]
        if not self.decoders:
            raise ValueError("empty structure grid")
        self.scores = [{c: SiteScores(mantissa_bits=mantissa_bits) for c in (1, 2)} for _ in self.decoders]
        self.seconds = 0.0

    def add(self, probs: np.ndarray, labels: np.ndarray, codes: np.ndarray) -> None:
        """One gene: ``probs [L, 3]``, ``labels [L]``, ``codes [L]`` (read when the coding reward is > 0)."""
        started = time.perf_counter()
        labels = np.asarray(labels)
        for dec, by_class in zip(self.decoders, self.scores):
            decoded = dec(probs, codes)
            for c, s in by_class.items():
                s.add(decoded[:, c], labels == c)
        self.seconds += time.perf_counter() - started

    def macro(self, i: int) -> tuple[float, float]:
        """(macro PR-AUC, its error bound) of grid point ``i``."""
        (a, ea), (d, ed) = (self.scores[i][c].average_precision() for c in (1, 2))
        return (a + d) / 2, max(ea, ed)

    def best(self) -> tuple[GeneStructureDecoder, float, dict[int, SiteScores]]:
        """The grid point with the highest macro PR-AUC (the first of equals): decoder, score, its scores."""
        values = [self.macro(i)[0] for i in range(len(self.decoders))]
        i = max(range(len(values)), key=lambda j: (values[j], -j))
        return self.decoders[i], values[i], self.scores[i]

    @property
    def error_bound(self) -> float:
        return max(self.macro(i)[1] for i in range(len(self.decoders)))


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
    serve both site types. (For many genes, feed a :class:`StructureSearch` gene by gene instead.)
    """
    search = StructureSearch(grid, threshold)
    probs, labels, codes = list(probs), list(labels), list(codes)
    if not len(probs) == len(labels) == len(codes):
        raise ValueError(f"{len(probs)} probability arrays, {len(labels)} label arrays, {len(codes)} code arrays")
    for p, lab, c in zip(probs, labels, codes):
        search.add(p, lab, c)
    decoder, score, _ = search.best()
    return decoder, score
