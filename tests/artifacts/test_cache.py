"""Prediction cache: keyed by model, weights checksum and the exact input; plain .npy files, no pickle."""

from __future__ import annotations

import numpy as np

from meta_layer_cli.artifacts.cache import PredictionCache, as_cache
from meta_layer_cli.io.sequence import sequence_to_codes
from tests.inference.stub_models import StubModel


def test_put_get_and_key_sensitivity(tmp_path):
    cache = PredictionCache(tmp_path / "c")
    model = StubModel(context=3)
    codes = sequence_to_codes("NNNACGTACGNNN")
    assert cache.get(model, codes) is None
    value = model.predict_codes(codes)
    cache.put(model, codes, value)
    np.testing.assert_array_equal(cache.get(model, codes), value)
    assert cache.get(model, sequence_to_codes("nnnacgtacgnnn")) is not None  # case-folded input, same key
    assert cache.get(model, sequence_to_codes("NNNACGTACANNN")) is None  # one base differs
    other = StubModel(context=3, name="other")
    assert cache.get(other, codes) is None  # another model
    other = StubModel(context=3)
    other.weights_checksum = "different"
    assert cache.get(other, codes) is None  # other weights
    assert (cache.hits, cache.misses) == (2, 4)


def test_files_are_plain_npy_written_atomically(tmp_path):
    cache = PredictionCache(tmp_path)
    model = StubModel(context=2)
    codes = sequence_to_codes("NNACGTNN")
    cache.put(model, codes, model.predict_codes(codes))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].suffix == ".npy"
    assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*"))
    np.load(files[0], allow_pickle=False)  # loads without pickle
    files[0].write_bytes(b"garbage")  # a damaged entry is a miss, not an error
    assert cache.get(model, codes) is None


def test_wrong_shape_entry_is_a_miss(tmp_path):
    cache = PredictionCache(tmp_path)
    model = StubModel(context=2)
    codes = sequence_to_codes("NNACGTNN")
    cache.put(model, codes, np.zeros((3, 3), np.float32))  # should be [4, 3]
    assert cache.get(model, codes) is None
    assert as_cache(None) is None and as_cache(cache) is cache and isinstance(as_cache(tmp_path), PredictionCache)
