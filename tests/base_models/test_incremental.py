"""Substitutions predicted from shared reference activations equal full forward passes."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from meta_layer_cli.artifacts.sequences import SEQUENCE_SCORE_COLUMNS, score_sequences
from meta_layer_cli.base_models.incremental import Substitution, predict_reference_and_substitutions
from tests.conftest import shared_path


def check(model, length: int, variants, reach: int, seed: int = 0) -> None:
    """``variants``: (start in the output range, ALT codes[, REF block length])."""
    rng = np.random.default_rng(seed)
    c = model.context
    codes = rng.integers(0, 4, length + 2 * c).astype(np.uint8)
    codes[: c // 2] = 4  # some N context, as at a gene edge
    subs = [Substitution(c + v[0], np.asarray(v[1], np.uint8), *v[2:]) for v in variants]
    ref, alts = predict_reference_and_substitutions(model, codes, subs, reach, batch_size=2)
    np.testing.assert_allclose(ref, model.predict_codes(codes), atol=1e-6)
    for sub, alt in zip(subs, alts):
        full = np.concatenate([codes[: sub.start], sub.codes, codes[sub.start + sub.k_ref :]])
        lo = sub.start - c - reach
        expected = model.predict_codes(full)[lo : lo + len(sub.codes) + 2 * reach]
        np.testing.assert_allclose(alt, expected, atol=1e-6)


def test_openspliceai_80nt(osai80):
    # SNVs (two batched together), an MNV, an N, substitutions at the very edges of the output range,
    # deletions (VCF style with an anchor base, and a bare one), insertions (with anchor, and bare)
    variants = [
        (30, [0]),
        (31, [3]),
        (60, [1, 2, 3]),
        (100, [4]),
        (20, [2]),
        (179, [1]),
        (40, [2], 4),
        (45, [1], 3),
        (90, [0, 1, 2, 3], 1),
        (120, [3, 3], 0),
        (176, [1], 4),
    ]
    check(osai80, 200, variants, reach=20)


def test_openspliceai_10000nt_deep_network():
    from meta_layer_cli import load_base_model

    model = load_base_model(
        "openspliceai", shared_path("models", "openspliceai-mane", "10000nt", "model_10000nt_rs10.pt")
    )
    check(model, 150, [(60, [2]), (70, [0, 1]), (80, [1], 3), (90, [2, 0, 0], 1)], reach=40)


def test_outputs_outside_the_reference_are_refused(osai80):
    codes = np.zeros(100 + 2 * osai80.context, np.uint8)
    with pytest.raises(ValueError, match="outside"):
        predict_reference_and_substitutions(osai80, codes, [Substitution(osai80.context + 5, np.ones(1, np.uint8))], 10)


def test_score_sequences_paths_agree(osai80):
    ref = "CTTCTTATTCCTACAGCTTCTAAGACCACGAGAGAAAAAGTTGGGACTAGGTAAGTCGTGTAATCTCTAAAAAGG"
    alts = [ref[:14] + "T" + ref[15:], ref[:51] + "CA" + ref[53:], ref[:30] + ref[33:], ref]
    frame = pl.DataFrame(
        {
            "id": list("abcd"),
            "ref_seq": [ref] * 4,
            "alt_seq": alts,
            "exon_start": [16] * 4,
            "exon_end": [50] * 4,
            "downstream": ["ACGT" * 30] * 4,
        }
    )
    results = [
        score_sequences(frame, base_model=osai80, batched=b, incremental=i)
        for b, i in ((False, False), (True, False), (True, True))
    ]
    for other in results[1:]:
        for col in SEQUENCE_SCORE_COLUMNS:
            np.testing.assert_allclose(
                np.asarray(results[0][col].to_numpy(), float),
                np.asarray(other[col].to_numpy(), float),
                atol=1e-6,
                equal_nan=True,
            )
