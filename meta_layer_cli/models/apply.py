"""Running a meta model over whole genes, in blocks, exactly as training saw its chunks."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from meta_layer_cli.io.sequence import codes_to_one_hot
from meta_layer_cli.models.structure import GeneStructureDecoder

N_CODE = 4
MAX_MARGIN = 4096  # Hyena's receptive field is its whole input; cap the context actually fed
# nt per forward pass over a gene: small blocks suit the CPU's caches (20 kb: 0.157 of SpliceAI's time
# vs 0.175 at 200 kb); on a GPU each pass is launch-bound, and 200 kb (most genes in one pass) cut the
# H100's overhead from 0.84 to 0.22 (scripts/recalibration_overhead.py)
BLOCK = {"cpu": 20_000, "cuda": 200_000}


def model_margin(model: nn.Module) -> int:
    """Context (nt each side) fed with every chunk/block: the model's receptive field, capped."""
    return min(int(getattr(model, "receptive_field", 0)), MAX_MARGIN)


def window_arrays(codes: np.ndarray, tracks: np.ndarray, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """``codes[start:end]``, ``tracks[:, start:end]`` with N / zero scores where the range leaves the gene.

    The one place that decides what a model sees beyond a gene's ends, for
    training chunks and inference blocks alike.
    """
    length = len(codes)
    lo, hi = max(start, 0), min(end, length)
    c = np.full(end - start, N_CODE, dtype=np.uint8)
    t = np.zeros((tracks.shape[0], end - start), dtype=np.float32)
    if hi > lo:
        c[lo - start : hi - start] = codes[lo:hi]
        t[:, lo - start : hi - start] = tracks[:, lo:hi]
    return c, t


@torch.inference_mode()
def recalibrate_arrays(
    model: nn.Module,
    codes: np.ndarray,
    tracks: np.ndarray,
    block: int | None = None,
    device: str | torch.device = "cpu",
    structure: GeneStructureDecoder | None = None,
) -> np.ndarray:
    """Meta-model probabilities ``[L, 3]`` (neither, acceptor, donor) for one gene.

    ``codes [L]`` (0-3 ACGT, 4 N), ``tracks [C, L]`` base-model probabilities.
    Each block gets ``model_margin(model)`` nt of context from the gene (N and
    zero scores past its ends), so the result does not depend on ``block`` (default: by device,
    :data:`BLOCK`).
    ``structure``: the checkpoint's gene-structure decoder, applied last; only
    for whole transcripts (:mod:`meta_layer_cli.models.structure`).
    """
    model.eval()
    if structure is not None:
        return structure(recalibrate_arrays(model, codes, tracks, block, device), codes)
    if model.config.version == "v1":
        return _recalibrate_windows(model, codes, tracks, device)
    margin = model_margin(model)
    block = block or BLOCK.get(torch.device(device).type, BLOCK["cpu"])
    out = np.empty((len(codes), 3), dtype=np.float32)
    for start in range(0, len(codes), block):
        end = min(start + block, len(codes))
        c, t = window_arrays(codes, tracks, start - margin, end + margin)
        x = torch.from_numpy(codes_to_one_hot(c)[None]).to(device)
        probs = model.predict_proba(x, torch.from_numpy(t[None]).to(device))[0]
        out[start:end] = probs[:, margin : margin + end - start].T.float().cpu().numpy()
    return out


CANDIDATE_THRESHOLD = 0.01
WINDOW_BATCH = 256


@torch.inference_mode()
def _recalibrate_windows(model: nn.Module, codes: np.ndarray, tracks: np.ndarray, device) -> np.ndarray:
    """V1 over a gene: every candidate position (any non-``neither`` channel >= 0.01) is scored from
    its own window; elsewhere the model's base term alone, softmaxed, stands in (its correction is
    only trained near candidates)."""
    half = model.config.window // 2
    t_all = torch.from_numpy(tracks[None]).to(device)
    base = model.base(t_all) / model.log_temperature.exp()[None, :, None]
    out = torch.softmax(base.float(), dim=1)[0].T.cpu().numpy()
    rows = [i for i, name in enumerate(model.config.channels) if not name.endswith("neither")]
    candidates = np.flatnonzero(tracks[rows].max(axis=0) >= CANDIDATE_THRESHOLD)
    for i in range(0, len(candidates), WINDOW_BATCH):
        batch = candidates[i : i + WINDOW_BATCH]
        windows = [window_arrays(codes, tracks, p - half, p + half + 1) for p in batch]
        x = torch.from_numpy(codes_to_one_hot(np.stack([c for c, _ in windows]))).to(device)
        t = torch.from_numpy(np.stack([w for _, w in windows])).to(device)
        out[batch] = model.predict_proba(x, t).float().cpu().numpy()
    return out
