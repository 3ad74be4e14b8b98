"""Base models behind one interface: ``load_base_model(name, weights=None, device="cpu", dtype=None)``.

Every model returns probabilities ``[L, C]`` per nucleotide; SpliceAI and
OpenSpliceAI channels are ``neither, acceptor, donor``, Pangolin's are the
splice-site probability in ``heart, liver, brain, testis``.
"""

from __future__ import annotations

import os

import torch

from meta_layer_cli.base_models.base import BaseModel, NeuralBaseModel

BASE_MODELS = ("spliceai", "openspliceai", "pangolin", "precomputed")

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_base_model(
    name: str,
    weights: str | os.PathLike | None = None,
    device: str = "cpu",
    dtype: torch.dtype | str | None = None,
    path: str | os.PathLike | None = None,
    **kwargs,
) -> BaseModel:
    """Load a base model by name.

    Parameters
    ----------
    name : {"spliceai", "openspliceai", "pangolin", "precomputed"}
    weights : path, optional
        SpliceAI: defaults to the Keras files inside the installed ``spliceai``
        package. OpenSpliceAI: a directory of ``.pt`` files (one ensemble) or one
        file. Pangolin: the directory holding ``final.{1,2,3}.{0,2,4,6}.3.v2``.
    device : "cpu" or "cuda" (or "cuda:N").
    dtype : torch dtype or its name; float32 by default (bfloat16 is for GPUs).
    path : for ``precomputed``, the parquet/TSV table of scores.
    """
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ValueError(f"unknown dtype {dtype!r} (choose from {', '.join(_DTYPES)})")
        dtype = _DTYPES[dtype]
    if name == "spliceai":
        from meta_layer_cli.base_models.spliceai import load_spliceai

        return load_spliceai(weights, device=device, dtype=dtype, **kwargs)
    if name == "openspliceai":
        from meta_layer_cli.base_models.openspliceai import load_openspliceai

        return load_openspliceai(weights, device=device, dtype=dtype, **kwargs)
    if name == "pangolin":
        from meta_layer_cli.base_models.pangolin import load_pangolin

        return load_pangolin(weights, device=device, dtype=dtype, **kwargs)
    if name == "precomputed":
        from meta_layer_cli.base_models.precomputed import PrecomputedScores

        source = path if path is not None else weights
        if source is None:
            raise ValueError("precomputed base model needs path=TABLE (parquet or TSV with chrom, pos, strand)")
        return PrecomputedScores(source, **kwargs)
    raise ValueError(f"unknown base model {name!r} (choose from {', '.join(BASE_MODELS)})")


__all__ = ["BASE_MODELS", "BaseModel", "NeuralBaseModel", "load_base_model", "resolve_base_model"]


def resolve_base_model(base_model, weights: str | os.PathLike | None = None, device: str = "cpu"):
    """A loaded base model that can predict new sequences, from a name (+ weights) or a model."""
    model = load_base_model(base_model, weights=weights, device=device) if isinstance(base_model, str) else base_model
    if not hasattr(model, "predict_codes"):
        raise ValueError(f"base model {model.name!r} cannot predict new sequences (it only has precomputed scores)")
    return model
