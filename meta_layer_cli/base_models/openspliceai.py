"""OpenSpliceAI (Chao et al. 2025): PyTorch state dicts, flank 80/400/2000/10000 nt.

The flank size is read from the state dict (4, 8, 12 or 16 residual units), so
a directory of ``.pt`` files is one ensemble whatever its flank.
"""

from __future__ import annotations

import os

import torch

from meta_layer_cli.base_models.base import DILATION_SCHEDULE, EnsembleMember, NeuralBaseModel
from meta_layer_cli.base_models.network import NetworkParams
from meta_layer_cli.base_models.torch_weights import load_state_dict, residual_unit, weight_files
from meta_layer_cli.runtime.errors import InputDataError

CHANNELS = ("neither", "acceptor", "donor")
LEAKY_SLOPE = 0.1


def read_openspliceai_network(path: str | os.PathLike) -> NetworkParams:
    """Convert one OpenSpliceAI state dict.

    Its ``residual_units`` list interleaves a ``Skip`` module after every 4th
    residual unit (indices 4, 9, 14, 19), which carries only ``.conv``.
    """
    state = load_state_dict(path)
    if "initial_conv.weight" not in state:
        raise InputDataError(f"{path}: not an OpenSpliceAI state dict (no 'initial_conv.weight')")
    indices = sorted({int(k.split(".")[1]) for k in state if k.startswith("residual_units.")})
    units, skip_w, skip_b = [], [], []
    for idx in indices:
        p = f"residual_units.{idx}"
        if f"{p}.conv1.weight" in state:
            units.append(residual_unit(state, p, "batchnorm1", "batchnorm2", DILATION_SCHEDULE[len(units)]))
        else:
            skip_w.append(state[f"{p}.conv.weight"][..., 0])
            skip_b.append(state[f"{p}.conv.bias"])
    if len(units) not in (4, 8, 12, 16) or len(skip_w) != len(units) // 4:
        raise InputDataError(f"{path}: unexpected OpenSpliceAI layout ({len(units)} residual units)")
    return NetworkParams(
        state["initial_conv.weight"][..., 0],
        state["initial_conv.bias"],
        state["initial_skip.conv.weight"][..., 0],
        state["initial_skip.conv.bias"],
        units,
        skip_w,
        skip_b,
        state["final_conv.weight"][..., 0],
        state["final_conv.bias"],
        negative_slope=LEAKY_SLOPE,
    )


def load_openspliceai(weights=None, device=None, dtype: torch.dtype | None = None, **kwargs) -> NeuralBaseModel:
    """OpenSpliceAI ensemble from a directory of ``.pt`` files (e.g. ``openspliceai-mane/10000nt``) or one file."""
    paths = weight_files(weights, "*.pt", "OpenSpliceAI")
    members = [EnsembleMember(read_openspliceai_network(p), (0, 1, 2), (0, 1, 2)) for p in paths]
    return NeuralBaseModel("openspliceai", members, CHANNELS, paths, device=device, dtype=dtype, **kwargs)
