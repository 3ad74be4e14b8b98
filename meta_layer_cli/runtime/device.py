"""Device and dtype policy: the one place that turns ``--device`` / ``hardware.device`` into a ``torch.device``.

Accepted names: ``auto`` (CUDA if torch sees a GPU, else Apple's MPS if available, else the CPU),
``cpu``, ``cuda``, ``cuda:N`` and ``mps``. Under ``torchrun`` with several processes a plain
``cuda`` means each rank's own GPU (``cuda:$LOCAL_RANK``). A device torch cannot use is an
error naming it, never a silent fall-back to the CPU.
"""

from __future__ import annotations

import contextlib
import os
import re

import torch

from meta_layer_cli.runtime.errors import RuntimeFailure, UsageError

#: what every ``device`` parameter takes: a name above, a ``torch.device``, or None, which means ``auto``: the
#: one default, resolved here (jobs resolve once and pass the ``torch.device`` down)
DeviceLike = str | torch.device | None
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def check_device_name(name: str) -> str:
    """``name`` if it is one of the accepted device names (see the module docstring), else UsageError."""
    if not isinstance(name, str) or not _DEVICE.match(name):
        raise UsageError(f"unknown device {name!r} (use auto, cpu, cuda, cuda:N or mps)")
    return name


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """The ``torch.device`` for ``name``; ``auto`` picks CUDA, then MPS, then the CPU.

    Raises UsageError for a malformed name and RuntimeError for a device this machine lacks.
    """
    if isinstance(name, torch.device):
        name = str(name)
    name = check_device_name("auto" if name is None else name)
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif _mps_available():
            name = "mps"
        else:
            name = "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeFailure(f"device {name} requested but torch sees no CUDA device (try --device cpu)")
        if name == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            name = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise RuntimeFailure(f"device {name} requested but torch sees {torch.cuda.device_count()} CUDA device(s)")
    if name == "mps" and not _mps_available():
        raise RuntimeFailure("device mps requested but torch reports MPS unavailable (Apple silicon + macOS 12.3+)")
    return torch.device(name)


def set_threads(threads: int | None) -> None:
    """torch's CPU threads from a hardware section's ``threads`` (None: torch's default, all cores)."""
    if threads:
        torch.set_num_threads(threads)


def resolve_dtype(name: str | torch.dtype | None) -> torch.dtype:
    """``float32`` (default), ``bfloat16`` or ``float16`` (or a torch dtype) -> ``torch.dtype``."""
    if name is None:
        return torch.float32
    if isinstance(name, torch.dtype):
        return name
    if name not in DTYPES:
        raise UsageError(f"unknown dtype {name!r} (choose from {', '.join(DTYPES)})")
    return DTYPES[name]


def full_precision_convolutions() -> contextlib.AbstractContextManager:
    """Context in which cuDNN convolutions run in float32, not TF32 (PyTorch's default on Ampere and later).

    For every forward pass whose numbers are reported: the base models' (a GPU then reproduces the published
    models' CPU scores to ~1e-6 instead of ~1e-3, enough to flip SpliceAI's two-decimal delta scores) and the
    meta model's at inference and validation (with TF32 an H200 moved its probabilities by up to 1.3e-3
    between two paddings of one gene, scripts/gene_rate.py; in float32 a GPU gives the CPU's numbers).
    """
    cudnn = torch.backends.cudnn
    return cudnn.flags(
        enabled=cudnn.enabled, benchmark=cudnn.benchmark, deterministic=cudnn.deterministic, allow_tf32=False
    )


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """Mixed precision for training steps: bf16 autocast on CUDA, fp16 on MPS, nothing on the CPU.

    On the CPU autocast would slow the small convolutions down; ``enabled=False`` is full precision
    everywhere.
    """
    if not enabled or device.type == "cpu":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def default_sizes(device: torch.device) -> dict[str, int]:
    """Block and batch sizes by device type, for settings left unset (``hardware.*: null``).

    ``base_block``: output nt per base-model forward (long blocks pay the context once);
    ``base_batch``: such blocks per forward; ``meta_block``: nt per meta-model forward at
    inference (small blocks suit a CPU's caches; a GPU is launch-bound, so most genes go in one
    pass: on the H100 the overhead fell from 0.84 to 0.22 of SpliceAI's time, see scripts/RESULTS.md);
    ``window_batch``: variant windows per forward; ``meta_bucket``: a meta-model input's length is rounded up to
    a multiple of this (0: not rounded). Genes all differ in length, and on either device a new input length
    costs a first-time kernel choice (cuDNN's plans on a GPU; oneDNN's primitives on a CPU, whose cache holds
    about 1,000): over 300 arenosa genes (``scripts/gene_rate.py``) an H200 took 26.6 ms a gene on lengths it had
    not met and 3.9 ms with inputs rounded up to 8,192 nt; 2 CPU threads took 56-70 ms and 28-37 ms rounded up to
    512-1,024 nt (8,192 pads short genes too much there: 44-60 ms). ``meta_window_bucket``: the same for the
    windows around variants (score-vcf's ``MetaLayer=``), which all share one length for SNVs: a CPU gains
    nothing and pays the padding (22 -> 33 ms a window at -D 50, 1,024 nt); a GPU keeps its rounding for indels.
    """
    if device.type == "cuda":
        return {
            "base_block": 20_000,
            "base_batch": 16,
            "meta_block": 200_000,
            "window_batch": 64,
            "meta_bucket": 8192,
            "meta_window_bucket": 8192,
        }
    if device.type == "mps":
        return {
            "base_block": 20_000,
            "base_batch": 4,
            "meta_block": 100_000,
            "window_batch": 8,
            "meta_bucket": 8192,
            "meta_window_bucket": 8192,
        }
    return {
        "base_block": 50_000,
        "base_batch": 1,
        "meta_block": 20_000,
        "window_batch": 8,
        "meta_bucket": 1024,
        "meta_window_bucket": 0,
    }
