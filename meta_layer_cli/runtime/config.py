"""Strict YAML configs: one loader for every job config, hardware profiles, ``--set key=value`` overrides.

Every problem is one :class:`~meta_layer_cli.runtime.errors.UsageError` line naming the key:
unknown keys, a key given twice in one mapping (YAML would silently keep the last; a repeated
section would reset the first one's keys), values of the wrong type (no ``epochs: true`` read as
1, no ``"3"`` read as 3), non-finite or out-of-range numbers. All of it is checked before anything
is allocated.

A *profile* (``configs/profiles/{cpu,m1,gpu}.yaml``) holds hardware settings only: the
``hardware`` section of any job config (:class:`HardwareSection`). Settings compose, later ones
winning: the schema's defaults < the job config file < ``--profile`` < ``--set`` < explicit flags
such as ``--device``.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from meta_layer_cli.runtime.device import check_device_name
from meta_layer_cli.runtime.errors import UsageError

_M = TypeVar("_M", bound=BaseModel)
PROFILES = ("cpu", "m1", "gpu")


class StrictSection(BaseModel):
    """A config section: unknown keys, wrong types and non-finite numbers are errors, also on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True, allow_inf_nan=False)


class HardwareSection(StrictSection):
    """Where and how big: what a profile sets. ``null`` sizes are chosen by device
    (:func:`meta_layer_cli.runtime.device.default_sizes`)."""

    device: str = "auto"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"  # base-model inference
    amp: bool = True  # mixed precision for training steps on a GPU (bf16) or MPS (fp16); never on the CPU
    batch_size: int = Field(8, gt=0, le=4096)  # training examples per optimizer step
    base_block: int | None = Field(None, gt=0, le=5_000_000)  # output nt per base-model forward pass
    base_batch: int | None = Field(None, gt=0, le=1024)  # base-model blocks per forward pass
    meta_block: int | None = Field(None, gt=0, le=5_000_000)  # nt per meta-model forward pass at inference
    window_batch: int | None = Field(None, gt=0, le=4096)  # variant windows per forward pass
    threads: int | None = Field(None, gt=0, le=1024)  # torch CPU threads (null: torch's default)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        return check_device_name(value)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[object, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise UsageError(
                f"key {key!r} appears twice in one mapping (lines {seen[key] + 1} and {key_node.start_mark.line + 1}); "
                "YAML would keep only the last"
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: str | os.PathLike) -> dict:
    """A YAML file's top-level mapping (duplicate keys refused)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        tree = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}
    except UsageError as err:
        raise UsageError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        raise UsageError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a text file") from None
    if not isinstance(tree, dict):
        raise UsageError(f"{path}: top level must be a mapping of keys")
    return tree


def format_validation_error(err: ValidationError) -> str:
    """``key: problem (got value)`` for each error, ``; ``-separated (callers say what was invalid)."""
    parts = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
        given = e.get("input")
        if e["type"] != "extra_forbidden" and not isinstance(given, (dict, list)) and given is not None:
            msg += f" (got {given!r})"
        parts.append(f"{key}: {msg}" if key else msg)
    return "; ".join(parts)


def _set_dotted(tree: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    if not all(keys):
        raise UsageError(f"--set {dotted}: empty key")
    node = tree
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise UsageError(f"--set {dotted}: {k} is not a section")
    node[keys[-1]] = value


def parse_overrides(items: list[str]) -> dict:
    """``["training.epochs=5", "model.dilations=[1,2]"]`` (``--set`` arguments) -> ``{dotted key: YAML value}``."""
    parsed = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            parsed[key.strip()] = yaml.load(raw, Loader=_UniqueKeyLoader) if raw.strip() else None
        except yaml.YAMLError as err:
            raise UsageError(f"--set {item}: the value is not valid YAML ({str(err).splitlines()[0]})") from None
    return parsed


def profile_path(profile: str | os.PathLike) -> Path:
    """A built-in profile name (``cpu``, ``m1``, ``gpu``) or a path to a profile YAML."""
    text = str(profile)
    if text in PROFILES:
        from importlib.resources import files

        return Path(str(files("meta_layer_cli.configs") / "profiles" / f"{text}.yaml"))
    path = Path(text).expanduser()
    if not path.is_file():
        raise UsageError(f"--profile {text}: not a built-in profile ({', '.join(PROFILES)}) nor a file")
    return path


def read_profile(profile: str | os.PathLike) -> dict:
    """A profile's settings, validated as a :class:`HardwareSection` (hardware keys only)."""
    path = profile_path(profile)
    tree = read_yaml(path)
    tree = tree.get("hardware", tree) if set(tree) == {"hardware"} else tree
    try:
        HardwareSection(**tree)
    except ValidationError as err:
        raise UsageError(f"profile {path}: " + format_validation_error(err)) from None
    return tree


def load_yaml_config(
    schema: type[_M],
    path: str | os.PathLike | dict | BaseModel | None = None,
    overrides: list[str] | dict | None = None,
    profile: str | os.PathLike | None = None,
) -> _M:
    """Read a YAML file, apply a hardware ``profile`` and overrides (``["training.epochs=5", ...]`` or a
    dict of dotted keys), and validate against ``schema``; any problem is one UsageError naming the key.

    Instead of a file, ``path`` may be a config tree (a dict, copied) or a config object.
    """
    tree: dict = {}
    if isinstance(path, BaseModel):
        tree = path.model_dump()
    elif isinstance(path, dict):
        tree = copy.deepcopy(path)
    elif path is not None:
        tree = read_yaml(path)
    if profile is not None:
        hardware = tree.setdefault("hardware", {})
        if not isinstance(hardware, dict):
            raise UsageError("hardware: must be a mapping of keys")
        hardware.update(read_profile(profile))
    if not isinstance(overrides, dict):
        overrides = parse_overrides(overrides or [])
    for key, value in overrides.items():
        _set_dotted(tree, key, value)
    try:
        return schema(**tree)
    except ValidationError as err:
        raise UsageError("invalid config: " + format_validation_error(err)) from None
    except TypeError as err:  # e.g. a section given as a scalar
        raise UsageError(f"invalid config: {err}") from None


def hardware_settings(profile: str | os.PathLike | None = None, **given) -> HardwareSection:
    """Hardware settings for a command without a job config: a profile, then explicit values (None: unset)."""
    tree = read_profile(profile) if profile is not None else {}
    tree.update({k: v for k, v in given.items() if v is not None})
    try:
        return HardwareSection(**tree)
    except ValidationError as err:
        raise UsageError(format_validation_error(err)) from None
