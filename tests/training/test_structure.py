"""Fitting the gene-structure decoder on (validation) genes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from meta_layer_cli.evaluation.metrics import average_precision
from meta_layer_cli.models.structure import GeneStructureDecoder
from meta_layer_cli.training.structure import DEFAULT_GRID, fit_structure_decoder


def _macro_ap(decoded, labels) -> float:
    truth = {c: np.concatenate([lab == c for lab in labels]) for c in (1, 2)}
    return float(np.mean([average_precision(np.concatenate([d[:, c] for d in decoded]), truth[c]) for c in (1, 2)]))


def test_fit_picks_the_best_grid_point_and_reading_frames_win(osai80_arrays):
    """Every grid point is scored here, by hand, on the same ten real genes (OpenSpliceAI-80nt tracks):
    the fitted decoder is one with the highest macro PR-AUC, it reports that score, and the best
    reading-frame-aware decoder (coding_reward > 0) beats the best plain one (coding_reward 0), so the
    fit must choose a coding reward."""
    _, genes = osai80_arrays
    probs = [g.tracks.T.copy() for g in genes]
    labels = [g.labels for g in genes]
    codes = [g.codes for g in genes]
    grid = {"scale": (0.5, 1.0), "bias": (0.0,), "coding_reward": (0.0, 0.01, 0.02)}
    dec, score = fit_structure_decoder(probs, labels, codes, grid=grid)

    by_point = {}
    for scale, reward in itertools.product(grid["scale"], grid["coding_reward"]):
        hand = GeneStructureDecoder(
            scale_acceptor=scale, scale_donor=scale, min_exon=3, min_intron=30, threshold=3e-3, coding_reward=reward
        )
        by_point[scale, reward] = _macro_ap([hand(p, c if reward else None) for p, c in zip(probs, codes)], labels)
    best = max(by_point.values())
    assert score == pytest.approx(best)
    assert by_point[dec.scale_acceptor, dec.coding_reward] == pytest.approx(best)
    assert dec.scale_donor == dec.scale_acceptor and dec.bias_donor == 0.0
    assert dec.min_exon == DEFAULT_GRID["min_exon"][0]
    plain = max(v for (_, reward), v in by_point.items() if reward == 0)
    framed = max(v for (_, reward), v in by_point.items() if reward > 0)
    assert framed > plain + 0.005, by_point
    assert dec.coding_reward > 0

    with pytest.raises(ValueError, match="unknown structure grid key"):
        fit_structure_decoder(probs, labels, codes, grid={"scales": (1.0,)})
    with pytest.raises(ValueError, match="code arrays"):
        fit_structure_decoder(probs, labels, codes[:-1])


def test_the_grid_search_sample_is_bounded_and_seeded():
    from meta_layer_cli.training.structure import grid_sample

    lengths = [3_000, 50_000, 12_000, 7_000, 400_000, 9_000] * 50
    assert grid_sample(lengths, limit=10**9) == set(range(len(lengths)))
    chosen = grid_sample(lengths, limit=200_000)
    assert sum(lengths[i] for i in chosen) <= 200_000 and len(chosen) > 5
    assert grid_sample(lengths, limit=200_000) == chosen != grid_sample(lengths, limit=200_000, seed=1)
