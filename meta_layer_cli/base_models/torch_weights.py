"""Shared helpers for adapters whose weights are PyTorch state dicts."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from meta_layer_cli.base_models.network import BatchNormParams, ResidualUnitParams
from meta_layer_cli.runtime.errors import InputDataError

TORCH_BN_EPSILON = 1e-5


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """``torch.load`` with ``weights_only=True``; a clear one-line error otherwise."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for bad files
        raise InputDataError(f"cannot load weights {path}: {type(err).__name__}: {str(err).splitlines()[0]}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputDataError(f"{path}: expected a state_dict, found {type(state).__name__}")
    return {k.removeprefix("module."): v.float() for k, v in state.items() if torch.is_tensor(v)}


def batch_norm(state: dict[str, torch.Tensor], prefix: str) -> BatchNormParams:
    return BatchNormParams(
        state[f"{prefix}.weight"],
        state[f"{prefix}.bias"],
        state[f"{prefix}.running_mean"],
        state[f"{prefix}.running_var"],
        TORCH_BN_EPSILON,
    )


def weight_files(weights: str | os.PathLike | None, pattern: str, what: str) -> list[Path]:
    """A directory (all files matching ``pattern``, sorted) or a single file."""
    if weights is None:
        raise FileNotFoundError(f"{what} needs weights=PATH (a directory of {pattern} files or one file)")
    path = Path(weights)
    if path.is_dir():
        files = sorted(p for p in path.glob(pattern) if p.is_file())
        if not files:
            raise FileNotFoundError(f"{what} weights: no files matching {pattern} in {path}")
        return files
    if path.is_file():
        return [path]
    raise FileNotFoundError(f"{what} weights not found: {path} (expected a directory of {pattern} files or one file)")


def residual_unit(state: dict[str, torch.Tensor], prefix: str, bn1: str, bn2: str, dilation: int) -> ResidualUnitParams:
    """``{prefix}.{bn1,conv1,bn2,conv2}`` of a state dict as one residual unit."""
    return ResidualUnitParams(
        batch_norm(state, f"{prefix}.{bn1}"),
        state[f"{prefix}.conv1.weight"],
        state[f"{prefix}.conv1.bias"],
        batch_norm(state, f"{prefix}.{bn2}"),
        state[f"{prefix}.conv2.weight"],
        state[f"{prefix}.conv2.bias"],
        dilation,
    )
