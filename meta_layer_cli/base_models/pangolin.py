"""Pangolin (Zeng & Li 2022): splice-site probability in four tissues.

Channel ``t`` (heart, liver, brain, testis) is the mean over the three
replicates ``final.{1,2,3}.{2t}.3.v2`` of the softmax head ``conv_last{2t+1}``'s
second channel, which is output channel ``[1, 4, 7, 10][t]`` of Pangolin's
12-channel output, as Pangolin itself scores tissues.
"""

from __future__ import annotations

import os
import re

import torch

from meta_layer_cli.base_models.base import DILATION_SCHEDULE, EnsembleMember, NeuralBaseModel
from meta_layer_cli.base_models.network import NetworkParams
from meta_layer_cli.base_models.torch_weights import load_state_dict, residual_unit, weight_files
from meta_layer_cli.runtime.errors import InputDataError

CHANNELS = ("heart", "liver", "brain", "testis")
_NAME = re.compile(r"^final\.(\d+)\.(\d+)\.3(\.v2)?$")


def read_pangolin_network(path: str | os.PathLike, tissue: int) -> NetworkParams:
    """One Pangolin model, keeping only tissue ``tissue``'s splice-probability head (2 logits)."""
    state = load_state_dict(path)
    if "conv1.weight" not in state or "resblocks.0.conv1.weight" not in state:
        raise InputDataError(f"{path}: not a Pangolin state dict (no 'conv1'/'resblocks' keys)")
    n_units = len({k.split(".")[1] for k in state if k.startswith("resblocks.")})
    units = [residual_unit(state, f"resblocks.{i}", "bn1", "bn2", DILATION_SCHEDULE[i]) for i in range(n_units)]
    head = f"conv_last{2 * tissue + 1}"
    return NetworkParams(
        state["conv1.weight"][..., 0],
        state["conv1.bias"],
        state["skip.weight"][..., 0],
        state["skip.bias"],
        units,
        [state[f"convs.{k}.weight"][..., 0] for k in range(n_units // 4)],
        [state[f"convs.{k}.bias"] for k in range(n_units // 4)],
        state[f"{head}.weight"][..., 0],
        state[f"{head}.bias"],
    )


def load_pangolin(weights=None, device=None, dtype: torch.dtype | None = None, **kwargs) -> NeuralBaseModel:
    """Pangolin from its directory of ``final.{rep}.{2t}.3.v2`` files (e.g. ``shared/models/pangolin``)."""
    paths = [p for p in weight_files(weights, "final.*", "Pangolin") if _NAME.match(p.name)]
    members = []
    for p in paths:
        model_index = int(_NAME.match(p.name).group(2))
        if model_index % 2 or model_index // 2 >= len(CHANNELS):
            continue  # odd indices are Pangolin's site-usage models, not splice probability
        tissue = model_index // 2
        members.append(EnsembleMember(read_pangolin_network(p, tissue), (1,), (tissue,)))
    if not members:
        raise FileNotFoundError(f"Pangolin weights: no final.<rep>.<0|2|4|6>.3[.v2] files in {weights}")
    used = [str(p) for p in paths if int(_NAME.match(p.name).group(2)) % 2 == 0]
    return NeuralBaseModel("pangolin", members, CHANNELS, used, device=device, dtype=dtype, **kwargs)
