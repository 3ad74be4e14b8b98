"""Run configuration: YAML files in ``configs/`` plus ``--set key=value`` overrides, strictly validated."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from meta_layer_cli.models.meta import MetaModelConfig

_M = TypeVar("_M", bound=BaseModel)


class StrictSection(BaseModel):
    """A config section: unknown keys and bad values are errors, also on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitSection(StrictSection):
    seed: int = 0
    validation: float = Field(0.1, ge=0, lt=1)
    test: float = Field(0.2, gt=0, lt=1)
    test_chromosomes: list[str] | None = None


class TrainingSection(StrictSection):
    epochs: int = Field(30, gt=0)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_steps: int = Field(50, ge=0)
    batch_size: int = Field(8, gt=0)
    chunk: int = Field(2000, gt=0)
    chunks_per_epoch: int = Field(400, gt=0)
    validation_chunks: int = Field(300, gt=0)
    random_fraction: float = Field(0.3, ge=0, le=1)
    candidate_threshold: float = Field(0.01, gt=0, lt=1)
    patience: int = Field(5, gt=0)
    max_minutes: float | None = Field(None, gt=0)
    grad_clip: float = Field(1.0, gt=0)
    normalizer_chunks: int = Field(64, gt=0)
    seed: int = 0
    amp: bool = True
    progress: bool = True


class RunConfig(StrictSection):
    """Everything a canonical training run needs. Unknown keys are errors."""

    base_model: str | list[str] = "spliceai"
    base_weights: str | list[str | None] | None = None
    dataset: Literal["demo"] = "demo"
    genes: list[str] | None = None
    max_genes: int | None = Field(None, gt=0)
    train_genes: list[str] | None = None
    test_genes: list[str] | None = None
    tracks_cache: str | None = None
    output_dir: str = "runs/canonical"
    device: str = "cpu"
    split: SplitSection = SplitSection()
    model: MetaModelConfig = MetaModelConfig()
    # fit a gene-structure decoder on the validation genes and apply it to whole genes
    structure: bool = True
    training: TrainingSection = TrainingSection()

    def base_models(self) -> list[tuple[str, str | None]]:
        names = [self.base_model] if isinstance(self.base_model, str) else list(self.base_model)
        weights = self.base_weights if isinstance(self.base_weights, list) else [self.base_weights] * len(names)
        if len(weights) != len(names):
            raise ValueError(f"base_weights has {len(weights)} entries for {len(names)} base models")
        return list(zip(names, weights))


def _format_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
        parts.append(f"{key}: {msg}" if key else msg)
    return "invalid config: " + "; ".join(parts)


def _set_dotted(tree: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {dotted}: {k} is not a section")
    node[keys[-1]] = value


def parse_overrides(items: list[str]) -> dict:
    """``["training.epochs=5", "model.dilations=[1,2]"]`` (``--set`` arguments) -> ``{dotted key: YAML value}``."""
    parsed = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        parsed[key.strip()] = yaml.safe_load(raw)
    return parsed


def load_yaml_config(
    schema: type[_M],
    path: str | os.PathLike | dict | BaseModel | None = None,
    overrides: list[str] | dict | None = None,
) -> _M:
    """Read a YAML file, apply overrides (``["training.epochs=5", ...]`` or a dict of dotted keys)
    and validate against ``schema``; any problem is one ``ValueError`` line naming the key.

    Instead of a file, ``path`` may be a config tree (a dict, copied) or a config object.
    """
    tree: dict = {}
    if isinstance(path, BaseModel):
        tree = path.model_dump()
    elif isinstance(path, dict):
        tree = copy.deepcopy(path)
    elif path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            tree = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
        if not isinstance(tree, dict):
            raise ValueError(f"{path}: top level must be a mapping of keys")
    if not isinstance(overrides, dict):
        overrides = parse_overrides(overrides or [])
    for key, value in overrides.items():
        _set_dotted(tree, key, value)
    try:
        return schema(**tree)
    except ValidationError as err:
        raise ValueError(_format_error(err)) from None


def load_run_config(
    path: str | os.PathLike | dict | RunConfig | None = None, overrides: list[str] | dict | None = None
) -> RunConfig:
    """The canonical run's config (see :func:`load_yaml_config`)."""
    return load_yaml_config(RunConfig, path, overrides)
