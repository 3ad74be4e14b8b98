"""Fusion of sequence and score encodings: two ``[B, W, L]`` -> ``[B, W, L]``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConcatFusion(nn.Module):
    """Concatenate channels and mix with a 1x1 convolution."""

    receptive_field = 0

    def __init__(self, width: int):
        super().__init__()
        self.mix = nn.Conv1d(2 * width, width, 1)

    def forward(self, sequence: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.mix(torch.cat([sequence, scores], dim=1)))


class CrossAttentionFusion(nn.Module):
    """Each position's score encoding attends to the sequence encodings within ``+-radius`` nt.

    Sliding-window (not block) attention keeps the layer translation-equivariant,
    so predicting a gene in blocks gives the same result as in one piece.
    """

    def __init__(self, width: int, heads: int = 4, radius: int = 8):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads, self.radius = heads, radius
        self.q = nn.Conv1d(width, width, 1)
        self.kv = nn.Conv1d(width, 2 * width, 1)
        self.out = nn.Conv1d(width, width, 1)
        self.receptive_field = radius

    def forward(self, sequence: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        b, w, length = scores.shape
        span = 2 * self.radius + 1
        q = self.q(scores).view(b, self.heads, w // self.heads, 1, length)
        k, v = self.kv(sequence).chunk(2, dim=1)
        # [B, W, span, L]: the window of keys/values around every position (zero beyond the ends)
        k = F.pad(k, (self.radius, self.radius)).unfold(2, span, 1).permute(0, 1, 3, 2)
        v = F.pad(v, (self.radius, self.radius)).unfold(2, span, 1).permute(0, 1, 3, 2)
        k = k.reshape(b, self.heads, w // self.heads, span, length)
        v = v.reshape(b, self.heads, w // self.heads, span, length)
        attn = torch.softmax((q * k).sum(2, keepdim=True) / (w // self.heads) ** 0.5, dim=3)
        mixed = (attn * v).sum(3).reshape(b, w, length)
        return scores + self.out(mixed)
