"""The canonical run's config (``metalayer train-canonical``): YAML in ``configs/`` plus a hardware profile
and ``--set key=value`` overrides, strictly validated (see :mod:`meta_layer_cli.runtime.config`)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, field_validator, model_validator

from meta_layer_cli.models.meta import MetaModelConfig
from meta_layer_cli.runtime.config import HardwareSection, StrictSection, load_yaml_config
from meta_layer_cli.runtime.errors import UsageError


def check_base_model_names(value: str | list[str] | None) -> str | list[str] | None:
    """A config's ``base_model`` (one name or a list): every name a base model metalayer knows."""
    from meta_layer_cli.base_models import BASE_MODELS

    for name in [value] if isinstance(value, str) else value or []:
        if name not in BASE_MODELS:
            raise ValueError(f"unknown base model {name!r} (choose from {', '.join(BASE_MODELS)})")
    return value


# SpliceAI's held-out chromosomes; matched with or without "chr"
SPLICEAI_TEST_CHROMOSOMES = ["1", "3", "5", "7", "9"]


class SplitSection(StrictSection):
    """How genes are split (:mod:`meta_layer_cli.training.splits`). ``method: auto`` splits by chromosome
    when the genes come from a genome (``test_chromosomes``, SpliceAI's 1, 3, 5, 7, 9 by default, matched
    with or without ``chr`` and against the chromosome a FASTA header names: ``NC_000001.11`` is 1) and by
    gene otherwise (the demo set lies on chr1 and chr3 only); ``gene`` holds out a ``test`` fraction of
    single genes, ``block`` a ``test`` fraction in blocks of neighbouring genes (any assembly: one
    chromosome, accessions, scaffolds). Validation genes always come from the training side."""

    method: Literal["auto", "chromosome", "gene", "block"] = "auto"
    seed: int = 0
    validation: float = Field(0.1, ge=0, lt=1)
    test: float = Field(0.2, gt=0, lt=1)  # gene and block splits: fraction of genes held out
    test_chromosomes: list[str] = Field(default_factory=lambda: list(SPLICEAI_TEST_CHROMOSOMES), min_length=1)


class TrainingSection(StrictSection):
    epochs: int = Field(30, gt=0, le=10_000)
    lr: float = Field(2e-3, gt=0, le=10)
    weight_decay: float = Field(0.01, ge=0, le=10)
    warmup_steps: int = Field(50, ge=0, le=10_000_000)
    chunk: int = Field(2000, gt=0, le=1_000_000)
    chunks_per_epoch: int = Field(400, gt=0, le=100_000_000)
    validation_chunks: int = Field(300, gt=0, le=10_000_000)
    random_fraction: float = Field(0.3, ge=0, le=1)
    candidate_threshold: float = Field(0.01, gt=0, lt=1)
    patience: int = Field(5, gt=0, le=10_000)
    max_minutes: float | None = Field(None, gt=0, le=1e6)
    grad_clip: float = Field(1.0, gt=0, le=1e6)
    normalizer_chunks: int = Field(64, gt=0, le=1_000_000)
    seed: int = 0
    progress: bool = True


class RunConfig(StrictSection):
    """Everything a canonical training run needs. Unknown keys are errors.

    Data: ``data`` names prepared tracks folders (``metalayer prepare``; one per base model when
    several are stacked), or ``dataset: demo`` uses the built-in genes (tracks cached in
    ``tracks_cache``). ``base_model``/``base_weights``/``flank``/``models_dir`` name the base
    model(s); with ``data`` they must match what the folders were prepared with.
    """

    base_model: str | list[str] | None = None  # None: from the prepared data, else spliceai (demo)
    base_weights: str | list[str | None] | None = None
    flank: int | None = Field(None, gt=0, le=100_000)
    models_dir: str | None = None
    data: list[str] | None = None
    dataset: Literal["demo"] | None = "demo"
    genes: list[str] | None = None
    max_genes: int | None = Field(None, gt=0)
    train_genes: list[str] | None = None
    test_genes: list[str] | None = None
    tracks_cache: str | None = None
    output_dir: str = "runs/canonical"
    hardware: HardwareSection = HardwareSection()
    split: SplitSection = SplitSection()
    model: MetaModelConfig = MetaModelConfig()
    # fit a gene-structure decoder on the validation genes and apply it to whole genes
    structure: bool = True
    training: TrainingSection = TrainingSection()

    @field_validator("base_model")
    @classmethod
    def _known_base_models(cls, value: str | list[str] | None) -> str | list[str] | None:
        return check_base_model_names(value)

    @model_validator(mode="after")
    def _odd_kernel(self) -> RunConfig:
        # checked here, with the other config errors, not when the first layer is built after the data is loaded
        if self.model.kernel % 2 == 0:
            raise ValueError(f"model.kernel must be odd (a centred convolution), got {self.model.kernel}")
        return self

    @model_validator(mode="after")
    def _one_data_source(self) -> RunConfig:
        if self.data is not None and self.dataset is not None:
            self.__dict__["dataset"] = None  # prepared data given: the built-in set is not used
        if self.data is None and self.dataset is None:
            raise ValueError("give data: [PREPARED_FOLDER, ...] or dataset: demo")
        return self

    def base_models(self) -> list[tuple[str, str | None]]:
        """(name, weights) of each base model; ``spliceai`` when none is named."""
        base = self.base_model if self.base_model is not None else "spliceai"
        names = [base] if isinstance(base, str) else list(base)
        weights = self.base_weights if isinstance(self.base_weights, list) else [self.base_weights] * len(names)
        if len(weights) != len(names):
            raise UsageError(f"base_weights has {len(weights)} entries for {len(names)} base models")
        return list(zip(names, weights))


def load_run_config(
    path: str | os.PathLike | dict | RunConfig | None = None,
    overrides: list[str] | dict | None = None,
    profile: str | os.PathLike | None = None,
) -> RunConfig:
    """The canonical run's config (see :func:`meta_layer_cli.runtime.config.load_yaml_config`)."""
    return load_yaml_config(RunConfig, path, overrides, profile)
