"""Training chunks drawn from gene arrays."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from meta_layer_cli.artifacts import GeneArrays, gene_lengths
from meta_layer_cli.io.sequence import codes_to_one_hot
from meta_layer_cli.models.apply import window_arrays
from meta_layer_cli.runtime.progress import Progress

IGNORE = -100  # label of positions outside a gene (no loss)


class ChunkSampler:
    """Batches of ``chunk``-nt stretches of genes, each with ``margin`` nt of context.

    Most chunks are centred near *candidates* — true sites and positions the
    base model scores at least ``candidate_threshold`` — where the meta-layer
    has work to do; ``random_fraction`` of them are placed uniformly, so the
    background is seen at its natural rate too.

    A batch is ``(one_hot [B, 4, chunk + 2m], tracks [B, C, chunk + 2m], labels [B, chunk])``.
    """

    def __init__(
        self,
        genes: Sequence[GeneArrays],
        channels: Sequence[str],
        chunk: int,
        margin: int,
        candidate_threshold: float = 0.01,
        random_fraction: float = 0.3,
    ):
        if not genes:
            raise ValueError("no genes to sample chunks from")
        # a StoredGenes stays one: a list would hold an object per gene
        self.genes = genes if isinstance(genes, Sequence) else list(genes)
        self.chunk, self.margin = chunk, margin
        self.random_fraction = random_fraction
        lengths = gene_lengths(self.genes).astype(np.float64)
        self._gene_p = lengths / lengths.sum()
        # every channel but "neither" is evidence of a site (a Pangolin tissue, an acceptor...)
        rows = [i for i, name in enumerate(channels) if not name.endswith("neither")]
        # The candidate index: every candidate's position, gene after gene, in a memory-mapped temporary file
        # (4 bytes a candidate, on disk), and where each gene's run starts (in memory, 8 bytes a gene). A draw
        # reads one position, so memory does not grow with the genome; the draws are those of a flat index.
        counts = np.zeros(len(self.genes) + 1, dtype=np.int64)
        with (
            tempfile.TemporaryFile(prefix="metalayer-candidates-") as fh,
            Progress(
                f"candidate index ({len(self.genes):,} genes)", total=int(lengths.sum()), unit="nt", enabled=None
            ) as bar,
        ):
            for i, g in enumerate(self.genes):
                site_like = (g.labels > 0) | (g.tracks[rows].max(axis=0) >= candidate_threshold)
                pos = np.flatnonzero(site_like).astype(np.int32)
                fh.write(pos.tobytes())
                counts[i + 1] = len(pos)
                bar.update(len(g))
            fh.flush()
            self._cand_start = np.cumsum(counts)
            total = int(self._cand_start[-1])
            # the mapping outlives the file object (the file itself vanishes with the last reference)
            self._cand_pos = np.memmap(fh, dtype=np.int32, mode="r", shape=(total,)) if total else np.zeros(0, np.int32)

    def __len__(self) -> int:
        return len(self.genes)

    def candidate(self, k: int) -> tuple[int, int]:
        """(gene index, position) of the ``k``-th candidate of the flat index."""
        gi = int(np.searchsorted(self._cand_start, k, side="right")) - 1
        return gi, int(self._cand_pos[k])

    def _starts(self, n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
        out = []
        for _ in range(n):
            if len(self._cand_pos) and rng.random() >= self.random_fraction:
                k = rng.integers(len(self._cand_pos))
                gi, centre = self.candidate(int(k))
                start = centre - int(rng.integers(self.chunk))
            else:
                gi = int(rng.choice(len(self.genes), p=self._gene_p))
                start = int(rng.integers(-self.chunk // 2, max(len(self.genes[gi]) - self.chunk // 2, 1)))
            out.append((gi, start))
        return out

    def batch(self, picks: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        codes, tracks, labels = [], [], []
        for gi, start in picks:
            g = self.genes[gi]
            # only the window is read (the gene may be memory-mapped from disk)
            begin, end = start - self.margin, start + self.chunk + self.margin
            lo, hi = min(max(begin, 0), len(g)), max(min(end, len(g)), 0)
            c, t = window_arrays(g.codes[lo:hi], g.tracks_slice(lo, hi), begin - lo, end - lo)
            codes.append(c)
            tracks.append(t)
            lab = np.full(self.chunk, IGNORE, dtype=np.int64)
            lo, hi = max(start, 0), min(start + self.chunk, len(g))
            if hi > lo:
                lab[lo - start : hi - start] = g.labels[lo:hi]
            labels.append(lab)
        return (
            torch.from_numpy(codes_to_one_hot(np.stack(codes))),
            torch.from_numpy(np.stack(tracks)),
            torch.from_numpy(np.stack(labels)),
        )

    def batches(self, n_chunks: int, batch_size: int, rng: np.random.Generator) -> Iterator[tuple]:
        picks = self._starts(n_chunks, rng)
        for i in range(0, len(picks), batch_size):
            yield self.batch(picks[i : i + batch_size])
