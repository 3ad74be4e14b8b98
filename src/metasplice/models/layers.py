"""Small building blocks shared by the encoders."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of ``[B, C, L]`` (each position normalised on its own)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class GatedResidualBlock(nn.Module):
    """``x + W_out(GELU(a) * sigmoid(b))`` with ``a, b`` from a dilated conv of ``LayerNorm(x)``.

    ``[B, C, L] -> [B, C, L]``; zero-padded, so the output length equals the input length.
    """

    def __init__(self, channels: int, kernel: int, dilation: int, dropout: float = 0.0):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd, got {kernel}")
        self.norm = ChannelLayerNorm(channels)
        self.conv = nn.Conv1d(channels, 2 * channels, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.out = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)
        self.reach = dilation * (kernel - 1) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.conv(self.norm(x)).chunk(2, dim=1)
        return x + self.dropout(self.out(F.gelu(a) * torch.sigmoid(b)))
