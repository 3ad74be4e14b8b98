"""The SpliceAI score definition: encoding quirks, indel realignment, the tissue-model (Pangolin) entry."""

from __future__ import annotations

import numpy as np

from meta_layer_cli.inference.spliceai_format import gain_loss_entry, spliceai_entry, spliceai_normalize


def test_spliceai_encoding_quirks():
    # SpliceAI: case-insensitive; N -> zeros; other letters -> the base their byte code % 5 selects
    assert spliceai_normalize("acgtnACGTN") == "ACGTNACGTN"
    assert spliceai_normalize("RYKM") == "CTNC"  # R=82%5=2->C, Y=89%5=4->T, K=75%5=0->N, M=77%5=2->C


def test_gain_loss_entry_masks_like_pangolin():
    y_ref = np.zeros((5, 2), np.float32)
    y_alt = np.zeros((5, 2), np.float32)
    y_alt[1, 0] = 0.6  # gain at offset -1, tissue 0
    y_alt[3, 1] = -0.4  # loss at offset +1, tissue 1
    y_alt[4, 0] = 0.3
    assert gain_loss_entry("T", "G", y_ref, y_alt, 1, None, False) == "T|G|0.60|0.40|0.60|0.40|-1|1|-1|1"
    annotated = np.array([False, True, False, False, False])  # gain at an annotated site is masked
    assert gain_loss_entry("T", "G", y_ref, y_alt, 1, annotated, True) == "T|G|0.30|0.00|0.30|0.00|2|-2|2|-2"


def test_indel_alt_tracks_are_realigned_as_spliceai_does():
    """Acceptor channel 1, donor 2; entries ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL."""
    # D = 3 (7 rows), a 2-nt deletion (REF 3 nt): ALT has 5 rows, for offsets -3..0 (the anchor), then
    # two zero rows stand for the deleted bases (+1, +2) and ALT's last row lands at +3
    y_del = np.zeros((5, 3))
    y_del[4, 2] = 0.5
    assert spliceai_entry("A", "G", np.zeros((7, 3)), y_del, 3, 99, False) == "A|G|0.00|0.00|0.50|0.00|-3|-3|3|-3"
    # D = 2 (5 rows), a 2-nt insertion: ALT has 7 rows; the anchor's and the inserted bases' rows collapse
    # into their maximum at offset 0, the rows after them follow at +1, +2
    y_ins = np.zeros((7, 3))
    y_ins[3, 1] = 0.7  # an inserted base
    y_ins[5, 2] = 0.3  # the base after the insertion
    expected = "ATT|G|0.70|0.00|0.30|0.00|0|-2|1|-2"
    assert spliceai_entry("ATT", "G", np.zeros((5, 3)), y_ins, 1, 99, False) == expected
