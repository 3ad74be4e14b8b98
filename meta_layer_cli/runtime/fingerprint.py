"""Fingerprints of the inputs that describe an output, and what changed between two of them.

A fingerprint is a flat mapping ``{what: value}`` (``"annotation checksum": "3f2a..."``,
``"transcripts": "canonical"``, ...). Folders record the fingerprint of the inputs that made
them; a rerun with a different one is refused with one line naming every difference.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping

CHECKSUM_DIGITS = 16


def file_checksum(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> str:
    """SHA-256 over the files' bytes (in the given order), first 16 hex digits."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:CHECKSUM_DIGITS]


def value_checksum(value: object) -> str:
    """SHA-256 of a JSON-serialisable value (keys sorted), first 16 hex digits."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:CHECKSUM_DIGITS]


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def differences(old: Mapping[str, object], new: Mapping[str, object]) -> list[str]:
    """``["annotation checksum: 3f2a... -> 9c1b...", ...]`` for every key whose value differs."""
    out = []
    for key in dict.fromkeys([*old, *new]):
        if old.get(key) != new.get(key):
            out.append(f"{key}: {_short(old.get(key))} -> {_short(new.get(key))}")
    return out
