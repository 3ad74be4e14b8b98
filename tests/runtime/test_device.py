"""One device resolver for every path: names, auto, CUDA/MPS availability (MPS and CUDA simulated here)."""

import pytest
import torch

from meta_layer_cli.runtime import device as dev
from meta_layer_cli.runtime.errors import UsageError


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_accepted_names(name):
    assert dev.check_device_name(name) == name


@pytest.mark.parametrize("name", ["gpu", "cuda:", "cuda:x", "CPU", "tpu", "", "cpu "])
def test_malformed_names_are_usage_errors(name):
    with pytest.raises(UsageError, match="unknown device"):
        dev.resolve_device(name)


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: False)
    assert dev.resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(dev, "_mps_available", lambda: True)
    assert dev.resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert dev.resolve_device("auto") == torch.device("cuda")
    assert dev.resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(RuntimeError, match="sees 2 CUDA device"):
        dev.resolve_device("cuda:2")


def test_a_missing_device_is_an_error_never_a_silent_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA device"):
        dev.resolve_device("cuda")
    with pytest.raises(RuntimeError, match="MPS unavailable"):
        dev.resolve_device("mps")


def test_torchrun_ranks_take_their_own_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert dev.resolve_device("cuda") == torch.device("cuda:3")
    assert dev.resolve_device("cuda:1") == torch.device("cuda:1")  # an explicit index is kept


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_autocast_policy():
    assert isinstance(dev.autocast(torch.device("cpu"), True), type(__import__("contextlib").nullcontext()))
    cuda = dev.autocast(torch.device("cuda"), True)
    assert isinstance(cuda, torch.autocast) and cuda.fast_dtype == torch.bfloat16
    mps = dev.autocast(torch.device("mps"), True)
    assert isinstance(mps, torch.autocast) and mps.fast_dtype == torch.float16
    assert not isinstance(dev.autocast(torch.device("cuda"), False), torch.autocast)


def test_default_sizes_follow_the_device():
    assert dev.default_sizes(torch.device("cpu"))["meta_block"] == 20_000
    assert dev.default_sizes(torch.device("cuda"))["meta_block"] == 200_000
    assert set(dev.default_sizes(torch.device("mps"))) == set(dev.default_sizes(torch.device("cpu")))


def test_every_path_resolves_through_the_one_module(monkeypatch):
    """The base models, the trainer and inference all reach resolve_device (no hard-coded 'cuda' checks)."""
    import pathlib

    root = pathlib.Path(dev.__file__).parents[1]
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "torch.cuda.is_available()" in p.read_text() and p.name not in ("device.py", "trainer.py")
    ]
    assert not offenders, offenders


def test_every_job_leaves_the_device_default_to_the_one_resolver():
    """evaluate/calibrate defaulted to the CPU for canonical checkpoints and to auto for variant ones: every job
    now takes device=None and resolves it once (runtime.device.resolve_device: auto)."""
    import importlib
    import inspect
    import pkgutil

    import meta_layer_cli.jobs as jobs

    own_defaults = []
    for info in pkgutil.walk_packages(jobs.__path__, "meta_layer_cli.jobs."):
        module = importlib.import_module(info.name)
        for name, fn in vars(module).items():
            if name.startswith("_") or not inspect.isfunction(fn) or fn.__module__ != module.__name__:
                continue
            parameter = inspect.signature(fn).parameters.get("device")
            if parameter is not None and parameter.default not in (None, inspect.Parameter.empty):
                own_defaults.append(f"{info.name}.{name}: device={parameter.default!r}")
    assert not own_defaults, own_defaults
