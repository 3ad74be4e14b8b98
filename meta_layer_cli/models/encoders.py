"""Sequence and score encoders: ``[B, C_in, L] -> [B, width, L]``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from meta_layer_cli.models.layers import ChannelLayerNorm, GatedResidualBlock, channels_last_2d
from meta_layer_cli.runtime.errors import InputDataError


class GatedDilatedCNN(nn.Module):
    """Gated dilated residual CNN (LayerNorm + GELU), the CPU default encoder.

    ``[B, in_channels, L] -> [B, width, L]``. ``receptive_field`` is the reach in
    nt on each side of a position.
    """

    def __init__(
        self,
        in_channels: int,
        width: int = 32,
        kernel: int = 9,
        dilations: Sequence[int] = (1, 2, 4, 8, 16, 32),
        dropout: float = 0.0,
        stem_kernel: int = 1,
    ):
        super().__init__()
        self.stem = nn.Conv1d(in_channels, width, stem_kernel, padding=stem_kernel // 2)
        self.blocks = nn.ModuleList(GatedResidualBlock(width, kernel, d, dropout) for d in dilations)
        self.norm = ChannelLayerNorm(width)
        self.receptive_field = stem_kernel // 2 + sum(b.reach for b in self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = channels_last_2d(self.stem(x))
        for block in self.blocks:
            h = block(h)
        return self.norm(h).squeeze(2)


class ScoreMLP(nn.Module):
    """Position-wise MLP over score features (1x1 convolutions): ``[B, F, L] -> [B, width, L]``."""

    receptive_field = 0

    def __init__(self, in_channels: int, width: int = 32, depth: int = 2, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for _ in range(depth):
            layers += [nn.Conv1d(c, width, 1), nn.GELU(), nn.Dropout(dropout)]
            c = width
        self.net = nn.Sequential(*layers)
        self.norm = ChannelLayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.net(x))


class ImplicitFilter(nn.Module):
    """Hyena's implicit long filter: an MLP over sinusoidal positions, times an exponential decay.

    Produces ``[channels, length]`` filters for any length (parameter count does not grow with it).
    Parameter names follow HyenaDNA's ``filter_fn`` (``pos_emb.z``, ``implicit_filter``,
    ``modulation.deltas``, ``bias``) so its published checkpoints load.
    """

    def __init__(self, channels: int, emb_dim: int = 5, order: int = 64, max_len: int = 1024):
        super().__init__()
        self.channels, self.emb_dim, self.max_len = channels, emb_dim, max_len
        self.pos_emb = _PositionalEmbedding(emb_dim, max_len)
        self.implicit_filter = nn.Sequential(
            nn.Linear(emb_dim, order),
            _Sin(order),
            nn.Linear(order, order),
            _Sin(order),
            nn.Linear(order, order),
            _Sin(order),
            nn.Linear(order, channels, bias=False),
        )
        self.modulation = _ExponentialModulation(channels)
        self.bias = nn.Parameter(torch.randn(channels))

    def filter(self, length: int) -> torch.Tensor:
        z, t = self.pos_emb(length)
        h = self.modulation(t, self.implicit_filter(z))[0]  # [length, channels]
        return h.transpose(0, 1)  # [channels, length]


class _Sin(nn.Module):
    def __init__(self, dim: int, w: float = 1.0):
        super().__init__()
        self.freq = nn.Parameter(w * torch.ones(1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.freq * x)


class _PositionalEmbedding(nn.Module):
    def __init__(self, emb_dim: int, max_len: int):
        super().__init__()
        t = torch.linspace(0, 1, max_len)[:, None]
        bands = (emb_dim - 1) // 2
        t_rescaled = torch.linspace(0, max_len - 1, max_len)[:, None]
        w = 2 * math.pi * t_rescaled / max_len
        f = torch.linspace(1e-4, bands - 1, bands)[None]
        z = torch.exp(-1j * f * w)
        z = torch.cat([t, z.real, z.imag], dim=-1)
        # [1, L, emb_dim] and [1, L, 1], HyenaDNA's shapes
        self.z = nn.Parameter(z[None])
        self.register_buffer("t", t[None])

    def forward(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        if length > self.z.shape[1]:
            raise InputDataError(f"Hyena filter of length {length} exceeds max_len {self.z.shape[1]}")
        return self.z[:, :length], self.t[:, :length]


class _ExponentialModulation(nn.Module):
    def __init__(self, channels: int, fast_decay_pct: float = 0.3, slow_decay_pct: float = 1.5, target: float = 1e-2):
        super().__init__()
        max_decay = math.log(target) / fast_decay_pct
        min_decay = math.log(target) / slow_decay_pct
        self.register_buffer("deltas", torch.linspace(min_decay, max_decay, channels)[None, None])

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x * torch.exp(-t * self.deltas.abs())


class HyenaOperator(nn.Module):
    """Order-2 Hyena mixer (Poli et al. 2023): gates and implicit long convolutions via FFT.

    ``[B, L, D] -> [B, L, D]`` (channels last, as in HyenaDNA). Non-causal use:
    the sequence is processed left to right as HyenaDNA was trained.
    """

    def __init__(self, d_model: int, max_len: int, order: int = 2, filter_order: int = 64, short_kernel: int = 3):
        super().__init__()
        self.order = order
        self.in_proj = nn.Linear(d_model, (order + 1) * d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.short_filter = nn.Conv1d(
            (order + 1) * d_model,
            (order + 1) * d_model,
            short_kernel,
            padding=short_kernel - 1,
            groups=(order + 1) * d_model,
        )
        self.filter_fn = ImplicitFilter(d_model * (order - 1), order=filter_order, max_len=max_len)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        length = u.shape[1]
        uc = self.short_filter(self.in_proj(u).transpose(1, 2))[..., :length]
        *x, v = uc.split(u.shape[-1], dim=1)
        k = self.filter_fn.filter(length)  # [D*(order-1), L]
        k = k.view(self.order - 1, u.shape[-1], length)
        bias = self.filter_fn.bias.view(self.order - 1, u.shape[-1])
        for i, x_i in enumerate(reversed(x[1:])):
            v = _fft_conv(v * x_i, k[i], bias[i])
        return self.out_proj((v * x[0]).transpose(1, 2))


def _fft_conv(u: torch.Tensor, k: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Causal long convolution ``u [B, D, L] * k [D, L]`` via FFT, plus ``bias * u``."""
    length = u.shape[-1]
    n = 2 * length
    y = torch.fft.irfft(torch.fft.rfft(u.float(), n=n) * torch.fft.rfft(k.float(), n=n), n=n)[..., :length]
    return (y + u * bias[None, :, None]).to(u.dtype)


class _HyenaBlock(nn.Module):
    def __init__(self, d_model: int, max_len: int, mlp_ratio: int = 4):
        super().__init__()
        self.mixer = HyenaOperator(d_model, max_len)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.ModuleDict(
            {"fc1": nn.Linear(d_model, mlp_ratio * d_model), "fc2": nn.Linear(mlp_ratio * d_model, d_model)}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mixer(self.norm1(x))
        return x + self.mlp["fc2"](F.gelu(self.mlp["fc1"](self.norm2(x)), approximate="tanh"))


class HyenaEncoder(nn.Module):
    """HyenaDNA-style encoder: ``[B, 4, L]`` one-hot -> ``[B, width, L]``.

    Bases are embedded as HyenaDNA's character tokens (A=7, C=8, G=9, T=10, N=11),
    so HyenaDNA weights (``load_hyenadna``) drop in. Filters are implicit, so the
    receptive field is the whole input (up to ``max_len``).
    """

    TOKENS = torch.tensor([7, 8, 9, 10])
    N_TOKEN = 11

    def __init__(
        self, width: int = 128, depth: int = 2, max_len: int = 32_768, vocab_size: int = 12, bidirectional: bool = True
    ):
        super().__init__()
        self.bidirectional = bidirectional
        self.embeddings = nn.Embedding(vocab_size, width)
        self.layers = nn.ModuleList(_HyenaBlock(width, max_len) for _ in range(depth))
        self.ln_f = nn.LayerNorm(width)
        self.max_len = max_len
        self.receptive_field = max_len

    def tokens(self, one_hot: torch.Tensor) -> torch.Tensor:
        idx = one_hot.argmax(dim=1)
        tok = self.TOKENS.to(one_hot.device)[idx]
        return torch.where(one_hot.sum(dim=1) > 0, tok, torch.full_like(tok, self.N_TOKEN))

    def _encode(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embeddings(tokens)
        for layer in self.layers:
            h = layer(h)
        return self.ln_f(h).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.tokens(x)
        h = self._encode(tokens)
        if self.bidirectional:
            # HyenaDNA reads left to right; a second pass over the reversed input gives each
            # position its downstream context too (same weights).
            h = h + self._encode(tokens.flip(-1)).flip(-1)
        return h


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else ""


def load_hyenadna(encoder: HyenaEncoder, directory: str) -> HyenaEncoder:
    """Load HyenaDNA weights from a local checkpoint directory (published layout).

    Accepts ``model.safetensors`` or ``pytorch_model.bin`` (read with
    ``weights_only=True``) with keys ``[hyena.]backbone.embeddings.word_embeddings.weight``,
    ``backbone.layers.{i}.{mixer,norm1,norm2,mlp}.*`` and ``backbone.ln_f.*``.
    """
    from pathlib import Path

    path = Path(directory)
    try:
        if (path / "model.safetensors").is_file():
            from safetensors.torch import load_file

            file = path / "model.safetensors"
            state = load_file(str(file))
        elif (path / "pytorch_model.bin").is_file():
            file = path / "pytorch_model.bin"
            state = torch.load(file, map_location="cpu", weights_only=True)  # refuses pickled code
        else:
            raise FileNotFoundError(f"no model.safetensors or pytorch_model.bin in {path}")
    except OSError:  # missing or unreadable: as they are
        raise
    except Exception as err:  # torch/safetensors raise several types for bad or unsafe files
        raise InputDataError(f"cannot load HyenaDNA weights {file}: {type(err).__name__}: {_first_line(err)}") from None
    if not isinstance(state, dict):
        raise InputDataError(f"{file}: expected a state dict, found {type(state).__name__}")
    mapped = {}
    for key, value in state.items():
        key = key.removeprefix("hyena.").removeprefix("model.")
        if not key.startswith("backbone."):
            continue
        key = key.removeprefix("backbone.").replace("embeddings.word_embeddings", "embeddings")
        mapped[key] = value
    try:
        missing, unexpected = encoder.load_state_dict(mapped, strict=False)
    except RuntimeError as err:  # shape mismatches
        reason = str(err)[:190]
        raise InputDataError(f"HyenaDNA checkpoint does not fit this encoder (width/depth?): {reason}") from None
    real_missing = [k for k in missing if not k.endswith(("pos_emb.t", "modulation.deltas"))]
    if real_missing or unexpected:
        raise InputDataError(
            f"HyenaDNA checkpoint does not fit this encoder (width/depth?): missing {real_missing[:3]}, "
            f"unexpected {unexpected[:3]}"
        )
    return encoder
