"""On-disk cache of base-model predictions, keyed by (model, weights checksum, exact input).

The key is the SHA-256 of the model name, its weights checksum, its context
and the integer codes of the *whole* input the network sees (flanks and N
padding included, after case folding). Same key means the same computation,
so a hit returns exactly what the model would predict. Entries are plain
``.npy`` files (``np.save(..., allow_pickle=False)``) written atomically;
nothing is ever unpickled.

Layout: ``ROOT/<model>-<checksum>/<key[:2]>/<key>.npy``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from meta_layer_cli.io.atomic import atomic_path


class PredictionCache:
    """Base-model outputs ``[L, C]`` (float32) stored per exact padded input.

    ``hits``/``misses`` count lookups since construction.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()  # "~/..." from a config or --set
        self.root.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(model, codes: np.ndarray) -> str:
        """Hex digest identifying ``model``'s output on ``codes`` (uint8 ``[L + 2*context]``)."""
        digest = hashlib.sha256()
        header = f"{model.name}\0{model.weights_checksum}\0{model.context}\0{tuple(model.channels)}\0"
        digest.update(header.encode())
        digest.update(np.ascontiguousarray(codes, dtype=np.uint8).tobytes())
        return digest.hexdigest()

    def _path(self, model, key: str) -> Path:
        return self.root / f"{model.name}-{model.weights_checksum}" / key[:2] / f"{key}.npy"

    def get(self, model, codes: np.ndarray) -> np.ndarray | None:
        """The stored ``[L, C]`` array for this exact input, or None."""
        path = self._path(model, self.key(model, codes))
        if not path.is_file():
            self.misses += 1
            return None
        try:
            value = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            self.misses += 1  # unreadable entry: recompute and overwrite it
            return None
        expected = len(codes) - 2 * model.context
        if value.ndim != 2 or value.shape != (expected, len(model.channels)):
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, model, codes: np.ndarray, value: np.ndarray) -> None:
        """Store ``value`` (``[L, C]``) for this input, atomically."""
        path = self._path(model, self.key(model, codes))
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(value, dtype=np.float32), allow_pickle=False)


class MemoryCache(PredictionCache):
    """Base-model predictions kept in memory for one job, passed through to an on-disk cache if given."""

    def __init__(self, inner: PredictionCache | None = None):  # no directory of its own
        self.inner = inner
        self.store: dict[str, np.ndarray] = {}
        self.hits = 0
        self.misses = 0

    def get(self, model, codes: np.ndarray) -> np.ndarray | None:
        key = self.key(model, codes)
        if key in self.store:
            self.hits += 1
            return self.store[key]
        value = self.inner.get(model, codes) if self.inner is not None else None
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self.store[key] = value
        return value

    def put(self, model, codes: np.ndarray, value: np.ndarray) -> None:
        self.store[self.key(model, codes)] = np.ascontiguousarray(value, dtype=np.float32)
        if self.inner is not None:
            self.inner.put(model, codes, value)


def as_cache(cache: PredictionCache | str | os.PathLike | None) -> PredictionCache | None:
    """Accept a cache object, a directory, or None (no caching)."""
    if cache is None or isinstance(cache, PredictionCache):
        return cache
    return PredictionCache(cache)
