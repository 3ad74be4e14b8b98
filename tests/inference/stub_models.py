"""A tiny deterministic stand-in for a base model (exact receptive field, instant), for unit tests."""

from __future__ import annotations

import numpy as np

from meta_layer_cli.io.sequence import codes_to_one_hot, reverse_complement, sequence_to_codes


class StubModel:
    """``out[k, i] = sigmoid(sum_{b, j} W[k, b, j] * x[b, i + j])``: sees exactly ``context`` nt each side."""

    weights_checksum = "stub000000000000"

    def __init__(self, channels=("neither", "acceptor", "donor"), context: int = 3, name: str = "stub", seed: int = 0):
        self.name = name
        self.channels = tuple(channels)
        self.context = context
        rng = np.random.default_rng(seed)
        self.weights = rng.normal(0, 1.5, size=(len(channels), 4, 2 * context + 1)).astype(np.float32)
        self.bias = rng.normal(-2, 0.5, size=len(channels)).astype(np.float32)
        self.calls = 0

    def record(self):
        from meta_layer_cli.base_models.record import BaseModelRecord

        return BaseModelRecord.of(self)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``[B, 4, L + 2c]`` -> ``[B, C, L]``."""
        self.calls += 1
        x = np.asarray(x, dtype=np.float32)
        length = x.shape[-1] - 2 * self.context
        logits = np.zeros((x.shape[0], len(self.channels), length), dtype=np.float32) + self.bias[None, :, None]
        for j in range(2 * self.context + 1):
            logits += np.einsum("kb,nbl->nkl", self.weights[:, :, j], x[:, :, j : j + length])
        return 1.0 / (1.0 + np.exp(-logits))

    def predict_codes(self, codes: np.ndarray) -> np.ndarray:
        return self.predict(codes_to_one_hot(np.asarray(codes))[None])[0].T.copy()

    def _padded(self, seq: str, upstream: str, downstream: str) -> np.ndarray:
        c = self.context
        up, down = upstream[-c:], downstream[:c]
        return sequence_to_codes("N" * (c - len(up)) + up + seq + down + "N" * (c - len(down)))

    def predict_sequence(self, seq: str, strand: str = "+", upstream: str = "", downstream: str = "") -> np.ndarray:
        if strand == "-":
            seq, upstream, downstream = (
                reverse_complement(seq),
                reverse_complement(downstream),
                reverse_complement(upstream),
            )
        scores = self.predict_codes(self._padded(seq, upstream, downstream))
        return scores[::-1].copy() if strand == "-" else scores

    def predict_genes(self, genes) -> list[np.ndarray]:
        return [self.predict_codes(self._padded(g.sequence, g.upstream, g.downstream)) for g in genes]
