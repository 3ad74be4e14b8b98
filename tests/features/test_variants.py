"""Variant datasets from real Vex-seq / MaPSy / WT1 rows with OpenSpliceAI-80nt tracks."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from meta_layer_cli.artifacts.cache import MemoryCache
from meta_layer_cli.artifacts.sequences import score_sequences
from meta_layer_cli.features.variants import (
    EFFECT_TYPES,
    TARGET_KINDS,
    VariantDataset,
    aligned_alt_codes,
    build_variant_dataset,
    effect_type_labels,
    realign_shifted_indel,
)
from tests.variant_helpers import small_vexseq


def test_aligned_alt_codes():
    ref = np.array([0, 1, 2, 3, 0, 1], np.uint8)
    np.testing.assert_array_equal(
        aligned_alt_codes(ref, np.array([0, 1, 3, 3, 0, 1], np.uint8), 2, 3), [0, 1, 3, 3, 0, 1]
    )
    # deletion of ref[2:4]: N there
    np.testing.assert_array_equal(aligned_alt_codes(ref, np.array([0, 1, 0, 1], np.uint8), 2, 2), [0, 1, 4, 4, 0, 1])
    # insertion after ref[1]: inserted bases dropped
    np.testing.assert_array_equal(aligned_alt_codes(ref, np.array([0, 1, 0, 0, 2, 3, 0, 1], np.uint8), 2, 4), ref)


def test_dataset_layout_on_real_vexseq(vexseq_dataset, osai80):
    ds: VariantDataset = vexseq_dataset
    n, window = len(ds), ds.window
    assert (
        ds.ref_codes.shape == (n, window) and ds.ref_tracks.shape == (n, 3, window) and ds.mask.shape == (n, 2, window)
    )
    assert (
        ds.channels == ["neither", "acceptor", "donor"] and (ds.kind == TARGET_KINDS.index("delta_psi_percent")).all()
    )
    from meta_layer_cli.base_models.record import BaseModelRecord

    assert np.isfinite(ds.target).all() and ds.base_model == BaseModelRecord.of(osai80)
    assert ds.subset([0, 1]).base_model == ds.base_model and ds.base_model.name == "openspliceai"
    frame = small_vexseq(40)
    np.testing.assert_array_equal(ds.ref_psi, frame["ref_psi"].to_numpy())  # the logit_psi link reads it
    assert ds.batch([0, 1])["ref_psi"].shape == (2,)
    scored = score_sequences(frame, base_model=osai80)
    for i, row in enumerate(frame.iter_rows(named=True)):
        exon = np.flatnonzero(ds.mask[i, 0])
        assert len(exon) == row["exon_end"] - row["exon_start"]  # the whole exon is in the window
        start = exon[0] - row["exon_start"]  # window position of ref_seq[0]
        assert start >= 0 and start + len(row["ref_seq"]) <= window
        if realign_shifted_indel(row["ref_seq"], row["alt_seq"], row["exon_start"], row["exon_end"]):
            continue  # checked in test_realign_shifted_indels
        assert (ds.ref_codes[i, :start] == 4).all()  # N before the sequence (Vex-seq has no flanks)
        # tracks equal score_sequences' at the exon's acceptor and donor
        acc, don = exon[0], exon[-1]
        assert ds.ref_tracks[i, 1, acc] == pytest.approx(scored["ref_acceptor"][i], abs=1e-6)
        assert ds.alt_tracks[i, 2, don] - ds.ref_tracks[i, 2, don] == pytest.approx(scored["delta_donor"][i], abs=1e-6)
        # the dataset predicts the rows extended to its window: other packing, other float32 rounding (~1e-8)
        assert ds.base_deltas["delta_acceptor"][i] == pytest.approx(scored["delta_acceptor"][i], abs=1e-6)
        # the variant mask covers exactly the REF positions that differ
        if len(row["ref_seq"]) == len(row["alt_seq"]):
            differ = np.flatnonzero(ds.ref_codes[i] != ds.alt_codes[i])
            np.testing.assert_array_equal(differ, np.flatnonzero(ds.mask[i, 1]))
    labels = ds.labels()
    np.testing.assert_array_equal(labels, (np.abs(ds.target) >= 20).astype(float))
    sub = ds.subset(np.array([0, 2]))
    assert len(sub) == 2 and sub.ids.tolist() == [ds.ids[0], ds.ids[2]]
    batch = ds.batch([0, 1])
    assert batch["ref_seq"].shape == (2, 4, window) and batch["ref_seq"].sum(1).max() == 1
    both = VariantDataset.concat([sub, sub.subset([1])])
    assert len(both) == 3 and both.base_deltas["max_abs_delta"].shape == (3,)


def test_indels_mapsy_and_wt1_flanks(osai80, tmp_path):
    from meta_layer_cli.io.assays import load_mapsy, load_saturation_mutagenesis, load_vexseq
    from tests.variant_helpers import mapsy_path, vexseq_path

    vex = load_vexseq(vexseq_path())
    indels = vex.filter(pl.col("ref_seq").str.len_chars() != pl.col("alt_seq").str.len_chars()).head(4)
    mapsy = load_mapsy(mapsy_path()).head(6)
    wt1 = load_saturation_mutagenesis().head(4)
    cache = MemoryCache()
    ds = build_variant_dataset([indels, mapsy, wt1], osai80, window=256, cache=cache)
    assert len(ds) == 14 and set(ds.sources) == {"vexseq", "mapsy", "wt1_saturation"}
    assert ds.kind[4:].tolist() == [TARGET_KINDS.index("log2_ratio")] * 10
    for i, row in enumerate(indels.iter_rows(named=True)):
        deleted = len(row["ref_seq"]) - len(row["alt_seq"])
        if deleted > 0:  # deleted REF positions are N in ALT and flagged
            assert ((ds.alt_codes[i] == 4) & (ds.ref_codes[i] != 4)).sum() == deleted
        assert ds.mask[i, 1].sum() >= 1
    # WT1: the 90-nt rows get the minigene's real flanks, with real tracks, instead of N
    w = slice(10, 14)
    assert (ds.ref_codes[w] != 4).all()
    exon = np.flatnonzero(ds.mask[10, 0])
    assert len(exon) == 51  # the exon's splice sites are the tracks' peaks
    assert ds.ref_tracks[10, 1].argmax() == exon[0] and ds.ref_tracks[10, 2].argmax() == exon[-1]
    assert (ds.ref_tracks[10, 0, :20] > 0).all()  # real flank scored
    # nothing predicted twice: the track pass reads the score_sequences pass from memory
    assert cache.misses <= len(cache.store)


def test_effect_labels_and_plain_tables(osai80):
    frame = pl.DataFrame(
        {
            "target": [-30.0, 25.0, 5.0, None, 1.0, 0.0],
            "target_kind": ["delta_psi_percent"] * 3 + ["log2_ratio"] * 1 + ["splice_altering"] * 2,
        }
    )
    labels = effect_type_labels(frame)
    names = [EFFECT_TYPES[i] if i >= 0 else None for i in labels]
    assert names == ["exon_skipping", "complex", "normal", None, None, "normal"]
    with pytest.raises(ValueError, match="unknown effect_type"):
        effect_type_labels(frame.with_columns(pl.lit("intron_retention").alias("effect_type")))
    # a plain variant table (predict --variants) (no target / group / flanks)
    ref = "CTTCTTATTCCTACAGCTTCTAAGACCACGAGAGAAAAAGTTGGGACTAGGTAAGTCGTG"
    plain = pl.DataFrame(
        {
            "id": ["a", "b"],
            "ref_seq": [ref, ref],
            "alt_seq": [ref[:14] + "T" + ref[15:], ref],
            "exon_start": [16, None],
            "exon_end": [50, None],
        }
    )
    ds = build_variant_dataset(plain, osai80, window=128)
    assert np.isnan(ds.target).all() and ds.groups.tolist() == ["a", "b"] and ds.mask[1].sum() == 0
    with pytest.raises(ValueError, match="not unique"):
        build_variant_dataset([plain, plain], osai80)


def test_realign_shifted_indels_on_vexseq():
    """Vex-seq keeps the exon at offset 100 in REF_SEQ and ALT_SEQ: some indels are flank shifts."""
    from meta_layer_cli.artifacts.sequences import variant_span
    from meta_layer_cli.io.assays import load_vexseq
    from tests.variant_helpers import vexseq_path

    frame = load_vexseq(vexseq_path())
    # A flank shift is an indel (REF and ALT alleles of different length) stored as equal-length sequences;
    # these rows, and only these, must be realigned (31 in this file; the SNVs and the indels stored as indels
    # are left alone).
    shifted = {
        r["id"]
        for r in frame.iter_rows(named=True)
        if len(r["ref_allele"]) != len(r["alt_allele"]) and len(r["ref_seq"]) == len(r["alt_seq"])
    }
    assert shifted
    realigned = set()
    for r in frame.iter_rows(named=True):
        out = realign_shifted_indel(r["ref_seq"], r["alt_seq"], r["exon_start"], r["exon_end"])
        if out is None:
            continue
        realigned.add(r["id"])
        ref, alt, es, ee = out
        assert len(ref) - len(alt) == len(r["ref_allele"]) - len(r["alt_allele"])  # the allele's length change
        p, s = variant_span(ref, alt)
        assert len(ref) - s - p <= 5 and len(alt) - s - p <= 5  # a short indel now
        assert ref[es:ee] == r["ref_seq"][r["exon_start"] : r["exon_end"]]  # the same exon
    assert realigned == shifted
    # a real multi-nucleotide substitution or an SNV is left alone
    ref = "ACGTACGTTAGCCATGACGTAGGCTAGCTAGGATCGATCGATTTACG"
    assert realign_shifted_indel(ref, ref[:10] + "GGGG" + ref[14:], 0, 5) is None
    assert realign_shifted_indel(ref, ref[:10] + "T" + ref[11:], 0, 5) is None
    # a shift made by hand: deletion of ref[20:22] upstream of the exon, two new bases at the start
    alt = "CC" + ref[:20] + ref[22:]
    assert realign_shifted_indel(ref, alt, 30, 40) == ("CC" + ref, alt, 32, 42)
