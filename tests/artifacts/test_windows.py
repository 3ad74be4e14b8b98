"""predict_windows: each input predicted exactly as alone, identical inputs once, cached inputs never."""

from __future__ import annotations

import numpy as np

from meta_layer_cli.artifacts.cache import MemoryCache
from meta_layer_cli.artifacts.windows import predict_windows
from tests.inference.stub_models import StubModel


def test_batched_padded_windows_equal_one_at_a_time():
    model = StubModel(context=4)
    passes = []  # the input lengths of each forward pass
    predict = model.predict
    model.predict = lambda x: passes.append([x.shape[-1]] * x.shape[0]) or predict(x)
    rng = np.random.default_rng(0)
    windows = [rng.integers(0, 5, size=n).astype(np.uint8) for n in (30, 28, 25, 40, 12, 30)]
    windows[5] = windows[0].copy()  # a duplicate
    out = predict_windows(model, windows, batch_size=3, max_padding=0.5)
    # 5 distinct inputs (the duplicate predicted once), longest first, right-padded to the longest of their
    # pass: 40 with 30 and 28 (within 50 % of 40, at most 3 a pass), then 25 (12 is too short to share it), 12
    assert passes == [[40, 40, 40], [25], [12]]
    for codes, y in zip(windows, out):
        assert y.shape == (len(codes) - 8, 3)
        np.testing.assert_allclose(y, model.predict_codes(codes), rtol=1e-6, atol=1e-7)  # right-padding is exact
    cache = MemoryCache()
    first = predict_windows(model, windows, cache=cache)
    calls = model.calls
    again = predict_windows(model, windows, cache=cache)
    assert model.calls == calls, "cached inputs are not predicted again"
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
