"""Checkpoints: ``model.safetensors`` + ``config.json`` in a directory. No pickle anywhere.

``config.json`` holds ``format``/``format_version`` (a checkpoint of a newer format is refused in one line),
the architecture (``model``) and, for a meta-layer (canonical) checkpoint, what :class:`CanonicalCheckpoint`
reads: the one place that knows its fields.

A canonical checkpoint's gene split and the loci of its genes are a table beside it (``split.parquet``, format
2; :func:`write_split_table`): a whole genome's 20,000-100,000 gene ids and loci as JSON lists were ~600 bytes a
gene parsed in every step that read the checkpoint. ``config.json`` names the table and its checksum; format-1
checkpoints hold the lists inline and are read as before.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError
from safetensors.torch import load_file, save_file
from torch import nn

from meta_layer_cli.base_models.record import BaseModelRecord
from meta_layer_cli.io.atomic import atomic_path, write_json_atomic
from meta_layer_cli.models.meta import MetaModelConfig, build_meta_model
from meta_layer_cli.runtime.config import format_validation_error
from meta_layer_cli.runtime.device import resolve_device
from meta_layer_cli.runtime.errors import InputDataError
from meta_layer_cli.runtime.fingerprint import file_checksum

if TYPE_CHECKING:
    import polars as pl

    from meta_layer_cli.runtime.device import DeviceLike

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
SPLIT_TABLE = "split.parquet"  # a canonical checkpoint's genes: split part and locus (format 2)
# in a checkpoint folder while a job writes it (calibrate): a folder holding it is refused, so a writer stopped
# before its end (even by SIGKILL) leaves nothing that loads
UNFINISHED = ".unfinished"
FORMAT = "metalayer-checkpoint"
FORMAT_VERSION = 2  # raise when a reader of this version could not read what a writer writes (2: SPLIT_TABLE)
RUN_FIELDS = ("base_models", "channels")  # what every canonical checkpoint's run section holds
PARTS = ("train", "validation", "test")
LOCUS_COLUMNS = ("contig", "strand", "start", "end")  # a gene's place: contig without chr, strand, 0-based, end


def save_model(directory: str | os.PathLike, model: nn.Module, extra: dict | None = None) -> Path:
    """Write weights and architecture (plus ``extra`` JSON, e.g. thresholds) atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(directory / WEIGHTS) as tmp:
        save_file(state, str(tmp))
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model.config.to_dict()}
    write_json_atomic(directory / CONFIG, {**header, **(extra or {})})
    return directory


def read_checkpoint_config(directory: str | os.PathLike, unfinished: bool = False) -> dict:
    """``config.json``, checked; a checkpoint still being written is refused unless ``unfinished`` (its writer)."""
    path = Path(directory) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"not a metalayer checkpoint: {path} is missing")
    if not unfinished and (Path(directory) / UNFINISHED).exists():
        raise InputDataError(
            f"{directory}: an unfinished checkpoint (the job writing it was stopped before its end); run it again"
        )
    with open(path, "rb") as fh:
        try:
            config = json.loads(fh.read())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise InputDataError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise InputDataError(f"{path}: expected a JSON object, found {type(config).__name__}")
    version = config.get("format_version", FORMAT_VERSION)  # checkpoints before versioning are version 1
    if config.get("format", FORMAT) != FORMAT or not isinstance(version, int) or version > FORMAT_VERSION:
        raise InputDataError(
            f"{path}: a checkpoint of format {config.get('format')} {version!r}; this metalayer reads "
            f"{FORMAT} up to {FORMAT_VERSION} (written by a newer metalayer? upgrade it)"
        )
    check_checkpoint_numbers(config, path)
    return config


@dataclass(frozen=True)
class CanonicalCheckpoint:
    """A meta-layer checkpoint's contract (``metalayer train-canonical`` / ``calibrate``): which base models
    made the tracks it reads (:class:`~meta_layer_cli.base_models.record.BaseModelRecord`, no paths that
    matter), its channels, split, data description and thresholds. Read through :meth:`read`, which refuses
    a variant-model checkpoint or one without this information in one line."""

    path: Path
    config: dict

    @classmethod
    def read(cls, directory: str | os.PathLike, config: dict | None = None) -> CanonicalCheckpoint:
        """``config``: the checkpoint's ``config.json`` if already read (or about to be written)."""
        config = read_checkpoint_config(directory) if config is None else config
        if config.get("kind") == "variant_model":
            raise InputDataError(
                f"{directory} is a variant-model checkpoint (`metalayer train-delta`), not a meta-layer one "
                "(`metalayer train-canonical`)"
            )
        run = config.get("run")
        if not isinstance(run, dict) or not run:
            raise InputDataError(
                f"{directory}: not a canonical checkpoint (no run information; written by "
                "`metalayer train-canonical` or `metalayer calibrate`?)"
            )
        missing = [k for k in RUN_FIELDS if k not in run]
        if missing or not isinstance(run["base_models"], list):
            raise InputDataError(
                f"{directory}: its run information lacks {', '.join(missing) or 'a list of base models'} "
                "(damaged, or not written by `metalayer train-canonical`)"
            )
        return cls(Path(directory), config)

    @property
    def run(self) -> dict:
        return self.config["run"]

    @property
    def base_records(self) -> list[BaseModelRecord]:
        """The base models whose tracks the model reads, in channel order."""
        return [BaseModelRecord.from_dict(r) for r in self.run["base_models"]]

    def single_base_record(self, why: str) -> BaseModelRecord:
        """The one base model of a checkpoint used where only one can run (``why`` says where)."""
        records = self.base_records
        if len(records) != 1:
            raise InputDataError(
                f"{self.path} was trained on {len(records)} stacked base models; {why}, so its meta layer must "
                "have been trained on that model alone"
            )
        return records[0]

    @property
    def channels(self) -> list[str]:
        return list(self.run["channels"])

    @cached_property
    def split(self) -> dict[str, list[str]]:
        """``train``/``validation``/``test`` gene ids (a checkpoint not written by a training run has none)."""
        split = self.run.get("split")
        if isinstance(split, dict) and "table" in split:
            table = self._split_table
            return {part: table.filter(table["part"] == part)["gene_id"].to_list() for part in PARTS}
        if not isinstance(split, dict) or any(k not in split for k in PARTS):
            raise InputDataError(f"{self.path}: holds no train/validation/test split (not written by train-canonical)")
        return split

    @cached_property
    def seen_loci(self) -> tuple[str | None, list[tuple[str, str, int, int]]] | None:
        """(genome build, loci ``(contig, strand, start, end)`` of the training and validation genes), or None
        when the checkpoint records none (made before loci were recorded)."""
        recorded = self.run.get("loci")
        if not isinstance(recorded, dict) or not ("seen" in recorded or "table" in recorded):
            return None
        if "seen" in recorded:  # format 1: inline lists
            return recorded.get("genome_build"), [tuple(locus) for locus in recorded["seen"]]
        import polars as pl

        table = self._split_table.filter(pl.col("part").is_in(["train", "validation"]) & pl.col("contig").is_not_null())
        return recorded.get("genome_build"), list(table.select(LOCUS_COLUMNS).iter_rows())

    @cached_property
    def _split_table(self) -> pl.DataFrame:
        import polars as pl

        entry = self.run["split"]
        path = self.path / str(entry.get("table"))
        if not path.is_file():
            raise InputDataError(f"{self.path}: its split table {path.name} is missing (copy the whole folder)")
        found = file_checksum(path)
        if found != entry.get("checksum"):
            raise InputDataError(
                f"{path}: not the split table config.json names (checksum {found}, recorded "
                f"{entry.get('checksum')}); the folder mixes two checkpoints"
            )
        try:
            table = pl.read_parquet(path)
        except Exception as err:  # polars raises its own error types for damaged files
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise InputDataError(f"{path}: not a readable split table ({first})") from None
        if not {"gene_id", "part", *LOCUS_COLUMNS} <= set(table.columns):
            raise InputDataError(f"{path}: not a split table (columns {', '.join(table.columns)})")
        return table

    @property
    def trained_on(self) -> dict:
        """What the training data was (``dataset``, ``source`` fingerprint, genes checksum): no paths."""
        return self.run.get("data") or {}

    @property
    def calibration(self) -> dict | None:
        return self.config.get("calibration") or None


def _number(
    value,
    where: str,
    path,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    integer: bool = False,
) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (not integer or float(value).is_integer())
    ok = ok and (low is None or (value > low if low_open else value >= low)) and (high is None or value <= high)
    if not ok:
        bound = f"{'>' if low_open else '>='} {low}" if low is not None else ""
        bound += (" and " if bound and high is not None else "") + (f"<= {high}" if high is not None else "")
        raise InputDataError(
            f"{path}: {where} is {value!r}, expected {'an integer' if integer else 'a number'}"
            f"{' ' + bound if bound else ''}"
        )


def check_checkpoint_numbers(config: dict, path) -> None:
    """The numbers a canonical checkpoint is applied with, checked before use: thresholds are probabilities,
    temperatures positive, the gene-structure decoder's sizes positive integers, calibration maps probabilities;
    none NaN or infinite. (The architecture is checked by its schema when the model is built.)"""
    if config.get("kind") == "variant_model":
        return  # a variant model's thresholds are effect sizes, its calibration other maps (checked where read)
    run = config.get("run")
    if isinstance(run, dict):
        for name, per_class in (run.get("thresholds") or {}).items():
            for cls, value in (per_class or {}).items() if isinstance(per_class, dict) else [("?", per_class)]:
                _number(value, f"run.thresholds.{name}.{cls}", path, 0, 1)
        for i, value in enumerate(run.get("temperatures") or []):
            _number(value, f"run.temperatures[{i}]", path, 0, low_open=True)
    structure = config.get("structure")
    if isinstance(structure, dict):
        for key in ("min_exon", "min_intron", "max_exon"):
            if key in structure:
                _number(structure[key], f"structure.{key}", path, 1, integer=True)
        if "threshold" in structure:
            _number(structure["threshold"], "structure.threshold", path, 0, 1, low_open=True)
        for key in ("scale_acceptor", "bias_acceptor", "scale_donor", "bias_donor", "coding_reward", "start_weight"):
            if key in structure:
                _number(structure[key], f"structure.{key}", path)
        if "coding_reward" in structure:
            _number(structure["coding_reward"], "structure.coding_reward", path, 0)
    calibration = config.get("calibration")
    if isinstance(calibration, dict) and isinstance(calibration.get("maps"), dict):
        for site, fitted in calibration["maps"].items():
            if not isinstance(fitted, dict):
                raise InputDataError(f"{path}: calibration.maps.{site} is not a calibration map")
            if "temperature" in fitted:
                _number(fitted["temperature"], f"calibration.maps.{site}.temperature", path, 0, low_open=True)
            for axis in ("x", "y"):
                values = fitted.get(axis, [])
                if not isinstance(values, list):
                    raise InputDataError(f"{path}: calibration.maps.{site}.{axis} is not a list of numbers")
                for i, value in enumerate(values):
                    _number(value, f"calibration.maps.{site}.{axis}[{i}]", path, 0, 1)


def write_split_table(
    directory: str | os.PathLike,
    split: Mapping[str, Sequence[str]],
    places: Iterable[tuple[str, str, str, int, int]] = (),
    genome_build: str | None = None,
) -> dict:
    """Write a canonical checkpoint's split (``train``/``validation``/``test`` gene ids) and its genes' loci
    (``places``: ``(gene_id, *locus)``, the locus as ``training.splits.gene_locus`` gives it; genes without one
    get none) to ``directory/split.parquet``; returns the run entries that name it (``split``, ``loci``), for
    ``config.json``."""
    import polars as pl

    parts = pl.DataFrame(
        {
            "gene_id": [g for part in PARTS for g in split[part]],
            "part": pl.Series([part for part in PARTS for _ in split[part]], dtype=pl.Categorical),
        }
    )
    schema = dict(zip(("gene_id", *LOCUS_COLUMNS), (pl.Utf8, pl.Utf8, pl.Utf8, pl.Int64, pl.Int64)))
    known = pl.DataFrame(list(places), schema=schema, orient="row")
    # joined in the split's order (a join need not keep it)
    table = parts.with_row_index("row").join(known, on="gene_id", how="left").sort("row").drop("row")
    path = Path(directory) / SPLIT_TABLE
    with atomic_path(path) as tmp:
        table.write_parquet(tmp, compression="zstd")
    entry = {"table": SPLIT_TABLE, "checksum": file_checksum(path), **{part: len(split[part]) for part in PARTS}}
    return {"split": entry, "loci": {"genome_build": genome_build, "table": SPLIT_TABLE}}


def copy_checkpoint(source: str | os.PathLike, out: str | os.PathLike) -> None:
    """Copy a checkpoint's files (weights, config, split table where there is one) into ``out``."""
    Path(out).mkdir(parents=True, exist_ok=True)
    for name in (WEIGHTS, CONFIG, SPLIT_TABLE):
        if (Path(source) / name).is_file():
            shutil.copy2(Path(source) / name, Path(out) / name)


def update_checkpoint_config(directory: str | os.PathLike, entries: dict, drop: tuple[str, ...] = ()) -> None:
    """Add/replace top-level ``config.json`` entries (``drop``: remove keys); the weights stay as they are."""
    config = {k: v for k, v in read_checkpoint_config(directory, unfinished=True).items() if k not in drop}
    if "model" in entries:
        raise ValueError("the architecture of a saved model cannot be changed")
    write_json_atomic(Path(directory) / CONFIG, {**config, **entries})


def read_weights(directory: str | os.PathLike) -> dict:
    """The state dict in ``model.safetensors`` (safetensors: tensors only, nothing unpickled)."""
    path = Path(directory) / WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"not a metalayer checkpoint: {path} is missing")
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error type for damaged files
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise InputDataError(f"{path}: not a readable safetensors file ({first})") from None


def load_model(directory: str | os.PathLike, device: DeviceLike = None) -> tuple[nn.Module, dict]:
    """Rebuild a model from a checkpoint directory; returns (model, the whole config.json)."""
    config = read_checkpoint_config(directory)
    config_path = Path(directory) / CONFIG
    if not isinstance(config.get("model"), dict):
        raise InputDataError(f"{config_path}: no 'model' entry (the architecture)")
    model_config = dict(config["model"])
    model_config["hyena_weights"] = None  # the trained weights below already include them
    if not model_config.get("trust_remote_code"):
        model_config["pretrained_model"] = None  # rebuilt from the stored pretrained_config instead
    weights = read_weights(directory)
    try:
        architecture = MetaModelConfig(**model_config)
    except ValidationError as err:  # sizes are checked here, before anything is allocated
        message = format_validation_error(err)
        raise InputDataError(f"{config_path}: invalid model (model.{message})") from None
    model = build_meta_model(architecture)
    check_weights_fit(model, weights, f"{Path(directory) / WEIGHTS} does not match {config_path}")
    model.load_state_dict(weights)
    return model.to(resolve_device(device)).eval(), config


def check_weights_fit(model: nn.Module, weights: dict, what: str) -> None:
    """A one-line ValueError naming missing, unexpected and wrongly shaped tensors, if any."""
    expected = model.state_dict()
    problems = []
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    shapes = [
        f"{k} {tuple(weights[k].shape)} (config: {tuple(expected[k].shape)})"
        for k in expected
        if k in weights and weights[k].shape != expected[k].shape
    ]
    for label, keys in (("missing tensors", missing), ("unexpected tensors", unexpected), ("wrong shapes", shapes)):
        if keys:
            more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
            problems.append(f"{label}: {', '.join(keys[:3])}{more}")
    if problems:
        raise InputDataError(f"{what}: {'; '.join(problems)}")
