"""The variant models' inputs (:class:`VariantInputs`) and the tensor features computed from them.

Shapes and meaning: :mod:`meta_layer_cli.models.variant`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

TRACK_EPS = 1e-3
LOGIT_EPS = 1e-4  # base probabilities are clipped to [e, 1 - e] before log-odds
SITE_WINDOW = 2  # the base model's site probability: its maximum within +-2 nt of the exon end


class VariantInputs(NamedTuple):
    """One batch of variant-model inputs (shapes and meaning in the module docstring)."""

    ref_seq: torch.Tensor  # [B, 4, L]
    alt_seq: torch.Tensor  # [B, 4, L], on REF coordinates
    ref_tracks: torch.Tensor  # [B, C, L]
    alt_tracks: torch.Tensor  # [B, C, L], on REF coordinates
    mask: torch.Tensor  # [B, 2, L]: exon, variant

    @classmethod
    def from_batch(cls, batch: dict[str, torch.Tensor]) -> VariantInputs:
        """The inputs among :meth:`meta_layer_cli.features.variants.VariantDataset.batch`'s tensors."""
        return cls(*(batch[name] for name in cls._fields))


def track_features(ref_tracks: torch.Tensor, alt_tracks: torch.Tensor) -> torch.Tensor:
    """``[B, C, L]`` x 2 -> ``[B, 4C, L]``: REF, ALT, ALT - REF and log((ALT + e) / (REF + e)), e = 1e-3."""
    ref, alt = ref_tracks.float(), alt_tracks.float()
    log_ratio = torch.log(alt.clamp_min(0) + TRACK_EPS) - torch.log(ref.clamp_min(0) + TRACK_EPS)
    return torch.cat([ref, alt, alt - ref, log_ratio], dim=1)


def allele_features(seq: torch.Tensor, tracks: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One allele for the siamese encoder: ``[B, 4 + 2C + 2, L]`` (one-hot, p, log(p + e) / 7, mask)."""
    t = tracks.float()
    return torch.cat([seq.float(), t, torch.log(t.clamp_min(0) + TRACK_EPS) / 7.0, mask.float()], dim=1)


def pair_features(
    ref_seq: torch.Tensor,
    alt_seq: torch.Tensor,
    ref_tracks: torch.Tensor,
    alt_tracks: torch.Tensor,
    mask: torch.Tensor,
) -> torch.Tensor:
    """The single-pass input: ``[B, 4 + 4 + 4C + 2, L]``.

    ALT one-hot; the REF bases at the variant positions only (zero elsewhere, so
    the model knows what was replaced); :func:`track_features`; the mask.
    """
    variant = mask[:, 1:2].float()
    return torch.cat(
        [alt_seq.float(), ref_seq.float() * variant, track_features(ref_tracks, alt_tracks), mask.float()], dim=1
    )


def exon_ends(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``mask`` ``[B, 2, L]`` -> one-hot ``[B, L]`` of the exon's first and of its last nucleotide (the acceptor
    and the donor in transcript orientation; all zero without an exon). An exon that runs past the window's
    edge has no end on that side: the edge is not its splice site."""
    exon = mask[:, 0].float()
    before = torch.nn.functional.pad(exon, (1, 0), value=1.0)[:, :-1]
    after = torch.nn.functional.pad(exon, (0, 1), value=1.0)[:, 1:]
    return exon * (1 - before), exon * (1 - after)


def site_logit_features(channels: Sequence[str]) -> list[tuple[int, int]]:
    """The ``(channel, end)`` pairs :func:`site_logit_deltas` reads (end 0 = acceptor, 1 = donor): a base model
    with ``acceptor`` and ``donor`` channels, each at its own end; otherwise (e.g. Pangolin's tissues) every
    channel but ``neither`` at both ends."""
    names = list(channels)
    if "acceptor" in names and "donor" in names:
        return [(names.index("acceptor"), 0), (names.index("donor"), 1)]
    return [(c, end) for end in (0, 1) for c, name in enumerate(names) if name != "neither"]


def site_logit_deltas(
    ref_tracks: torch.Tensor, alt_tracks: torch.Tensor, mask: torch.Tensor, features: Sequence[tuple[int, int]]
) -> torch.Tensor:
    """``[B, F]``: ALT minus REF log-odds of the base model's splice probability at the exon's acceptor and
    donor (maximum within +-``SITE_WINDOW`` nt, clipped to ``[LOGIT_EPS, 1 - LOGIT_EPS]``), for the
    ``(channel, end)`` pairs of :func:`site_logit_features`. 0 without an exon or for identical alleles."""
    ends = torch.stack(exon_ends(mask), dim=1)  # [B, 2, L]
    k = 2 * SITE_WINDOW + 1

    def at_ends(tracks: torch.Tensor) -> torch.Tensor:  # [B, C, 2]
        peak = torch.nn.functional.max_pool1d(tracks.float(), k, stride=1, padding=SITE_WINDOW)
        return torch.logit(torch.einsum("bcl,bel->bce", peak, ends), eps=LOGIT_EPS)

    delta = at_ends(alt_tracks) - at_ends(ref_tracks)
    return torch.stack([delta[:, c, end] for c, end in features], dim=1)


def psi_link(logit_delta: torch.Tensor, ref_psi: torch.Tensor) -> torch.Tensor:
    """Delta PSI in percent ``[B, Q]`` of a change ``logit_delta`` ``[B, Q]`` in inclusion log-odds, from the
    reference PSI ``ref_psi`` ``[B]`` (percent): ``100 * (sigmoid(logit(r) + y) - r)``."""
    start = torch.logit(ref_psi.float()[:, None] / 100, eps=1e-3)
    return 100 * (torch.sigmoid(start + logit_delta) - torch.sigmoid(start))  # exactly 0 for no change
