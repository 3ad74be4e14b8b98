"""The gene store: per-gene arrays memory-mapped from files derived once from a tracks folder's parquet files."""

import mmap
import os
import time

import numpy as np
import pytest

from meta_layer_cli.artifacts import gene_lengths, load_gene_arrays, read_gene_track
from meta_layer_cli.artifacts.arrays import ARRAYS_DIR, GeneArrays, StoredGeneArrays, in_memory, store_dir
from meta_layer_cli.artifacts.tracks import gene_track_path
from meta_layer_cli.io.sequence import sequence_to_codes
from tests.conftest import SMALL_DEMO_GENES


def test_stored_arrays_equal_the_parquet_tracks(osai80_tracks):
    channels, genes = load_gene_arrays(osai80_tracks, SMALL_DEMO_GENES)
    assert channels == ["neither", "acceptor", "donor"]
    for g in genes:
        assert isinstance(g, StoredGeneArrays) and isinstance(g, GeneArrays)
        frame = read_gene_track(osai80_tracks, g.gene_id)
        assert len(g) == len(frame)
        np.testing.assert_array_equal(g.codes, sequence_to_codes("".join(frame["base"].cast(str).to_list())))
        np.testing.assert_array_equal(g.labels, frame["label"].to_numpy())
        np.testing.assert_array_equal(g.tracks, frame.select(channels).to_numpy().T)
        assert g.tracks.dtype == np.float32 and g.tracks.shape == (3, len(g))
        np.testing.assert_array_equal(g.tracks_slice(5, 50), g.tracks[:, 5:50])
        # memory-mapped, not loaded: the arrays are views of the file
        base = g.tracks
        while isinstance(base, (np.ndarray, memoryview)):
            base = base.obj if isinstance(base, memoryview) else base.base
        assert isinstance(base, mmap.mmap)
    copy = in_memory(genes[0])
    assert type(copy) is GeneArrays and np.array_equal(copy.tracks, genes[0].tracks)


def test_stacked_folders_concatenate_channels(osai80_tracks):
    channels, genes = load_gene_arrays([osai80_tracks, osai80_tracks], SMALL_DEMO_GENES[:2])
    assert len(channels) == 6
    g = genes[0]
    assert g.tracks.shape == (6, len(g))
    np.testing.assert_array_equal(g.tracks[3:], g.tracks[:3])
    np.testing.assert_array_equal(g.tracks_slice(10, 20), g.tracks[:, 10:20])


def test_the_store_is_converted_once_and_again_when_a_gene_is_rewritten(osai80_tracks, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(osai80_tracks, folder, ignore=shutil.ignore_patterns(ARRAYS_DIR))
    gene = SMALL_DEMO_GENES[0]
    _, (first,) = load_gene_arrays(folder, [gene])
    path = first.parts[0].path
    assert path.parent == folder / ARRAYS_DIR and path.is_file()
    made = path.stat().st_mtime_ns
    _, (again,) = load_gene_arrays(folder, [gene])
    assert again.parts[0].path == path and path.stat().st_mtime_ns == made  # not converted twice
    # prepare --overwrite rewrote the gene: its arrays are converted again, the stale file removed
    parquet = gene_track_path(folder, gene)
    frame = read_gene_track(folder, gene)
    frame.with_columns(frame["acceptor"] * 0.5).write_parquet(parquet)
    os.utime(parquet, ns=(time.time_ns(), time.time_ns() + 10**9))
    _, (rewritten,) = load_gene_arrays(folder, [gene])
    assert rewritten.parts[0].path != path and not path.exists()
    np.testing.assert_allclose(rewritten.tracks[1], frame["acceptor"].to_numpy() * 0.5, rtol=1e-6)


def test_a_read_only_folder_keeps_its_arrays_in_the_cache(osai80_tracks, tmp_path, monkeypatch):
    import json
    import shutil

    from meta_layer_cli.artifacts import arrays

    folder = tmp_path / "ro"
    shutil.copytree(osai80_tracks, folder, ignore=shutil.ignore_patterns(ARRAYS_DIR))
    monkeypatch.setenv("METALAYER_CACHE", str(tmp_path / "cache"))
    # (tests may run as root, who can write anywhere: the folder is made read-only for the store alone)
    monkeypatch.setattr(arrays.os, "access", lambda path, mode: not str(path).startswith(str(folder)))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert store_dir(folder, manifest).is_relative_to(tmp_path / "cache")
    _, (g,) = load_gene_arrays(folder, SMALL_DEMO_GENES[:1])
    assert g.parts[0].path.is_relative_to(tmp_path / "cache") and len(g.codes) == len(g)
    assert not (folder / ARRAYS_DIR).exists()


def test_stored_genes_hold_numbers_not_objects(osai80_tracks):
    """A run's genes are a sequence that makes each gene's handle when it is read (ids and two numbers a gene are
    held): the same arrays by index, slice and iteration, and the lengths without opening a file."""
    _, genes = load_gene_arrays(osai80_tracks, SMALL_DEMO_GENES)
    assert not isinstance(genes, list) and len(genes) == len(SMALL_DEMO_GENES)
    assert [g.gene_id for g in genes] == list(SMALL_DEMO_GENES) == [g.gene_id for g in genes[:]]
    assert genes.lengths.tolist() == [len(read_gene_track(osai80_tracks, g)) for g in SMALL_DEMO_GENES]
    assert gene_lengths(genes).tolist() == gene_lengths(list(genes)).tolist() == genes.lengths.tolist()
    with pytest.raises(ValueError, match="read-only"):  # the store's own array: no caller may change it
        genes.lengths[0] = 1
    assert genes[-1].gene_id == SMALL_DEMO_GENES[-1] and genes[1] is not genes[1]
    np.testing.assert_array_equal(genes[1].labels, read_gene_track(osai80_tracks, SMALL_DEMO_GENES[1])["label"])


def test_planned_lengths_follow_the_asked_order():
    """Each asked gene's planned length, in the asked order (repeats kept), -1 for a gene the manifest lacks or
    gives no length."""
    from meta_layer_cli.artifacts.arrays import planned_lengths
    from meta_layer_cli.artifacts.tracks import GeneTable

    planned = GeneTable([{"gene_id": "b", "length": 20}, {"gene_id": "a", "length": 10}, {"gene_id": "c"}])
    assert planned_lengths(planned, ["a", "x", "b", "a", "c"]).tolist() == [10, -1, 20, 10, -1]
    assert planned_lengths(planned, []).tolist() == []
