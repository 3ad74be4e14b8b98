"""SpliceAI (Jaganathan et al. 2019): the five published Keras models, loaded with h5py."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import h5py
import numpy as np
import torch

from meta_layer_cli.base_models.base import DILATION_SCHEDULE, EnsembleMember, NeuralBaseModel
from meta_layer_cli.base_models.network import BatchNormParams, NetworkParams, ResidualUnitParams
from meta_layer_cli.io.resources import package_file
from meta_layer_cli.runtime.errors import InputDataError

CHANNELS = ("neither", "acceptor", "donor")
KERAS_BN_EPSILON = 1e-3  # Keras' default; the files' model_config confirms it


def default_weights() -> list[Path]:
    """The five HDF5 files inside the installed ``spliceai`` package."""
    what = "SpliceAI's built-in weights (or give --weights)"
    return [package_file("spliceai", f"spliceai/models/spliceai{i}.h5", what) for i in range(1, 6)]


def _layer_weights(group: h5py.Group, layer: str) -> dict[str, np.ndarray]:
    g = group[layer]
    names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]]
    return {n.split("/")[-1].split(":")[0]: np.asarray(g[n]) for n in names}


def _numbered(names: list[str], prefix: str) -> list[str]:
    # Keras numbers layers in creation order, which is the order SpliceAI's code builds them.
    pattern = re.compile(rf"^{prefix}_(\d+)$")
    hits = [(int(m.group(1)), n) for n in names if (m := pattern.match(n))]
    return [n for _, n in sorted(hits)]


def read_keras_network(path: str | os.PathLike) -> NetworkParams:
    """Convert one SpliceAI ``.h5`` file into :class:`NetworkParams`."""
    with h5py.File(path, "r") as f:
        if "model_weights" not in f:
            raise InputDataError(f"{path}: not a Keras model file (no 'model_weights' group)")
        group = f["model_weights"]
        layer_names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["layer_names"]]
        eps = {
            layer["config"]["name"]: layer["config"].get("epsilon", KERAS_BN_EPSILON)
            for layer in json.loads(f.attrs["model_config"])["config"]["layers"]
            if layer["class_name"] == "BatchNormalization"
        }
        convs = [_layer_weights(group, n) for n in _numbered(layer_names, "conv1d")]
        bn_names = _numbered(layer_names, "batch_normalization")
        bns = [(_layer_weights(group, n), eps[n]) for n in bn_names]

    def conv(w: dict) -> tuple[torch.Tensor, torch.Tensor]:
        # Keras kernel [W, in, out] -> PyTorch [out, in, W]
        return torch.from_numpy(w["kernel"].transpose(2, 1, 0).copy()), torch.from_numpy(w["bias"])

    def bn(w: dict, e: float) -> BatchNormParams:
        return BatchNormParams(
            *(torch.from_numpy(w[k]) for k in ("gamma", "beta", "moving_mean", "moving_variance")), e
        )

    pointwise = [c for c in convs if c["kernel"].shape[0] == 1]
    dilated = [c for c in convs if c["kernel"].shape[0] > 1]
    n_units = len(dilated) // 2
    if len(bns) != 2 * n_units or len(pointwise) != 2 + n_units // 4 + 1:
        raise InputDataError(f"{path}: unexpected SpliceAI layout ({len(convs)} conv, {len(bns)} BatchNorm layers)")
    units = []
    for i in range(n_units):
        w1, b1 = conv(dilated[2 * i])
        w2, b2 = conv(dilated[2 * i + 1])
        units.append(ResidualUnitParams(bn(*bns[2 * i]), w1, b1, bn(*bns[2 * i + 1]), w2, b2, DILATION_SCHEDULE[i]))
    (in_w, in_b), (sk_w, sk_b) = conv(pointwise[0]), conv(pointwise[1])
    skips = [conv(c) for c in pointwise[2:-1]]
    out_w, out_b = conv(pointwise[-1])
    return NetworkParams(
        in_w[..., 0],
        in_b,
        sk_w[..., 0],
        sk_b,
        units,
        [w[..., 0] for w, _ in skips],
        [b for _, b in skips],
        out_w[..., 0],
        out_b,
    )


def load_spliceai(weights=None, device=None, dtype=None, **kwargs) -> NeuralBaseModel:
    """SpliceAI ensemble; ``weights`` is None (packaged files), one ``.h5``, a list, or a directory."""
    if weights is None:
        paths = default_weights()
    else:
        p = Path(weights) if not isinstance(weights, (list, tuple)) else None
        paths = sorted(p.glob("*.h5")) if p is not None and p.is_dir() else ([p] if p else [Path(w) for w in weights])
    missing = [str(p) for p in paths if not p.is_file()]
    if not paths or missing:
        raise FileNotFoundError(f"SpliceAI weights not found: looked for Keras .h5 file(s) at {missing or weights}")
    members = [EnsembleMember(read_keras_network(p), (0, 1, 2), (0, 1, 2)) for p in paths]
    return NeuralBaseModel("spliceai", members, CHANNELS, paths, device=device, dtype=dtype, **kwargs)
