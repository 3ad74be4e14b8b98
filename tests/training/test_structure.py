"""Fitting the gene-structure decoder on (validation) genes."""

from __future__ import annotations

import numpy as np
import pytest

from meta_layer_cli.evaluation.metrics import average_precision
from meta_layer_cli.training.structure import DEFAULT_GRID, fit_structure_decoder


def test_fit_picks_from_the_grid_and_reports_its_score(osai80_arrays):
    _, genes = osai80_arrays
    probs = [g.tracks.T.copy() for g in genes]
    labels = [g.labels for g in genes]
    codes = [g.codes for g in genes]
    grid = {"scale": (0.5, 1.0), "bias": (0.0,), "coding_reward": (0.0, 0.01)}
    dec, score = fit_structure_decoder(probs, labels, codes, grid=grid)
    assert dec.scale_acceptor in (0.5, 1.0) and dec.bias_donor == 0.0 and dec.min_exon == DEFAULT_GRID["min_exon"][0]
    assert dec.coding_reward == 0.01  # reading frames help on these real genes (tests/models/test_structure.py)
    decoded = [dec(p, c) for p, c in zip(probs, codes)]
    again = np.mean([average_precision(np.concatenate([d[:, c] for d in decoded]),
                                       np.concatenate([lab == c for lab in labels])) for c in (1, 2)])  # fmt: skip
    assert score == pytest.approx(again)
    with pytest.raises(ValueError, match="unknown structure grid key"):
        fit_structure_decoder(probs, labels, codes, grid={"scales": (1.0,)})
    with pytest.raises(ValueError, match="code arrays"):
        fit_structure_decoder(probs, labels, codes[:-1])
