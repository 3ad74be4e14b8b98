"""Gene-structure decoding: site probabilities that respect the exon-intron chain of a whole transcript.

A base model (or the per-nucleotide meta model) scores each site from at most a
few kb of sequence, independently of the others. A transcript, read 5'->3' from
its first to its last nucleotide, is more constrained than that: its sites
alternate ``donor, acceptor, donor, ..., acceptor`` (first exon, introns,
internal exons, last exon), introns and exons have minimum lengths, and a gene
has exactly as many donors as acceptors. Two strong acceptors with no donor
between them cannot both be canonical; a weak donor that is the only way to end
an exon between two strong acceptors probably is.

:class:`GeneStructureDecoder` turns that into probabilities. Every position
whose acceptor or donor probability is at least ``threshold`` is a candidate
site with weight ``exp(scale * logit(p) + bias)``; a parse of the gene is an
alternating chain of candidates obeying ``min_exon`` / ``min_intron``; its weight
is the product of its sites' weights. The output is each candidate's posterior
probability of being in the chain (summed over all parses, a semi-Markov
forward-backward over candidates: O(candidates log candidates) per gene).
Positions below ``threshold`` keep their input probability.

It applies only to whole transcripts (a gene's sequence from its transcription
start to its end, in transcript orientation, as every metasplice gene source
provides); windows around a variant are not whole transcripts, so the VCF path
does not use it. Its parameters are fitted on validation genes
(:func:`metasplice.training.structure.fit_structure_decoder`), never on test genes.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

NEG_INF = -math.inf
EPS = 1e-6


def _lse(a: float, b: float) -> float:
    """log(exp(a) + exp(b))."""
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


@dataclass(frozen=True)
class GeneStructureDecoder:
    """Posterior site probabilities under the alternating exon-intron chain (module docstring)."""

    scale_acceptor: float = 1.0
    bias_acceptor: float = 0.0
    scale_donor: float = 1.0
    bias_donor: float = 0.0
    min_exon: int = 1  # nt, acceptor..donor inclusive
    min_intron: int = 1  # nt between a donor and the next acceptor
    threshold: float = 1e-3

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> GeneStructureDecoder:
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown structure decoder key(s): {', '.join(sorted(unknown))}")
        return cls(**values)

    def candidates(self, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidate positions, types (1 acceptor, 2 donor) and log-weights, in decoding order."""
        acc = np.flatnonzero(probs[:, 1] >= self.threshold)
        don = np.flatnonzero(probs[:, 2] >= self.threshold)
        pos = np.concatenate([acc, don])
        kind = np.concatenate([np.ones(len(acc), np.int8), np.full(len(don), 2, np.int8)])
        order = np.lexsort((kind, pos))  # at one position: the acceptor first (a 1-nt exon)
        pos, kind = pos[order], kind[order]
        p = np.clip(probs[pos, kind].astype(np.float64), EPS, 1 - EPS)
        logit = np.log(p) - np.log1p(-p)
        weight = np.where(
            kind == 1,
            self.scale_acceptor * logit + self.bias_acceptor,
            self.scale_donor * logit + self.bias_donor,
        )
        return pos, kind, weight

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        """``[L, 3]`` (neither, acceptor, donor) of one whole transcript -> ``[L, 3]`` decoded."""
        if probs.ndim != 2 or probs.shape[1] != 3:
            raise ValueError(f"expected probabilities [L, 3], got {probs.shape}")
        pos, kind, weight = self.candidates(probs)
        posterior = _chain_posteriors(pos.tolist(), kind.tolist(), weight.tolist(), self.min_exon, self.min_intron)
        out = probs.astype(np.float32, copy=True)
        out[pos, kind] = posterior
        out[:, 0] = np.clip(1.0 - out[:, 1] - out[:, 2], 0.0, 1.0)
        return out


def structure_from_config(config: dict) -> GeneStructureDecoder | None:
    """The decoder stored in a checkpoint's ``config.json`` (``structure`` key), if any."""
    values = config.get("structure")
    return GeneStructureDecoder.from_dict(values) if values else None


def _chain_posteriors(
    pos: Sequence[int], kind: Sequence[int], weight: Sequence[float], min_exon: int, min_intron: int
) -> np.ndarray:
    """Posterior of each candidate being a site of the transcript's chain (semi-Markov forward-backward).

    Forward: ``A[k]`` = log-sum over chains ``D ... A_k`` (first exon .. the exon starting at
    acceptor k); ``D[k]`` likewise ending with donor k. Backward: ``Ab[k]`` / ``Db[k]`` = log-sum
    over completions after the candidate (the last exon may follow any acceptor).
    """
    n = len(pos)
    fwd = [NEG_INF] * n
    acc_pos: list[int] = []  # candidates seen so far, ascending, with running log-sums
    acc_cum: list[float] = []
    don_pos: list[int] = []
    don_cum: list[float] = []
    for k in range(n):
        x = pos[k]
        if kind[k] == 1:  # acceptor: after a donor at least min_intron nt before
            i = bisect_right(don_pos, x - min_intron - 1) - 1
            fwd[k] = weight[k] + don_cum[i] if i >= 0 else NEG_INF
            acc_pos.append(x)
            acc_cum.append(_lse(acc_cum[-1], fwd[k]) if acc_cum else fwd[k])
        else:  # donor: ends the first exon, or an exon that started min_exon - 1 nt before
            i = bisect_right(acc_pos, x - min_exon + 1) - 1
            fwd[k] = weight[k] + _lse(0.0, acc_cum[i] if i >= 0 else NEG_INF)
            don_pos.append(x)
            don_cum.append(_lse(don_cum[-1], fwd[k]) if don_cum else fwd[k])
    log_z = _lse(0.0, acc_cum[-1] if acc_cum else NEG_INF)  # no sites at all, or ending after an acceptor
    bwd = [NEG_INF] * n
    acc_neg: list[int] = []  # candidates after the current one, as -position (ascending), with log-sums
    acc_sum: list[float] = []
    don_neg: list[int] = []
    don_sum: list[float] = []
    for k in range(n - 1, -1, -1):
        x = pos[k]
        if kind[k] == 1:  # after an acceptor: the last exon, or a donor min_exon - 1 nt on
            i = bisect_right(don_neg, -(x + min_exon - 1)) - 1
            bwd[k] = _lse(0.0, don_sum[i] if i >= 0 else NEG_INF)
            acc_neg.append(-x)
            acc_sum.append(_lse(acc_sum[-1], weight[k] + bwd[k]) if acc_sum else weight[k] + bwd[k])
        else:  # after a donor: an acceptor at least min_intron nt on
            i = bisect_right(acc_neg, -(x + min_intron + 1)) - 1
            bwd[k] = acc_sum[i] if i >= 0 else NEG_INF
            don_neg.append(-x)
            don_sum.append(_lse(don_sum[-1], weight[k] + bwd[k]) if don_sum else weight[k] + bwd[k])
    logp = np.asarray(fwd) + np.asarray(bwd) - log_z
    return np.exp(np.minimum(logp, 0.0)).astype(np.float32)
