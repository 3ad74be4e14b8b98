"""The gene-structure decoder: exact posteriors over alternating exon-intron chains."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from metasplice.models.apply import recalibrate_arrays
from metasplice.models.meta import build_meta_model
from metasplice.models.structure import GeneStructureDecoder, structure_from_config
from tests.conftest import TINY_MODEL


def brute_force(pos, kind, weight, min_exon, min_intron):
    """Posteriors by enumerating every subset of candidates that forms a valid chain D A D A ... A."""
    n = len(pos)
    z, marg = 0.0, np.zeros(n)
    for r in range(n + 1):
        for subset in itertools.combinations(range(n), r):
            kinds = [kind[i] for i in subset]
            if kinds != [2, 1] * (r // 2) or r % 2:
                continue
            ok = all(
                (pos[b] - pos[a] - 1 >= min_intron) if kind[a] == 2 else (pos[b] - pos[a] + 1 >= min_exon)
                for a, b in zip(subset, subset[1:])
            )
            if not ok:
                continue
            w = math.exp(sum(weight[i] for i in subset))
            z += w
            for i in subset:
                marg[i] += w
    return marg / z


@pytest.mark.parametrize("seed", range(6))
def test_posteriors_equal_enumeration(seed):
    rng = np.random.default_rng(seed)
    length = 120
    probs = np.zeros((length, 3), np.float32)
    sites = rng.choice(length, size=9, replace=False)
    for x in sites:
        probs[x, rng.integers(1, 3)] = rng.uniform(0.01, 0.99)
    probs[:, 0] = 1 - probs[:, 1:].sum(1)
    dec = GeneStructureDecoder(
        1.3, -0.4, 0.8, 0.3, min_exon=int(rng.integers(1, 15)), min_intron=int(rng.integers(0, 20))
    )
    pos, kind, weight = dec.candidates(probs)
    assert len(pos) == 9
    expected = brute_force(pos.tolist(), kind.tolist(), weight.tolist(), dec.min_exon, dec.min_intron)
    out = dec(probs)
    np.testing.assert_allclose(out[pos, kind], expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-6)


def test_chain_rules_decide_between_sites():
    """Two equal acceptors with no donor between them: at most one is canonical. A lone weak donor
    between two strong acceptors is the only way to end the exon the first one starts."""
    probs = np.zeros((1000, 3), np.float32)
    probs[100, 2] = 0.9  # donor, end of the first exon
    probs[300, 1] = probs[320, 1] = 0.9  # two competing acceptors
    probs[500, 2] = 0.2  # a weak donor
    probs[800, 1] = 0.9  # the last exon
    probs[:, 0] = 1 - probs[:, 1:].sum(1)
    out = GeneStructureDecoder(min_exon=3, min_intron=30)(probs)
    assert out[300, 1] + out[320, 1] <= 1.0 + 1e-6 and out[300, 1] < 0.9
    assert out[500, 2] > 0.5  # lifted by the chain
    assert np.all(out[probs[:, 1:].max(1) < 1e-3, 1:] == 0)  # below threshold: unchanged (zero here)


def test_no_candidates_and_config_round_trip():
    probs = np.zeros((50, 3), np.float32)
    probs[:, 0] = 1
    dec = GeneStructureDecoder(1.25, -0.5, 1.25, -0.5, 3, 30)
    np.testing.assert_array_equal(dec(probs), probs)
    assert structure_from_config({"structure": dec.to_dict()}) == dec
    assert structure_from_config({}) is None
    with pytest.raises(ValueError, match="unknown structure decoder key"):
        GeneStructureDecoder.from_dict({"scale": 1.0})


def test_recalibrate_applies_the_decoder_last(osai80_arrays):
    channels, genes = osai80_arrays
    model = build_meta_model({**TINY_MODEL, "channels": channels})
    g = genes[0]
    dec = GeneStructureDecoder()
    plain = recalibrate_arrays(model, g.codes, g.tracks)
    np.testing.assert_array_equal(recalibrate_arrays(model, g.codes, g.tracks, structure=dec), dec(plain))
