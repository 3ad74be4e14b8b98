"""Feature standardisation with statistics from training genes only."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from meta_layer_cli.runtime.errors import InputDataError


class FeatureNormalizer(nn.Module):
    """``(x - mean) / std`` per feature channel; ``[B, F, L] -> [B, F, L]``.

    ``fit`` accumulates statistics over batches of *training* tracks; the
    buffers travel inside the model's checkpoint, so inference reuses them.
    """

    def __init__(self, n_features: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))

    @torch.no_grad()
    def fit(self, batches: Iterable[torch.Tensor]) -> FeatureNormalizer:
        total = 0
        s1 = torch.zeros_like(self.mean, dtype=torch.float64)
        s2 = torch.zeros_like(self.mean, dtype=torch.float64)
        for x in batches:
            flat = x.transpose(0, 1).reshape(x.shape[1], -1).double()
            s1 += flat.sum(1)
            s2 += (flat**2).sum(1)
            total += flat.shape[1]
        if total == 0:
            raise InputDataError("cannot fit feature statistics on no data")
        mean = s1 / total
        var = (s2 / total - mean**2).clamp_min(0)
        self.mean.copy_(mean.float())
        self.std.copy_(var.sqrt().clamp_min(1e-6).float())
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean[None, :, None]) / self.std[None, :, None]
