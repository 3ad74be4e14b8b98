"""Running a meta model over whole genes, in blocks, exactly as training saw its chunks."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from meta_layer_cli.io.sequence import codes_to_one_hot
from meta_layer_cli.models.site_calibration import SiteCalibration, calibration_from_config
from meta_layer_cli.models.structure import GeneStructureDecoder, structure_from_config
from meta_layer_cli.runtime.device import default_sizes, resolve_device

N_CODE = 4
MAX_MARGIN = 4096  # Hyena's receptive field is its whole input; cap the context actually fed


def model_margin(model: nn.Module) -> int:
    """Context (nt each side) fed with every chunk/block: the model's receptive field, capped."""
    return min(int(getattr(model, "receptive_field", 0)), MAX_MARGIN)


def model_max_input(model: nn.Module) -> int | None:
    """The longest input (nt, context included) the model's sequence encoder takes, or None if unbounded."""
    encoder = getattr(model, "sequence_encoder", None)
    return getattr(encoder, "max_len", None)


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
    device: str | torch.device | None = None,
    structure: GeneStructureDecoder | None = None,
    calibration: SiteCalibration | None = None,
    bucket: int | None = None,
) -> np.ndarray:
    """Meta-model probabilities ``[L, 3]`` (neither, acceptor, donor) for one gene.

    ``codes [L]`` (0-3 ACGT, 4 N), ``tracks [C, L]`` base-model probabilities.
    Each block gets ``model_margin(model)`` nt of context from the gene (N and
    zero scores past its ends), so the result does not depend on ``block`` (default: by device: small
    blocks suit a CPU's caches, 20 kb was 0.157 of SpliceAI's time vs 0.175 at 200 kb; a GPU is
    launch-bound and 200 kb cut the H100's overhead from 0.84 to 0.22, see
    ``scripts/recalibration_overhead.py``).
    ``structure``: the checkpoint's gene-structure decoder, applied next; only for whole transcripts
    (:mod:`meta_layer_cli.models.structure`). ``calibration``: the checkpoint's post-hoc calibration,
    applied last. ``bucket``: each input is padded on the right (N, zero scores) to a multiple of this many nt,
    so that the device meets few input lengths, each new one costing a kernel choice (default by device: 8,192 on
    a GPU, 1,024 on a CPU, :func:`~meta_layer_cli.runtime.device.default_sizes`); the result is the same, since
    an output reaches no further than the context fed. Not for a model that reaches further (Hyena, whose
    context is capped). ``predict_proba`` runs convolutions in float32 on a GPU too, so the padding moves nothing.
    """
    model.eval()
    if calibration is not None:
        return calibration(recalibrate_arrays(model, codes, tracks, block, device, structure, bucket=bucket))
    if structure is not None:
        return structure(recalibrate_arrays(model, codes, tracks, block, device, bucket=bucket), codes)
    device = resolve_device(device)
    if model.config.version == "v1":
        return _recalibrate_windows(model, codes, tracks, device)
    margin = model_margin(model)
    sizes = default_sizes(device)
    block = block or sizes["meta_block"]
    longest = model_max_input(model)
    if longest is not None:  # Hyena's filters exist up to hyena_max_len nt: a GPU's 200-kb block would not fit
        block = max(min(block, longest - 2 * margin), 1)
    bucket = sizes["meta_bucket"] if bucket is None else bucket
    if getattr(model, "receptive_field", 0) > margin:  # padding would move its outputs
        bucket = 0
    out = np.empty((len(codes), 3), dtype=np.float32)
    for start in range(0, len(codes), block):
        end = min(start + block, len(codes))
        size = end - start + 2 * margin
        if bucket:
            size = -(-size // bucket) * bucket
        c, t = window_arrays(codes, tracks, start - margin, start - margin + size)
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


@dataclass
class CanonicalPredictor:
    """A canonical checkpoint ready to apply: the model, its gene-structure decoder and its calibration."""

    model: nn.Module
    structure: GeneStructureDecoder | None
    calibration: SiteCalibration | None
    config: dict
    device: torch.device

    @classmethod
    def load(cls, checkpoint: str | os.PathLike, device: str | torch.device | None = None) -> CanonicalPredictor:
        from meta_layer_cli.models.checkpoint import load_model

        device = resolve_device(device)
        model, config = load_model(checkpoint, device)
        return cls.of(model, config, device)

    @classmethod
    def of(cls, model: nn.Module, config: dict, device: str | torch.device | None = None) -> CanonicalPredictor:
        """A checkpoint's model and ``config.json`` already loaded (``models.checkpoint.load_model``)."""
        device = resolve_device(device)
        return cls(model, structure_from_config(config), calibration_from_config(config), config, device)

    def __call__(
        self, codes: np.ndarray, tracks: np.ndarray, whole_gene: bool = True, block: int | None = None
    ) -> np.ndarray:
        """``[L, 3]`` for one gene (``whole_gene``: decoder and calibration apply) or a window (neither applies
        the decoder, which reads whole transcripts; the calibration still does). A window is rounded up to the
        device's ``meta_window_bucket``, not ``meta_bucket`` (:func:`~meta_layer_cli.runtime.device.default_sizes`)."""
        structure = self.structure if whole_gene else None
        bucket = None if whole_gene else default_sizes(self.device)["meta_window_bucket"]
        return recalibrate_arrays(self.model, codes, tracks, block, self.device, structure, self.calibration, bucket)
