"""Predicting many exact inputs at once: deduplicated, cached, batched by length (:func:`predict_windows`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from meta_layer_cli.artifacts.cache import PredictionCache
from meta_layer_cli.io.sequence import codes_to_one_hot


def _default_batch(model) -> int:
    import torch

    from meta_layer_cli.runtime.device import default_sizes

    return default_sizes(torch.device(getattr(getattr(model, "device", None), "type", "cpu")))["window_batch"]


def predict_windows(
    model,
    windows: Sequence[np.ndarray],
    cache: PredictionCache | None = None,
    batch_size: int | None = None,
    max_padding: float = 0.25,
) -> list[np.ndarray]:
    """Predict many inputs, each with its own context: codes ``[L_i + 2*context]`` -> ``[L_i, C]``.

    Identical inputs are predicted once, cached inputs not at all. Inputs of
    similar length (within ``max_padding`` of the longest) share a forward pass
    of up to ``batch_size``: shorter ones are padded on the right with N, which
    is exact, because an output sees only ``context`` nt to its right and the
    padded outputs are dropped. Inputs longer than the model's block go
    through :meth:`predict_codes` one by one (bounded memory).
    """
    batch_size = batch_size or _default_batch(model)
    out: list[np.ndarray | None] = [None] * len(windows)
    todo: dict[bytes, list[int]] = {}
    hits: dict[bytes, np.ndarray] = {}
    for i, codes in enumerate(windows):
        key = codes.tobytes()
        if key in todo:
            todo[key].append(i)
        elif key in hits:
            out[i] = hits[key]
        else:
            hit = cache.get(model, codes) if cache is not None else None
            if hit is None:
                todo[key] = [i]
            else:
                hits[key] = out[i] = hit

    def store(group: list[int], scores: np.ndarray) -> None:
        if cache is not None:
            cache.put(model, windows[group[0]], scores)
        for i in group:
            out[i] = scores

    long_limit = getattr(model, "block_size", 50_000) + 2 * model.context
    groups = sorted(todo.values(), key=lambda g: -len(windows[g[0]]))
    b = 0
    while b < len(groups):
        longest = len(windows[groups[b][0]])
        if longest > long_limit:
            store(groups[b], np.ascontiguousarray(model.predict_codes(windows[groups[b][0]]), dtype=np.float32))
            b += 1
            continue
        e = b + 1
        while e < len(groups) and e - b < batch_size and len(windows[groups[e][0]]) >= (1 - max_padding) * longest:
            e += 1
        batch = groups[b:e]
        stacked = np.full((len(batch), longest), 4, dtype=np.uint8)  # 4 = N
        for row, g in enumerate(batch):
            stacked[row, : len(windows[g[0]])] = windows[g[0]]
        probs = model.predict(codes_to_one_hot(stacked))
        for g, p in zip(batch, probs):
            n_out = len(windows[g[0]]) - 2 * model.context
            store(g, np.ascontiguousarray(p[:, :n_out].T, dtype=np.float32))
        b = e
    return out  # type: ignore[return-value]
