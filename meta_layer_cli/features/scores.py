"""Per-nucleotide features of base-model score tracks.

The single definition of every derived score feature. ``score_features`` is
pure PyTorch on ``[B, C, L]`` tracks, so the training loop, the evaluator and
``metalayer recalibrate`` all call this one function; nothing recomputes a
feature elsewhere.

Per channel (computed from that channel's own track ``p``):

==================  ========================================================
``p``               the score
``p-1 p+1 p-2 p+2`` neighbours (zero beyond the ends)
``d-1 d+1 d-2 d+2`` differences ``p - neighbour``
``peak``            1 where ``p`` is the maximum of its +-2 nt window
``peak_ratio``      ``p / (max over +-50 nt + eps)``
``d2``              second derivative ``p[i-1] - 2 p[i] + p[i+1]``
``context``         Gaussian-weighted mean over +-10 nt (sigma 4)
``strength``        ``p -`` mean over +-50 nt
``max10 max50``     windowed maxima over +-10 and +-50 nt
==================  ========================================================

Per ``(neither, acceptor, donor)`` group (each stacked base model that has
one): donor-vs-acceptor log-odds, splice-vs-neither log-odds, entropy of the
three probabilities, and relative donor probability ``pd / (pa + pd)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

EPS = 1e-6
PER_CHANNEL = (
    "p",
    "p-1",
    "p+1",
    "p-2",
    "p+2",
    "d-1",
    "d+1",
    "d-2",
    "d+2",
    "peak",
    "peak_ratio",
    "d2",
    "context",
    "strength",
    "max10",
    "max50",
)
PER_GROUP = ("donor_vs_acceptor", "splice_vs_neither", "entropy", "rel_donor")
SPLICE_TRIPLE = ("neither", "acceptor", "donor")


def _shift(x: torch.Tensor, k: int) -> torch.Tensor:
    """``out[..., i] = x[..., i + k]``, zero where ``i + k`` is out of range."""
    if k > 0:
        return F.pad(x[..., k:], (0, k))
    return F.pad(x[..., :k], (-k, 0))


def _window_max(x: torch.Tensor, half: int) -> torch.Tensor:
    return F.max_pool1d(x, 2 * half + 1, stride=1, padding=half)


def _window_mean(x: torch.Tensor, half: int) -> torch.Tensor:
    return F.avg_pool1d(x, 2 * half + 1, stride=1, padding=half, count_include_pad=True)


def _gaussian_mean(x: torch.Tensor, half: int = 10, sigma: float = 4.0) -> torch.Tensor:
    offsets = torch.arange(-half, half + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum()).view(1, 1, -1).repeat(x.shape[1], 1, 1)
    return F.conv1d(x, kernel, padding=half, groups=x.shape[1])


def splice_groups(channels: Sequence[str]) -> list[tuple[int, int, int]]:
    """Indices (neither, acceptor, donor) of each stacked base model that has them.

    Channel names may carry a model prefix (``spliceai:acceptor``) when tracks are stacked.
    """
    prefixes: dict[str, dict[str, int]] = {}
    for i, name in enumerate(channels):
        prefix, _, kind = name.rpartition(":")
        prefixes.setdefault(prefix, {})[kind] = i
    return [tuple(kinds[k] for k in SPLICE_TRIPLE) for kinds in prefixes.values() if set(SPLICE_TRIPLE) <= set(kinds)]


def feature_names(channels: Sequence[str]) -> list[str]:
    names = [f"{c}:{f}" for f in PER_CHANNEL for c in channels]
    for _, a, _ in splice_groups(channels):
        prefix = channels[a].rpartition(":")[0]
        names += [f"{prefix}:{g}" if prefix else g for g in PER_GROUP]
    return names


def score_features(tracks: torch.Tensor, channels: Sequence[str]) -> torch.Tensor:
    """Base-model tracks ``[B, C, L]`` -> features ``[B, F, L]`` (F = ``len(feature_names(channels))``)."""
    if tracks.ndim != 3 or tracks.shape[1] != len(channels):
        raise ValueError(f"expected tracks [B, {len(channels)}, L], got {tuple(tracks.shape)}")
    p = tracks.float()
    neighbours = [_shift(p, k) for k in (-1, 1, -2, 2)]
    max2, max10, max50 = (_window_max(p, h) for h in (2, 10, 50))
    parts = [
        p,
        *neighbours,
        *(p - q for q in neighbours),
        (p >= max2).to(p.dtype),
        p / (max50 + EPS),
        neighbours[0] - 2 * p + neighbours[1],
        _gaussian_mean(p),
        p - _window_mean(p, 50),
        max10,
        max50,
    ]
    for n, a, d in splice_groups(channels):
        pn, pa, pd = p[:, n : n + 1], p[:, a : a + 1], p[:, d : d + 1]
        triple = torch.cat([pn, pa, pd], dim=1).clamp_min(EPS)
        parts += [
            torch.log(pd + EPS) - torch.log(pa + EPS),
            torch.log(pa + pd + EPS) - torch.log(pn + EPS),
            -(triple * triple.log()).sum(dim=1, keepdim=True),
            pd / (pa + pd + EPS),
        ]
    return torch.cat(parts, dim=1)


@dataclass(frozen=True)
class ScoreFeatures:
    """The feature map for a fixed channel list (hashable, stored in model configs)."""

    channels: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return feature_names(self.channels)

    def __call__(self, tracks: torch.Tensor) -> torch.Tensor:
        return score_features(tracks, self.channels)
