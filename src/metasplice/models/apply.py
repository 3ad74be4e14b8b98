"""Running a meta model over whole genes, in blocks, exactly as training saw its chunks."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from metasplice.io.sequence import codes_to_one_hot

N_CODE = 4
MAX_MARGIN = 4096  # Hyena's receptive field is its whole input; cap the context actually fed


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
    block: int = 20_000,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Meta-model probabilities ``[L, 3]`` (neither, acceptor, donor) for one gene.

    ``codes [L]`` (0-3 ACGT, 4 N), ``tracks [C, L]`` base-model probabilities.
    Each block gets ``model_margin(model)`` nt of context from the gene (N and
    zero scores past its ends), so the result does not depend on ``block``.
    """
    model.eval()
    margin = model_margin(model)
    out = np.empty((len(codes), 3), dtype=np.float32)
    for start in range(0, len(codes), block):
        end = min(start + block, len(codes))
        c, t = window_arrays(codes, tracks, start - margin, end + margin)
        x = torch.from_numpy(codes_to_one_hot(c)[None]).to(device)
        probs = model.predict_proba(x, torch.from_numpy(t[None]).to(device))[0]
        out[start:end] = probs[:, margin : margin + end - start].T.float().cpu().numpy()
    return out
