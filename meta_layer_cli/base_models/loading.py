"""Load a base model by name (the one entry point behind ``--base-model``), or accept one already loaded."""

from __future__ import annotations

import os

import torch

from meta_layer_cli.base_models.base import BaseModel
from meta_layer_cli.base_models.openspliceai import load_openspliceai
from meta_layer_cli.base_models.pangolin import load_pangolin
from meta_layer_cli.base_models.precomputed import PrecomputedScores
from meta_layer_cli.base_models.spliceai import load_spliceai
from meta_layer_cli.base_models.weights import find_weights
from meta_layer_cli.runtime.errors import UsageError

BASE_MODELS = ("spliceai", "openspliceai", "pangolin", "precomputed")


def load_base_model(
    name: str,
    weights: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    path: str | os.PathLike | None = None,
    flank: int | None = None,
    models_dir: str | os.PathLike | None = None,
    **kwargs,
) -> BaseModel:
    """Load a base model by name.

    Parameters
    ----------
    name : {"spliceai", "openspliceai", "pangolin", "precomputed"}
    weights : path, optional
        Found by :func:`meta_layer_cli.base_models.weights.find_weights` when not given
        (``models_dir`` / ``$METALAYER_MODELS``; SpliceAI: the Keras files inside the installed
        ``spliceai`` package). OpenSpliceAI: a directory of ``.pt`` files (one ensemble), one file,
        or a folder of flank sub-folders (``flank`` picks one, 10,000 nt by default). Pangolin: the
        directory holding ``final.{1,2,3}.{0,2,4,6}.3.v2``.
    device : auto, cpu, cuda, cuda:N or mps (:func:`meta_layer_cli.runtime.device.resolve_device`).
    dtype : torch dtype or its name; float32 by default (bfloat16 is for GPUs).
    path : for ``precomputed``, the parquet/TSV table of scores.
    """
    if name not in BASE_MODELS:
        raise UsageError(f"unknown base model {name!r} (choose from {', '.join(BASE_MODELS)})")
    if name != "precomputed":
        hint = str(weights) if weights is not None else None
        weights = find_weights(name, weights, flank, models_dir)
        kwargs["weights_hint"] = hint if hint is not None else (str(weights) if weights is not None else None)
    if name == "spliceai":
        model = load_spliceai(weights, device=device, dtype=dtype, **kwargs)
    elif name == "openspliceai":
        model = load_openspliceai(weights, device=device, dtype=dtype, **kwargs)
    elif name == "pangolin":
        model = load_pangolin(weights, device=device, dtype=dtype, **kwargs)
    if name != "precomputed":
        if flank is not None and name == "openspliceai" and 2 * model.context != flank:
            raise UsageError(f"--flank {flank} but the weights at {weights} have a {2 * model.context}-nt flank")
        return model
    source = path if path is not None else weights
    if source is None:
        raise UsageError("precomputed base model needs path=TABLE (parquet or TSV with chrom, pos, strand)")
    return PrecomputedScores(source, **kwargs)


def resolve_base_model(
    base_model,
    weights: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    models_dir: str | os.PathLike | None = None,
):
    """A loaded base model that can predict new sequences, from a name (+ weights, found as
    :func:`load_base_model` finds them) or a model."""
    model = (
        load_base_model(base_model, weights=weights, device=device, models_dir=models_dir)
        if isinstance(base_model, str)
        else base_model
    )
    if not hasattr(model, "predict_codes"):
        raise UsageError(f"base model {model.name!r} cannot predict new sequences (it only has precomputed scores)")
    return model
