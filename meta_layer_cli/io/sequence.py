"""DNA strings <-> one-hot arrays.

One-hot arrays are channel-first, ``[4, L]`` (or ``[B, 4, L]``), channels A, C, G, T.
N (and any other IUPAC code) encodes as an all-zero column, never as A.
Input is case-insensitive: soft-masked (lowercase) bases encode like uppercase.
"""

from __future__ import annotations

import re

import numpy as np

from meta_layer_cli.runtime.errors import InputDataError

ALPHABET = "ACGT"

# byte -> channel index; 4 means "no channel" (N, IUPAC ambiguity codes).
_CODE = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate(ALPHABET):
    _CODE[ord(_b)] = _i
    _CODE[ord(_b.lower())] = _i

_COMPLEMENT = bytes.maketrans(b"ACGTNacgtnRYKMSWBDHVrykmswbdhv", b"TGCANtgcanYRMKSWVHDByrmkswvhdb")
_IUPAC = "ACGTNRYKMSWBDHVacgtnrykmswbdhv"
_NOT_IUPAC = re.compile(f"[^{_IUPAC}]")
_NOT_ACGTN = re.compile("[^ACGTNacgtn]")


def sequence_to_codes(seq: str) -> np.ndarray:
    """Integer codes ``[L]`` (uint8): 0..3 for A, C, G, T; 4 for N or any ambiguity code."""
    return _CODE[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)]


def codes_to_one_hot(codes: np.ndarray, dtype: np.dtype = np.float32) -> np.ndarray:
    """Codes ``[..., L]`` -> one-hot ``[..., 4, L]``; code 4 (N) becomes an all-zero column."""
    codes = np.asarray(codes)
    eye = np.concatenate([np.eye(4, dtype=dtype), np.zeros((1, 4), dtype=dtype)])
    return np.moveaxis(eye[codes], -1, -2)


def one_hot_encode(seq: str, dtype: np.dtype = np.float32) -> np.ndarray:
    """DNA string -> one-hot ``[4, L]`` (A, C, G, T); N and lowercase handled as documented."""
    return codes_to_one_hot(sequence_to_codes(seq), dtype=dtype)


def one_hot_to_sequence(one_hot: np.ndarray) -> str:
    """One-hot ``[4, L]`` -> DNA string; all-zero columns decode to N."""
    one_hot = np.asarray(one_hot)
    idx = np.where(one_hot.sum(axis=0) > 0, one_hot.argmax(axis=0), 4)
    return np.frombuffer(b"ACGTN", dtype=np.uint8)[idx].tobytes().decode("ascii")


def reverse_complement(seq: str) -> str:
    """Reverse complement; case and IUPAC codes are preserved."""
    return seq.translate(_COMPLEMENT)[::-1]


def validate_sequence(seq: str, name: str = "sequence", iupac: bool = True) -> None:
    """Raise :class:`InputDataError` naming the first character (and its 0-based position) that is not a
    nucleotide: A, C, G, T or N in any case, plus the IUPAC ambiguity codes unless ``iupac=False``."""
    found = (_NOT_IUPAC if iupac else _NOT_ACGTN).search(seq)
    if found is None:
        return
    ch, at = found.group(), found.start()
    hint = "; a FASTA header line ('>name') is not sequence" if ch == ">" else ""
    expected = "A/C/G/T/N or an IUPAC code" if iupac else "A, C, G, T or N (any case)"
    raise InputDataError(f"{name}: invalid character {ch!r} at position {at:,} (expected {expected}){hint}")
