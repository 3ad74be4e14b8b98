"""score_sequences: site and window deltas for ref/alt pairs; packed + cached == one at a time."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from meta_layer_cli.artifacts.sequences import SEQUENCE_SCORE_COLUMNS, alt_on_ref, score_sequences
from tests.inference.stub_models import StubModel

REF = "CTTCTTATTCCTACAGCTTCTAAGACCACGAGAGAAAAAGTTGGGACTAGGTAAGTCGTGTAATCTCTAAAAAGG"
EXON = (16, 50)  # REF[16:50] is the exon: AG before it, GT after it


def mutate(seq: str, pos: int, ref_len: int, alt: str) -> str:
    return seq[:pos] + alt + seq[pos + ref_len :]


def table() -> pl.DataFrame:
    rows = [
        ("snv_acceptor", REF, mutate(REF, 14, 1, "T")),  # the A of the AG
        ("snv_donor", REF, mutate(REF, 51, 1, "C")),  # the T of the GT
        ("deletion", REF, mutate(REF, 30, 3, "")),
        ("insertion", REF, mutate(REF, 40, 0, "TTT")),
        ("identical", REF, REF),
        ("no_exon", REF, mutate(REF, 5, 1, "G")),
    ]
    frame = pl.DataFrame({"id": [r[0] for r in rows], "ref_seq": [r[1] for r in rows], "alt_seq": [r[2] for r in rows]})
    starts = [EXON[0]] * 5 + [None]
    ends = [EXON[1]] * 5 + [None]
    return frame.with_columns(
        pl.Series("exon_start", starts, dtype=pl.Int64),
        pl.Series("exon_end", ends, dtype=pl.Int64),
        pl.Series("upstream", ["GATTACA" * 20] * 6),
        pl.Series("measured", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    )


def test_alt_on_ref_follows_spliceai_indel_rule():
    alt = np.arange(10, dtype=float)[:, None]
    np.testing.assert_array_equal(alt_on_ref(alt, 10, 4, 5)[:, 0], np.arange(10))  # SNV at 4
    # deletion of ref[4:6] (ref 12 nt, alt 10): rows 4,5 are zero, the rest map through
    out = alt_on_ref(alt, 12, 4, 6)[:, 0]
    np.testing.assert_array_equal(out, [0, 1, 2, 3, 0, 0, 4, 5, 6, 7, 8, 9])
    # insertion of 2 nt after ref[3] (ref 8 nt, alt 10): alt rows 3..5 collapse (max) onto ref row 3
    out = alt_on_ref(alt, 8, 4, 4)[:, 0]
    np.testing.assert_array_equal(out, [0, 1, 2, 5, 6, 7, 8, 9])


def test_columns_and_values_with_stub(tmp_path):
    model = StubModel(context=6)
    result = score_sequences(table(), base_model=model, window=10)
    assert result.columns[: len(table().columns)] == table().columns  # input kept, in order
    assert set(SEQUENCE_SCORE_COLUMNS) <= set(result.columns)
    rows = {r["id"]: r for r in result.iter_rows(named=True)}
    assert rows["snv_acceptor"]["variant_start"] == 14 and rows["snv_acceptor"]["variant_end"] == 15
    assert rows["deletion"]["variant_end"] - rows["deletion"]["variant_start"] == 3
    assert rows["insertion"]["variant_start"] == rows["insertion"]["variant_end"]
    ident = rows["identical"]
    assert ident["variant_start"] is None and ident["max_abs_delta"] == 0 and ident["delta_acceptor"] == 0
    assert rows["no_exon"]["delta_acceptor"] is None and rows["no_exon"]["max_abs_delta"] > 0
    for r in rows.values():
        if r["ref_acceptor"] is not None:
            assert r["delta_acceptor"] == pytest.approx(r["alt_acceptor"] - r["ref_acceptor"])
            assert r["delta_donor"] == pytest.approx(r["alt_donor"] - r["ref_donor"])
        assert r["max_abs_delta"] == max(r["delta_gain"], r["delta_loss"])
    # the stub sees 6 nt each side: a SNV 14 nt before the donor cannot move it
    assert rows["snv_acceptor"]["delta_donor"] == 0
    # by hand: SNV acceptor delta
    ref_scores = model.predict_sequence(REF, upstream="GATTACA" * 20)
    alt_scores = model.predict_sequence(mutate(REF, 14, 1, "T"), upstream="GATTACA" * 20)
    assert rows["snv_acceptor"]["delta_acceptor"] == pytest.approx(alt_scores[16, 1] - ref_scores[16, 1], abs=1e-6)


def test_tissue_model_columns():
    result = score_sequences(table(), base_model=StubModel(("heart", "liver", "brain", "testis"), context=4))
    assert result["max_abs_delta"].null_count() == 0
    assert result.filter(pl.col("id") == "snv_donor")["delta_donor"][0] != 0


def test_packed_and_cached_equals_one_at_a_time(osai80, tmp_path):
    """Real OpenSpliceAI-80nt weights: packing many sequences into one input changes nothing."""
    frame = table()
    naive = score_sequences(frame, base_model=osai80, batched=False)
    packed = score_sequences(frame, base_model=osai80, cache=tmp_path / "cache")
    cached = score_sequences(frame.with_columns(pl.col("id") + "_again"), base_model=osai80, cache=tmp_path / "cache")
    for col in SEQUENCE_SCORE_COLUMNS:
        a, b, c = naive[col].to_numpy(), packed[col].to_numpy(), cached[col].to_numpy()
        np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), atol=1e-6, equal_nan=True)
        np.testing.assert_array_equal(np.asarray(b, float), np.asarray(c, float))
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 6  # ref once + 5 distinct alts (one alt == ref)


def test_missing_columns_and_paths(tmp_path):
    with pytest.raises(ValueError, match="exon_start"):
        score_sequences(table().drop("exon_start"), base_model=StubModel())
    path = tmp_path / "t.tsv"
    table().write_csv(path, separator="\t")
    from_file = score_sequences(path, base_model=StubModel())
    assert from_file.height == 6
