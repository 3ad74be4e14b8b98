"""Variant data loaders on the real files: one table type, exons located, targets as documented."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import polars as pl
import pytest

from meta_layer_cli.io.archives import read_numpy_pickle
from meta_layer_cli.io.assays import (
    BASE_COLUMNS,
    load_mapsy,
    load_saturation_mutagenesis,
    load_splicevardb,
    load_vexseq,
    load_wt1_minigene,
)
from meta_layer_cli.io.sequence import reverse_complement
from tests.conftest import FIXTURES, shared_path


def check_common(frame: pl.DataFrame, source: str) -> None:
    assert frame.columns[: len(BASE_COLUMNS)] == list(BASE_COLUMNS)
    assert frame["id"].n_unique() == frame.height
    assert (frame["source"] == source).all()
    assert frame.schema["exon_start"] == pl.Int64 and frame.schema["target"] == pl.Float64
    ok = frame.filter(pl.col("exon_start").is_not_null())
    assert (ok["exon_start"] < ok["exon_end"]).all()
    assert (ok["exon_end"] <= ok["ref_seq"].str.len_chars()).all()
    assert frame["ref_seq"].str.contains("^[ACGTN]+$").all() and frame["alt_seq"].str.contains("^[ACGTN]+$").all()


def genomic_length(frame: pl.DataFrame) -> pl.Series:
    return frame["exon_end_genomic"] - frame["exon_start_genomic"] + 1


def splice_dinucleotides(frame: pl.DataFrame) -> tuple[float, float]:
    """Fraction of rows with AG before the exon and GT/GC after it."""
    rows = frame.filter(pl.col("exon_start") >= 2).select("ref_seq", "exon_start", "exon_end").rows()
    ag = np.mean([s[a - 2 : a] == "AG" for s, a, _ in rows])
    gt = np.mean([s[e : e + 2] in ("GT", "GC") for s, _, e in rows])
    return ag, gt


def test_vexseq():
    frame = load_vexseq(shared_path("data", "variants", "vexseq_hepg2_train.csv"))
    check_common(frame, "vexseq")
    assert frame.height == 957 and frame["group"].n_unique() == 52
    assert (frame["exon_start"] == 100).all()
    assert (frame["exon_end"] - frame["exon_start"] == genomic_length(frame)).all()
    assert splice_dinucleotides(frame) == (1.0, 1.0)
    assert frame["target_kind"].unique().to_list() == ["delta_psi_percent"]
    assert frame["target"].min() < -50 and frame["target"].max() > 20  # percent, not fractions
    # the SNV sits where the genomic coordinates say, in transcript orientation
    for r in frame.filter(pl.col("ref_allele").str.len_chars() == 1).head(50).iter_rows(named=True):
        if len(r["alt_allele"]) != 1:
            continue
        if r["strand"] == "+":
            i = 100 + r["variant_position"] - r["exon_start_genomic"]
            assert r["ref_seq"][i] == r["ref_allele"] and r["alt_seq"][i] == r["alt_allele"]
        else:
            i = 100 + r["exon_end_genomic"] - r["variant_position"]
            assert r["ref_seq"][i] == reverse_complement(r["ref_allele"])


def test_mapsy():
    frame = load_mapsy(shared_path("data", "variants", "mapsy.csv"))
    check_common(frame, "mapsy")
    assert frame.height == 4951
    assert (frame["ref_seq"].str.len_chars() == 200).all()
    assert (frame["exon_end"] - frame["exon_start"] == genomic_length(frame)).all()
    ag, gt = splice_dinucleotides(frame)
    assert ag > 0.97 and gt > 0.97
    assert frame["target"].null_count() == 510  # 132 unmeasured + 378 infinite log2 ratios
    finite = frame["target"].drop_nulls()
    assert np.isfinite(finite.to_numpy()).all()
    assert frame["group"].n_unique() == 1850


def test_saturation_mutagenesis():
    frame = load_saturation_mutagenesis(context=2000)
    check_common(frame, "wt1_saturation")
    assert frame.height == 5560 and (frame["group"] == "WT1_exon5").all()
    assert (frame["ref_seq"].str.len_chars() == 90).all() and (frame["exon_end"] - frame["exon_start"] == 51).all()
    assert splice_dinucleotides(frame) == (1.0, 1.0)
    parents = frame.filter(pl.col("hexmut_position") == 0)
    assert parents.height == 10 and (parents["target"] == 0).all() and (parents["ref_seq"] == parents["alt_seq"]).all()
    np.testing.assert_allclose(2 ** frame["target"].to_numpy(), frame["rel_ei"].to_numpy(), rtol=1e-6)
    minigene = load_wt1_minigene()
    seq = minigene["sequence"]
    row = frame.row(0, named=True)
    lo = minigene["exon_start"] - 23
    assert row["upstream"] == seq[max(0, lo - 2000) : lo]
    assert row["downstream"] == seq[lo + 90 : lo + 90 + 2000]
    assert len(seq) == 17706 and minigene["labels"][minigene["exon_start"]] == 1
    assert minigene["labels"][minigene["exon_end"] - 1] == 2


def test_numpy_pickle_reader_matches_and_refuses_code(tmp_path):
    data = {
        "x": np.arange(12, dtype=np.int64).reshape(3, 4),
        "f": np.float32(2.5),
        "n": 3,
        "s": "text",
        "big": np.ones((2, 3), dtype=">f8"),
        "fortran": np.asfortranarray(np.arange(6).reshape(2, 3)),
    }
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(data, protocol=4))
    got = read_numpy_pickle(path)
    assert set(got) == set(data)
    for key in ("x", "big", "fortran"):
        np.testing.assert_array_equal(got[key], data[key])
    assert got["f"] == np.float32(2.5) and got["n"] == 3 and got["s"] == "text"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"x": shutil.rmtree}))  # a reference to a callable is refused
    with pytest.raises(ValueError, match="shutil"):
        read_numpy_pickle(evil)


def test_splicevardb(tmp_path):
    ref_dir = FIXTURES / "spliceai_vcf_reference"
    shutil.copy(ref_dir / "ref.fa", tmp_path / "ref.fa")
    rows = [
        ("v1", "1-6195-G-A", "PSMB4", "Splice-altering"),  # + strand, donor +1, exon 1 ends at 6194
        ("v2", "chr2-6609-C-T", "C1orf35", "Normal"),  # - strand donor
        ("v3", "1-6321-G-A", "PSMB4", "Low-frequency"),  # deep intronic: no exon within the flank
        ("v4", "1-6653-GTGT-G", "PSMB4", "Conflicting"),  # deletion
    ]
    tsv = tmp_path / "svdb.tsv"
    with open(tsv, "w") as fh:
        fh.write("variant_id\thg19\thg38\tgene\thgvs\tmethod\tclassification\tlocation\n")
        for vid, spec, gene, cls in rows:
            fh.write(f"{vid}\t.\t{spec}\t{gene}\tc.1\tRNA-seq\t{cls}\tintronic\n")
    frame = load_splicevardb(tsv, tmp_path / "ref.fa", annotation=ref_dir / "annotation.txt", flank=60, context=500)
    check_common(frame, "splicevardb")
    assert frame["target"].to_list() == [1.0, 0.0, None, None]
    assert frame["strand"].to_list() == ["+", "-", "+", "+"]
    assert frame["ref_matches"].all()
    v1, v2, v3, v4 = frame.iter_rows(named=True)
    assert v1["ref_seq"][v1["exon_end"] : v1["exon_end"] + 2] == "GT"  # exon ends right before the GT
    assert v1["ref_seq"][v1["exon_end"]] == "G" and v1["alt_seq"][v1["exon_end"]] == "A"
    assert v2["ref_seq"][v2["exon_end"] : v2["exon_end"] + 2] in ("GT", "GC")  # read on the minus strand
    assert v3["exon_start"] is None and len(v3["ref_seq"]) == 121
    assert len(v4["ref_seq"]) - len(v4["alt_seq"]) == 3
    assert len(v1["upstream"]) == 500 and len(v1["downstream"]) == 500
