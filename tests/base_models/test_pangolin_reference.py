"""Pangolin's port against an independent reference: the published model definition
(Zeng & Li 2022, ``pangolin/model.py``) as plain ``torch.nn`` modules with the published attribute
names, loaded with ``load_state_dict(strict=True)`` from the real weights. Nothing here goes through
the port's weight reader (``base_models/pangolin.py``, ``torch_weights.py``)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from meta_layer_cli import load_base_model
from meta_layer_cli.io.demo import load_demo_gene
from tests.conftest import shared_path

L = 32
W = [11] * 8 + [21] * 4 + [41] * 4
AR = [1] * 4 + [4] * 4 + [10] * 4 + [25] * 4
CROP = sum(a * (w - 1) for a, w in zip(AR, W))  # 5,000 nt each side


class ResBlock(nn.Module):
    def __init__(self, channels: int, width: int, dilation: int):
        super().__init__()
        padding = dilation * (width - 1) // 2
        self.bn1 = nn.BatchNorm1d(channels)
        self.conv1 = nn.Conv1d(channels, channels, width, dilation=dilation, padding=padding)
        self.bn2 = nn.BatchNorm1d(channels)
        self.conv2 = nn.Conv1d(channels, channels, width, dilation=dilation, padding=padding)

    def forward(self, x):
        return x + self.conv2(torch.relu(self.bn2(self.conv1(torch.relu(self.bn1(x))))))


class Pangolin(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(4, L, 1)
        self.skip = nn.Conv1d(L, L, 1)
        self.resblocks = nn.ModuleList(ResBlock(L, w, a) for w, a in zip(W, AR))
        self.convs = nn.ModuleList(nn.Conv1d(L, L, 1) for _ in range(len(W) // 4))
        for i in range(1, 9):  # odd heads: softmax over 2 channels; even heads: one sigmoid channel
            setattr(self, f"conv_last{i}", nn.Conv1d(L, 2 if i % 2 else 1, 1))

    def forward(self, x):
        conv = self.conv1(x)
        skip = self.skip(conv)
        for i, block in enumerate(self.resblocks):
            conv = block(conv)
            if (i + 1) % 4 == 0:
                skip = skip + self.convs[i // 4](conv)
        skip = skip[:, :, CROP:-CROP]
        heads = [getattr(self, f"conv_last{i}")(skip) for i in range(1, 9)]
        return torch.cat([F.softmax(h, dim=1) if i % 2 == 0 else torch.sigmoid(h) for i, h in enumerate(heads)], 1)


def one_hot(seq: str) -> torch.Tensor:
    x = torch.zeros(1, 4, len(seq))
    for i, base in enumerate("ACGT"):
        x[0, i, [j for j, s in enumerate(seq) if s == base]] = 1
    return x


def test_pangolin_port_matches_the_published_architecture(tmp_path):
    directory = shared_path("models", "pangolin")
    gene = load_demo_gene("1")  # PRUNE; a window of 1,000 nt around a real acceptor, with 5,000 nt each side
    site = int(np.flatnonzero(gene.labels == 1)[0])
    start = max(site - 500, CROP)
    seq = gene.sequence[start - CROP : start + 1000 + CROP]
    assert len(seq) == 1000 + 2 * CROP
    chosen = tmp_path / "weights"  # replicate 1 of each tissue: one model per channel, nothing averaged
    chosen.mkdir()
    for tissue in range(4):
        (chosen / f"final.1.{2 * tissue}.3.v2").symlink_to(directory / f"final.1.{2 * tissue}.3.v2")
    port = load_base_model("pangolin", weights=chosen)
    ours = port.predict_sequence(seq[CROP:-CROP], "+", seq[:CROP], seq[-CROP:])  # [1000, 4 tissues]

    x = one_hot(seq)
    for tissue in range(4):
        reference = Pangolin().eval()
        state = torch.load(directory / f"final.1.{2 * tissue}.3.v2", map_location="cpu", weights_only=True)
        reference.load_state_dict(state, strict=True)
        with torch.no_grad():
            out = reference(x)[0]  # [12, 1000]
        assert out.shape == (12, 1000)
        expected = out[[1, 4, 7, 10][tissue]].numpy()
        assert np.abs(ours[:, tissue] - expected).max() < 1e-5
        assert expected[site - start] > 0.5  # the real acceptor scores as one
