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


def _device_defaults(package) -> list[str]:
    """``module.function: default`` for every function and method of ``package`` whose ``device`` parameter
    has a default of its own (anything but None or no default)."""
    import importlib
    import inspect
    import pkgutil

    found = []
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        if info.name.endswith("__main__"):  # running it would start the command line
            continue
        module = importlib.import_module(info.name)
        functions = []
        for name, item in vars(module).items():
            if getattr(item, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(item):
                functions.append((name, item))
            elif inspect.isclass(item):
                for method_name, method in vars(item).items():
                    method = method.__func__ if isinstance(method, (classmethod, staticmethod)) else method
                    if inspect.isfunction(method):
                        functions.append((f"{name}.{method_name}", method))
        for name, fn in functions:
            parameter = inspect.signature(fn).parameters.get("device")
            if parameter is not None and parameter.default not in (None, inspect.Parameter.empty):
                found.append(f"{info.name}.{name}: device={parameter.default!r}")
    return found


def test_every_function_leaves_the_device_default_to_the_one_resolver():
    """evaluate/calibrate defaulted to the CPU for canonical checkpoints and to auto for variant ones, and 32
    lower-layer functions (base-model loaders, evaluation, inference) to the CPU: every function and method
    now takes device=None, which runtime.device.resolve_device alone turns into its default (auto)."""
    import meta_layer_cli

    assert _device_defaults(meta_layer_cli) == []


def test_the_walk_finds_a_device_default(tmp_path, monkeypatch):
    """The walk above sees a method's default in a sub-package (so its empty answer means something)."""
    package = tmp_path / "probe_pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "mod.py").write_text("class A:\n    def load(self, device='cpu'):\n        pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import probe_pkg

    assert _device_defaults(probe_pkg) == ["probe_pkg.sub.mod.A.load: device='cpu'"]
