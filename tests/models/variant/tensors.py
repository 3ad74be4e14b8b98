"""Shared pieces of the variant-model tests: a tiny config and a batch of random inputs."""

from __future__ import annotations

import torch

from meta_layer_cli.models.variant import VariantInputs

B, L = 3, 64
CHANNELS = ["neither", "acceptor", "donor"]
TINY = {"channels": CHANNELS, "width": 8, "kernel": 5, "dilations": [1, 2], "dropout": 0.0, "heads": 2}


def inputs(c: int = 3, seed: int = 0) -> VariantInputs:
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 4, (B, L), generator=g)
    ref = torch.nn.functional.one_hot(codes, 4).permute(0, 2, 1).float()
    alt = ref.clone()
    alt[:, :, L // 2] = torch.tensor([0.0, 0.0, 0.0, 1.0])
    ref_tracks = torch.softmax(torch.randn(B, c, L, generator=g), 1)
    alt_tracks = torch.softmax(torch.randn(B, c, L, generator=g), 1)
    mask = torch.zeros(B, 2, L)
    mask[:, 0, 20:40] = 1
    mask[:, 1, L // 2] = 1
    return VariantInputs(ref, alt, ref_tracks, alt_tracks, mask)


def randomise(model: torch.nn.Module) -> None:
    """Give the zero-initialised output layers weights, so outputs depend on the input."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.3)
