"""The canonical checkpoint's contract: one reader (`CanonicalCheckpoint`), a format version, one-line refusals."""

import json

import pytest

from meta_layer_cli.base_models.record import BaseModelRecord
from meta_layer_cli.models import MetaModelConfig, build_meta_model
from meta_layer_cli.models.checkpoint import (
    CONFIG,
    FORMAT,
    FORMAT_VERSION,
    CanonicalCheckpoint,
    read_checkpoint_config,
    save_model,
)
from meta_layer_cli.runtime.errors import InputDataError
from tests.conftest import TINY_MODEL

CHANNELS = ["osai_neither", "osai_acceptor", "osai_donor"]
RECORD = {"name": "openspliceai", "weights_checksum": "abc", "context": 40, "channels": CHANNELS, "flank": 80}
RUN = {"base_models": [RECORD], "channels": CHANNELS, "split": {"train": ["a"], "validation": ["b"], "test": ["c"]}}


def _saved(tmp_path, extra):
    model = build_meta_model(MetaModelConfig(channels=CHANNELS, **TINY_MODEL))
    return save_model(tmp_path / "ckpt", model, extra)


def test_a_saved_checkpoint_states_its_format_and_reads_back_its_run(tmp_path):
    directory = _saved(tmp_path, {"run": RUN})
    config = read_checkpoint_config(directory)
    assert (config["format"], config["format_version"]) == (FORMAT, FORMAT_VERSION)
    stored = CanonicalCheckpoint.read(directory)
    assert stored.channels == CHANNELS and stored.split == RUN["split"]
    assert stored.base_records == [BaseModelRecord.from_dict(RECORD)]
    assert stored.single_base_record("here one runs") == BaseModelRecord.from_dict(RECORD)


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"kind": "variant_model", "run": RUN}, "is a variant-model checkpoint"),
        ({}, "not a canonical checkpoint"),
        ({"run": {"split": RUN["split"]}}, "lacks base_models, channels"),
        ({"run": {**RUN, "base_models": "osai"}}, "lacks a list of base models"),
    ],
)
def test_what_is_not_a_canonical_checkpoint_is_refused_in_one_line(tmp_path, extra, message):
    directory = _saved(tmp_path, extra)
    with pytest.raises(InputDataError, match=message) as err:
        CanonicalCheckpoint.read(directory)
    assert "\n" not in str(err.value)


def test_a_newer_format_is_refused_and_an_unversioned_one_is_version_one(tmp_path):
    directory = _saved(tmp_path, {"run": RUN})
    config = json.loads((directory / CONFIG).read_text())
    (directory / CONFIG).write_text(json.dumps({**config, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(InputDataError, match="written by a newer metalayer"):
        read_checkpoint_config(directory)
    unversioned = {k: v for k, v in config.items() if k not in ("format", "format_version")}
    (directory / CONFIG).write_text(json.dumps(unversioned))
    assert CanonicalCheckpoint.read(directory).channels == CHANNELS


def test_a_checkpoint_without_a_split_says_so_when_one_is_needed(tmp_path):
    directory = _saved(tmp_path, {"run": {k: v for k, v in RUN.items() if k != "split"}})
    with pytest.raises(InputDataError, match="holds no train/validation/test split"):
        _ = CanonicalCheckpoint.read(directory).split


def test_stacked_base_models_are_refused_where_one_runs(tmp_path):
    second = {**RECORD, "name": "spliceai", "weights_checksum": "def"}
    directory = _saved(tmp_path, {"run": {**RUN, "base_models": [RECORD, second]}})
    with pytest.raises(InputDataError, match="trained on 2 stacked base models; score-vcf runs one"):
        CanonicalCheckpoint.read(directory).single_base_record("score-vcf runs one base model")
