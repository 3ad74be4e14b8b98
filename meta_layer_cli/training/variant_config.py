"""Configuration of ``metalayer train-delta``: YAML + ``--profile`` + ``--set key=value``, validated strictly.

Unknown keys and bad values stop the run with a one-line error naming the key, as
:mod:`meta_layer_cli.training.config` does for canonical runs. See ``configs/variants.yaml``. Where
and how big (device, dtype of the base model, training batch size, threads) is the ``hardware``
section, the one every job config shares (:class:`~meta_layer_cli.runtime.config.HardwareSection`,
set by ``--profile cpu|m1|gpu``); it is not part of what makes a run (its fingerprint).
"""

from __future__ import annotations

import os
from typing import Literal

import polars as pl
from pydantic import Field, ValidationError, field_validator, model_validator

from meta_layer_cli.features.variants import TARGET_KINDS
from meta_layer_cli.models.variant import VariantArchitecture, VariantModelConfig, VariantModelName
from meta_layer_cli.runtime.config import HardwareSection, StrictSection, load_yaml_config
from meta_layer_cli.runtime.errors import reading
from meta_layer_cli.training.config import check_base_model_names


class DataSpec(StrictSection):
    """One input table: a loader of :mod:`meta_layer_cli.io.assays` and its file.

    ``loader``: ``vexseq`` | ``mapsy`` | ``wt1_saturation`` (built in, no path) |
    ``splicevardb`` (needs ``fasta``; ``build``, ``annotation``) | ``table`` (a CSV/TSV/
    parquet with the loaders' columns). ``max_rows``: a seeded random sample of rows
    (for quick runs). Paths may use ``~`` and ``$VARS``.
    """

    loader: Literal["vexseq", "mapsy", "wt1_saturation", "splicevardb", "table"]
    path: str | None = None
    fasta: str | None = None
    build: Literal["hg19", "hg38"] = "hg38"
    annotation: str | None = None
    max_rows: int | None = Field(None, gt=0)
    seed: int = 0

    @model_validator(mode="after")
    def _paths(self) -> DataSpec:
        if self.loader != "wt1_saturation" and not self.path:
            raise ValueError(f"loader {self.loader} needs a path")
        if self.loader == "splicevardb" and not self.fasta:
            raise ValueError("loader splicevardb needs a fasta")
        return self

    def input_paths(self) -> list[str]:
        """The files this entry reads (its table, and the FASTA of ``splicevardb``), ``~`` and ``$VARS`` expanded."""
        return [p for p in (_expand(self.path), _expand(self.annotation), _expand(self.fasta)) if p]

    def load(self) -> pl.DataFrame:
        """The table, as the loader returns it (sampled to ``max_rows``)."""
        path = _expand(self.path)
        with reading(f"{self.loader} data {path or ''}".strip()):  # the loaders' readers name what they read
            frame = self._read(path)
        if self.max_rows is not None and frame.height > self.max_rows:
            frame = frame.with_row_index("_row").sample(n=self.max_rows, seed=self.seed).sort("_row").drop("_row")
        return frame

    def _read(self, path: str | None) -> pl.DataFrame:
        from meta_layer_cli.io.assays import load_mapsy, load_saturation_mutagenesis, load_splicevardb, load_vexseq

        if self.loader == "vexseq":
            frame = load_vexseq(path)
        elif self.loader == "mapsy":
            frame = load_mapsy(path)
        elif self.loader == "wt1_saturation":
            frame = load_saturation_mutagenesis()
        elif self.loader == "splicevardb":
            frame = load_splicevardb(path, _expand(self.fasta), build=self.build, annotation=self.annotation)
        else:
            from meta_layer_cli.io.tables import read_table

            frame = read_table(path)
        return frame


def _expand(path: str | None) -> str | None:
    return None if path is None else os.path.expandvars(os.path.expanduser(path))


class VariantTrainingSection(StrictSection):
    epochs: int = Field(60, gt=0)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    patience: int = Field(8, gt=0)
    grad_clip: float = Field(1.0, gt=0)
    loss: Literal["huber", "mse"] = "huber"
    huber_delta: float = Field(1.0, gt=0)
    effect_weight: float = Field(1.0, ge=0)
    max_steps_per_epoch: int | None = Field(None, gt=0)
    progress: bool = False


class VariantHardwareSection(HardwareSection):
    """:class:`HardwareSection` with the variant models' default batch size (32 variants per step)."""

    batch_size: int = Field(32, gt=0, le=4096)


class VariantRunConfig(StrictSection):
    """Everything ``train-delta`` needs. Unknown keys are errors."""

    base_model: str = "spliceai"
    base_weights: str | None = None
    model: VariantModelName = "site_logit"
    train: list[DataSpec] = []
    evaluate: list[DataSpec] = []
    output_dir: str = "runs/variants"
    folds: int = Field(5, ge=2)
    validation: float = Field(0.15, gt=0, lt=1)  # fraction of training exons held out for early stopping
    window: int = Field(320, gt=0)
    delta_window: int = Field(50, ge=0)
    thresholds: dict[str, float] = {}
    cache: str | None = None
    seed: int = 0
    architecture: VariantArchitecture = VariantArchitecture()
    training: VariantTrainingSection = VariantTrainingSection()

    @field_validator("base_model")
    @classmethod
    def _known_base_model(cls, value: str) -> str:
        return check_base_model_names(value)

    hardware: VariantHardwareSection = VariantHardwareSection()

    @field_validator("thresholds")
    @classmethod
    def _kinds(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = [k for k in value if k not in TARGET_KINDS]
        if unknown:
            raise ValueError(f"unknown target kind(s) {unknown} (known: {', '.join(TARGET_KINDS)})")
        return value

    @model_validator(mode="after")
    def _architecture(self) -> VariantRunConfig:
        # the combination (model name x architecture) must build, e.g. calibration=temperature needs a classifier
        try:
            self.model_config_for(["neither", "acceptor", "donor"])
        except ValidationError as err:
            raise ValueError("architecture: " + "; ".join(e["msg"] for e in err.errors())) from None
        return self

    def model_config_for(self, channels: list[str]) -> VariantModelConfig:
        return VariantModelConfig(architecture=self.model, channels=channels, **self.architecture.model_dump())


def load_variant_config(
    path: str | os.PathLike | dict | VariantRunConfig | None = None,
    overrides: list[str] | dict | None = None,
    profile: str | os.PathLike | None = None,
) -> VariantRunConfig:
    """Read a YAML config, apply a hardware ``profile`` (``cpu``, ``m1``, ``gpu`` or a YAML file) and overrides
    (``["training.epochs=5", ...]`` or a dict of dotted keys)."""
    return load_yaml_config(VariantRunConfig, path, overrides, profile)
