"""The canonical checkpoint's contract: one reader (`CanonicalCheckpoint`), a format version, one-line refusals."""

import json

import pytest

from meta_layer_cli.base_models.record import BaseModelRecord
from meta_layer_cli.models import MetaModelConfig, build_meta_model
from meta_layer_cli.models.checkpoint import (
    CONFIG,
    FORMAT,
    FORMAT_VERSION,
    SPLIT_TABLE,
    CanonicalCheckpoint,
    copy_checkpoint,
    read_checkpoint_config,
    save_model,
    write_split_table,
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


def _with_split_table(tmp_path):
    """A format-2 checkpoint: the split and loci in ``split.parquet``; chr1 genes, one without coordinates."""
    from meta_layer_cli.jobs.canonical import gene_places, gene_table

    model = build_meta_model(MetaModelConfig(channels=CHANNELS, **TINY_MODEL))
    directory = tmp_path / "ckpt"
    directory.mkdir()
    split = {"train": ["a", "d"], "validation": ["b"], "test": ["c"]}
    genes = gene_table(
        {
            "gene_id": ["a", "b", "c", "d", "unused"],
            "chrom": ["chr1", "chr1", "chr1", None, "chr2"],
            "strand": ["+", "-", "+", None, "+"],
            "start": [100, 5000, 9000, None, 7],
            "end": [900, 6000, 9500, None, 70],
        }
    )
    entries = write_split_table(directory, split, gene_places(genes), "GRCh38")
    return save_model(directory, model, {"run": {**RUN, **entries}}), split


def test_the_split_and_loci_are_a_table_beside_config_json(tmp_path):
    """Was: every gene id and locus as JSON lists in config.json (~600 bytes a gene parsed by every step)."""
    directory, split = _with_split_table(tmp_path)
    text = (directory / CONFIG).read_text()
    assert '"a"' not in text and '"chr1"' not in text and SPLIT_TABLE in text
    stored = CanonicalCheckpoint.read(directory)
    assert stored.split == split
    # the training and validation genes with coordinates, chr stripped as gene_locus strips it; test genes are
    # not "seen"
    assert stored.seen_loci == ("GRCh38", [("1", "+", 100, 900), ("1", "-", 5000, 6000)])
    copy_checkpoint(directory, tmp_path / "copy")
    assert CanonicalCheckpoint.read(tmp_path / "copy").split == split


def test_a_split_table_that_is_missing_or_not_the_recorded_one_is_refused(tmp_path):
    import polars as pl

    directory, _ = _with_split_table(tmp_path)
    table = pl.read_parquet(directory / SPLIT_TABLE)
    table.with_columns(pl.col("part").cast(pl.Utf8).str.replace("test", "train")).write_parquet(directory / SPLIT_TABLE)
    with pytest.raises(InputDataError, match="not the split table config.json names") as err:
        _ = CanonicalCheckpoint.read(directory).split
    assert "\n" not in str(err.value)
    (directory / SPLIT_TABLE).unlink()
    with pytest.raises(InputDataError, match="split table split.parquet is missing"):
        _ = CanonicalCheckpoint.read(directory).seen_loci


def test_a_format_one_checkpoint_with_inline_lists_still_reads(tmp_path):
    seen = [["1", "+", 100, 900]]
    directory = _saved(tmp_path, {"run": {**RUN, "loci": {"genome_build": "GRCh37", "seen": seen}}})
    config = json.loads((directory / CONFIG).read_text())
    (directory / CONFIG).write_text(json.dumps({**config, "format_version": 1}))
    stored = CanonicalCheckpoint.read(directory)
    assert stored.split == RUN["split"] and stored.seen_loci == ("GRCh37", [("1", "+", 100, 900)])
    assert CanonicalCheckpoint.read(_saved(tmp_path / "old", {"run": RUN})).seen_loci is None
