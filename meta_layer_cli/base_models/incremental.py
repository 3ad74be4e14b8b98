"""Exact predictions for variants from shared reference activations.

A variant replaces the reference block ``[v0, v0 + k_ref)`` by ``k_alt`` other
bases (an SNV, an MNV, a deletion or an insertion). In ALT coordinates, a
network's activations after layers that have consumed ``C`` nt of context on
each side differ from the reference only inside ``[v0 - C, v0 + k_alt - 1 + C]``;
to the left they equal the reference at the same position, to the right the
reference shifted by ``k_alt - k_ref``. And only positions within ``c - C`` of
the requested outputs are needed (``c`` = the model's context). So an ALT
prediction needs, per layer, just the intersection of the two, computed from
that layer's reference activations with the changed values spliced in. For
SpliceAI's 10-kb network this is about a quarter of the work of a fresh
``2*c + 2*D + 1`` window, and the reference activations are computed once per
region and shared by every variant in it.

The arithmetic is the network's own (same modules, same order); only the
tensor widths differ, so results equal a full forward pass up to float
rounding. Works for any :class:`~meta_layer_cli.base_models.base.NeuralBaseModel`
(SpliceAI, OpenSpliceAI, Pangolin).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from meta_layer_cli.base_models.network import center_crop
from meta_layer_cli.io.sequence import codes_to_one_hot
from meta_layer_cli.runtime.device import full_precision_convolutions


@dataclass
class _Activations:
    """Reference activations of one network on one input: ``h[i]`` (trunk after unit i, h[0]
    after the input conv) and ``u[i]`` (activated first conv of unit i), each ``[1, ch, 1, len]``,
    with the input coordinate of their first column."""

    h: list[torch.Tensor]
    h_start: list[int]
    u: list[torch.Tensor]
    u_start: list[int]


def _forward_keep(net, x: torch.Tensor) -> tuple[torch.Tensor, _Activations]:
    """``net.forward`` (one input ``[1, 4, L]``) that also returns every activation the splicing needs."""
    x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    h = net.in_conv(x)
    skip = net.in_skip(h)
    acts = _Activations([h], [0], [], [])
    consumed = 0
    for i, (conv1, conv2, crop) in enumerate(zip(net.conv1, net.conv2, net.crops)):
        r = net._act(torch.addcmul(net.bn1_shift[i].view(1, -1, 1, 1), h, net.bn1_scale[i].view(1, -1, 1, 1)))
        u = net._act(conv1(r))
        acts.u.append(u)
        acts.u_start.append(consumed + crop // 2)
        h = h[..., crop:-crop] + conv2(u) if crop else h + conv2(u)
        consumed += crop
        acts.h.append(h)
        acts.h_start.append(consumed)
        if (i + 1) % 4 == 0:
            skip = center_crop(skip, h.shape[-1]) + net.skips[i // 4](h)
    out_len = x.shape[-1] - 2 * net.context
    logits = net.out_conv(center_crop(skip, out_len))
    return torch.softmax(logits.float(), dim=1).squeeze(2)[0], acts


def _rows(t: torch.Tensor) -> torch.Tensor:
    """A channels-last ``[1, ch, 1, L]`` activation as its ``[L, ch]`` memory (a view, no copy)."""
    return t.permute(0, 2, 3, 1).reshape(t.shape[-1], t.shape[1])


def _gather(
    ref_rows: torch.Tensor, ref_start: int, v0: torch.Tensor, shift: torch.Tensor, lo: int, hi: int
) -> torch.Tensor:
    """Reference columns for ALT positions ``v0_b + lo .. v0_b + hi`` per variant -> ``[B, ch, 1, W]``.

    ALT positions at or after the block (relative >= 0) read the reference ``shift_b``
    (= k_alt - k_ref) columns earlier; inside the block the values are overwritten by the
    caller, so any column will do (indices are clamped). ``ref_rows`` is ``[L, ch]``; the
    result is a fresh channels-last tensor (safe to modify).
    """
    rel = torch.arange(lo, hi + 1, device=ref_rows.device)[None, :]
    idx = v0[:, None] + rel - ref_start - torch.where(rel >= 0, shift[:, None], 0)
    idx = idx.clamp_(0, ref_rows.shape[0] - 1)
    return ref_rows[idx].permute(0, 2, 1).unsqueeze(2)  # [B, W, ch] memory == channels-last [B, ch, 1, W]


def _splice(base: torch.Tensor, lo: int, alt: torch.Tensor, alt_lo: int) -> torch.Tensor:
    """Write into ``base`` (relative columns ``lo..``) the columns ``alt`` covers (from ``alt_lo``)."""
    hi, alt_hi = lo + base.shape[-1] - 1, alt_lo + alt.shape[-1] - 1
    a, b = max(lo, alt_lo), min(hi, alt_hi)
    if a <= b:
        base[..., a - lo : b - lo + 1] = alt[..., a - alt_lo : b - alt_lo + 1]
    return base


def _spliced_alt(
    net, acts: _Activations, v0: torch.Tensor, shift: torch.Tensor, alt: torch.Tensor, reach: int
) -> torch.Tensor:
    """Probabilities ``[B, K, k + 2*reach]`` of ``net`` on the reference with its block at ``v0``
    replaced by ``alt`` (one-hot ``[B, 4, k]``; the reference block is ``k - shift`` long), at the
    ALT outputs whose ALT input coordinates are ``v0 - reach .. v0 + k - 1 + reach``."""
    c, k = net.context, alt.shape[-1]
    h_rows = [_rows(t) for t in acts.h]
    u_rows = [_rows(t) for t in acts.u]

    def span(consumed: int) -> tuple[int, int]:  # changed ∩ needed, relative to v0
        return max(-consumed, -reach - (c - consumed)), min(k - 1 + consumed, k - 1 + reach + (c - consumed))

    x = alt.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    h_alt, h_lo = net.in_conv(x), 0
    final_lo, final_hi = -reach, k - 1 + reach

    def final(i: int) -> torch.Tensor:  # trunk i with the ALT values, at the requested outputs
        return _splice(_gather(h_rows[i], acts.h_start[i], v0, shift, final_lo, final_hi), final_lo, h_alt, h_lo)

    skip = net.in_skip(final(0))
    consumed = 0
    for i, (conv1, conv2, crop) in enumerate(zip(net.conv1, net.conv2, net.crops)):
        rad = crop // 2
        u_lo, u_hi = span(consumed + rad)
        n_lo, n_hi = span(consumed + crop)
        h_in = _gather(h_rows[i], acts.h_start[i], v0, shift, u_lo - rad, u_hi + rad)
        h_in = _splice(h_in, u_lo - rad, h_alt, h_lo)
        r = net._act(torch.addcmul(net.bn1_shift[i].view(1, -1, 1, 1), h_in, net.bn1_scale[i].view(1, -1, 1, 1)))
        u_alt = net._act(conv1(r))
        u_in = _splice(_gather(u_rows[i], acts.u_start[i], v0, shift, n_lo - rad, n_hi + rad), n_lo - rad, u_alt, u_lo)
        resid = h_in[..., n_lo - (u_lo - rad) : n_hi - (u_lo - rad) + 1]  # [n_lo, n_hi] lies inside h_in
        h_alt, h_lo = resid + conv2(u_in), n_lo
        consumed += crop
        if (i + 1) % 4 == 0:
            skip = skip + net.skips[i // 4](final(i + 1))
    return torch.softmax(net.out_conv(skip).float(), dim=1).squeeze(2)


@dataclass
class Substitution:
    """Bases ``codes`` (uint8 ``[k_alt]``, 0-3 ACGT / 4 N; ``k_alt >= 1``) replacing the ``ref_len``
    reference input positions from ``start`` (``ref_len`` defaults to ``k_alt``; 0 = an insertion
    before ``start``)."""

    start: int
    codes: np.ndarray
    ref_len: int | None = None

    @property
    def k_ref(self) -> int:
        return len(self.codes) if self.ref_len is None else self.ref_len


@torch.inference_mode()
def predict_reference_and_substitutions(
    model, codes: np.ndarray, substitutions: Sequence[Substitution], reach: int, batch_size: int = 64
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Ensemble predictions for one reference input and many variants of it.

    ``codes``: reference input ``[L + 2*context]``; returns its scores ``[L, C]`` and, per
    variant (block at input position ``s``, ``k_alt`` new bases), the scores
    ``[k_alt + 2*reach, C]`` of the ALT input at ALT input positions ``s - reach ..
    s + k_alt - 1 + reach`` (left of the block ALT and reference positions coincide). The
    reference positions those outputs see, ``s - reach - context .. s + k_ref - 1 + reach +
    context``, must lie inside ``codes``. Equal to predicting each ALT input in full.
    """
    c = model.context
    n_out = len(codes) - 2 * c
    for sub in substitutions:
        if len(sub.codes) < 1 or sub.start - reach < c or sub.start + sub.k_ref - 1 + reach > c + n_out - 1:
            raise ValueError("substitution outputs fall outside the reference's output range (or empty ALT block)")
    x = torch.as_tensor(codes_to_one_hot(np.asarray(codes))[None]).to(model.device, model.dtype)
    counts = model.member_counts
    ref_sum = np.zeros((len(model.channels), n_out), np.float32)
    alt_sums = [np.zeros((len(model.channels), len(s.codes) + 2 * reach), np.float32) for s in substitutions]
    by_len: dict[int, list[int]] = {}
    for i, s in enumerate(substitutions):
        by_len.setdefault(len(s.codes), []).append(i)
    with full_precision_convolutions():
        for net, take, slots in model.ensemble_members():
            probs, acts = _forward_keep(net, x)
            ref_sum[slots] += probs[take].cpu().numpy()
            for members in by_len.values():
                for b in range(0, len(members), batch_size):
                    chunk = [substitutions[i] for i in members[b : b + batch_size]]
                    v0 = torch.as_tensor([sub.start for sub in chunk], device=model.device)
                    shift = torch.as_tensor([len(sub.codes) - sub.k_ref for sub in chunk], device=model.device)
                    alt = torch.as_tensor(codes_to_one_hot(np.stack([sub.codes for sub in chunk])))
                    out = _spliced_alt(net, acts, v0, shift, alt.to(model.device, model.dtype), reach)
                    out = out[:, take].cpu().numpy()
                    for j, i in enumerate(members[b : b + batch_size]):
                        alt_sums[i][slots] += out[j]
            del acts
    return (ref_sum / counts[:, None]).T.copy(), [(a / counts[:, None]).T.copy() for a in alt_sums]
