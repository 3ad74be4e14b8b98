import numpy as np
import pytest

from meta_layer_cli.io.sequence import (
    one_hot_encode,
    one_hot_to_sequence,
    reverse_complement,
    sequence_to_codes,
    validate_sequence,
)


def test_one_hot_is_channel_first_acgt():
    x = one_hot_encode("ACGT")
    assert x.shape == (4, 4)
    np.testing.assert_array_equal(x, np.eye(4, dtype=np.float32))


def test_n_and_ambiguity_codes_are_all_zero_not_a():
    x = one_hot_encode("NRYA")
    assert x[:, :3].sum() == 0
    assert x[0, 3] == 1


def test_lowercase_encodes_like_uppercase():
    np.testing.assert_array_equal(one_hot_encode("acgtn"), one_hot_encode("ACGTN"))


def test_round_trip_and_reverse_complement():
    seq = "ACGTTNGCA"
    assert one_hot_to_sequence(one_hot_encode(seq)) == seq
    assert reverse_complement("AACGTn") == "nACGTT"
    assert reverse_complement(reverse_complement(seq)) == seq


def test_codes_use_4_for_n():
    np.testing.assert_array_equal(sequence_to_codes("ACGTNx"), [0, 1, 2, 3, 4, 4])


def test_validate_names_bad_character():
    validate_sequence("ACGTNacgtn")
    with pytest.raises(ValueError, match="'Z' at position 2"):
        validate_sequence("ACZ!")  # the first bad character in order, not the smallest
    validate_sequence("ACGTRY")
    with pytest.raises(ValueError, match="'R' at position 4"):
        validate_sequence("ACGTRY", iupac=False)
