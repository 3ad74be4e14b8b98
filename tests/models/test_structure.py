"""The gene-structure decoder: exact posteriors over alternating exon-intron chains."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from meta_layer_cli.evaluation.metrics import average_precision
from meta_layer_cli.io.sequence import sequence_to_codes
from meta_layer_cli.models.apply import recalibrate_arrays
from meta_layer_cli.models.meta import build_meta_model
from meta_layer_cli.models.structure import GeneStructureDecoder, structure_from_config
from tests.conftest import TINY_MODEL


def brute_force(pos, kind, weight, dec, seq=None):
    """Posteriors by enumerating every subset of candidates that forms a valid chain D A D A ... A;
    with ``seq``, each chain's weight is also summed over its CDSs (:func:`coding_weight`)."""
    n, max_exon = len(pos), dec.max_exon if seq is not None else math.inf
    z, marg = 0.0, np.zeros(n)
    for r in range(0, n + 1, 2):
        for subset in itertools.combinations(range(n), r):
            if [kind[i] for i in subset] != [2, 1] * (r // 2):
                continue
            ok = all(
                (pos[b] - pos[a] - 1 >= dec.min_intron)
                if kind[a] == 2
                else (dec.min_exon <= pos[b] - pos[a] + 1 <= max_exon)
                for a, b in zip(subset, subset[1:])
            )
            if not ok:
                continue
            w = math.exp(sum(weight[i] for i in subset))
            if seq is not None:
                sites = [pos[i] for i in subset]
                exons = list(zip([0] + sites[1::2], sites[0::2] + [len(seq) - 1]))
                w *= coding_weight(exons, seq, dec.coding_reward, dec.start_weight)
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
    expected = brute_force(pos.tolist(), kind.tolist(), weight.tolist(), dec)
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


def test_decoded_rows_stay_distributions():
    """A donor decoded to ~1 beside an undecoded acceptor probability at the same position summed past 1
    (predict's meta_* columns: up to 1.0005 on a demo gene); every decoded row sums to 1, none negative."""
    probs = np.zeros((1000, 3), np.float32)
    probs[100, 2] = 0.99  # donor, end of the first exon
    probs[100, 1] = 0.0008  # below the decoder's threshold (0.001): not a candidate, kept as it is
    probs[800, 1] = 0.99  # acceptor of the last exon
    probs[:, 0] = 1 - probs[:, 1:].sum(1)
    out = GeneStructureDecoder(min_exon=3, min_intron=30)(probs)
    assert out[100, 2] + out[100, 1] > 0.999 and out[100, 1] > 0  # the chain lifts its donor next to the acceptor
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-6)
    assert (out >= 0).all()


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
    coding = GeneStructureDecoder(coding_reward=0.01)
    np.testing.assert_array_equal(
        recalibrate_arrays(model, g.codes, g.tracks, structure=coding), coding(plain, g.codes)
    )


STOPS = ("TAA", "TAG", "TGA")


def coding_weight(exons, seq, reward, start_weight):
    """Sum over a parse's coding annotations, by walking its spliced sequence: no CDS (1), or an ATG
    inside one exon, read codon by codon to the first stop codon inside one exon (codons across a
    junction are not read as stops); a CDS that runs off the end of the transcript is not allowed."""
    where = [(i, e) for e, (a, b) in enumerate(exons) for i in range(a, b + 1)]
    total = 1.0
    for k in range(len(where) - 2):
        (t, e), (_, e2) = where[k], where[k + 2]
        if e != e2 or seq[t : t + 3] != "ATG":
            continue
        for j in range(k, len(where) - 2, 3):
            codon = [where[j + m] for m in range(3)]
            if codon[0][1] == codon[2][1] and "".join(seq[i] for i, _ in codon) in STOPS:
                total += math.exp(start_weight + reward * (j + 3 - k))
                break
    return total


@pytest.mark.parametrize("seed", range(6))
def test_coding_posteriors_equal_enumeration(seed):
    """With open reading frames: the same posteriors as enumerating every chain and every CDS in it."""
    rng = np.random.default_rng(seed)
    length = 150
    # ATG- and stop-rich sequence, so that parses differ in their open reading frames
    seq = list(rng.choice(list("ACGT"), size=length))
    for x in rng.choice(length - 3, size=12, replace=False):
        seq[x : x + 3] = list(rng.choice(["ATG", "TAA", "TGA", "TAG"]))
    seq = "".join(seq[:length])
    probs = np.zeros((length, 3), np.float32)
    for x in rng.choice(np.arange(3, length - 3), size=9, replace=False):
        probs[x, rng.integers(1, 3)] = rng.uniform(0.05, 0.95)
    probs[:, 0] = 1 - probs[:, 1:].sum(1)
    dec = GeneStructureDecoder(
        1.1,
        -0.3,
        0.9,
        0.2,
        min_exon=int(rng.integers(1, 10)),
        min_intron=int(rng.integers(0, 15)),
        coding_reward=float(rng.choice([0.05, 0.2])),
        start_weight=-1.0,
        max_exon=int(rng.choice([40, 1000])),
    )
    pos, kind, weight = dec.candidates(probs)
    expected = brute_force(pos.tolist(), kind.tolist(), weight.tolist(), dec, seq)
    out = dec(probs, sequence_to_codes(seq))
    np.testing.assert_allclose(out[pos, kind], expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="pass the gene's codes"):
        dec(probs)


def test_a_frame_shifting_exon_is_kept():
    """A weak internal exon of 100 nt (not a multiple of 3) inside a CDS: skipping it would shift the
    frame into stop codons, so with the coding reward the chain keeps it."""
    rng = np.random.default_rng(1)
    sense = [a + b + c for a in "ACGT" for b in "ACGT" for c in "ACGT" if a + b + c not in STOPS]
    cds = "ATG" + "".join(rng.choice(sense, size=399)) + "TAA"  # 1,203 nt
    exons = [cds[:600], cds[600:700], cds[700:]]  # the middle exon: 100 nt
    skipped = exons[0] + exons[2]
    assert any(skipped[i : i + 3] in STOPS for i in range(600, 700, 3))  # frame broken soon after
    intron = "GT" + "".join(rng.choice(list("ACT"), size=296)) + "AG"
    seq = "AAAA" + exons[0] + intron + exons[1] + intron + exons[2] + "AAAA"
    probs = np.zeros((len(seq), 3), np.float32)
    d1 = 4 + 600 - 1
    a2, d2 = d1 + 301, d1 + 300 + 100
    a3 = d2 + 301
    probs[d1, 2] = probs[a3, 1] = 0.95
    probs[a2, 1] = probs[d2, 2] = 0.3
    probs[:, 0] = 1 - probs[:, 1:].sum(1)
    plain = GeneStructureDecoder(min_exon=3, min_intron=30)(probs)
    coding = GeneStructureDecoder(min_exon=3, min_intron=30, coding_reward=0.02)(probs, sequence_to_codes(seq))
    assert plain[a2, 1] < 0.5 and plain[d2, 2] < 0.5
    assert coding[a2, 1] > 0.9 and coding[d2, 2] > 0.9
    assert coding[d1, 2] > 0.9 and coding[a3, 1] > 0.9


def test_reading_frames_help_on_real_genes(osai80_arrays):
    """Ten real demo genes, OpenSpliceAI-80nt tracks (a weak base model): the chain with open reading
    frames ranks the true sites better than the plain chain."""
    _, genes = osai80_arrays
    plain = GeneStructureDecoder(min_exon=3, min_intron=30)
    coding = GeneStructureDecoder(min_exon=3, min_intron=30, coding_reward=0.01)

    def macro_ap(dec, use_codes):
        out = [dec(g.tracks.T.copy(), g.codes if use_codes else None) for g in genes]
        return np.mean(
            [
                average_precision(
                    np.concatenate([o[:, c] for o in out]), np.concatenate([g.labels == c for g in genes])
                )
                for c in (1, 2)
            ]
        )

    assert macro_ap(coding, True) > macro_ap(plain, False)


@pytest.mark.parametrize("length", [1, 2, 3, 50])
def test_coding_edge_cases(length):
    """Genes of 1-3 nt, no candidates, all N, or with no stop codon at all."""
    empty = np.zeros((length, 3), np.float32)
    empty[:, 0] = 1
    coding = GeneStructureDecoder(coding_reward=0.02)
    np.testing.assert_array_equal(coding(empty, np.zeros(length, np.uint8)), empty)
    if length == 50:
        probs = empty.copy()
        probs[10] = (0.1, 0.0, 0.9)
        probs[40] = (0.1, 0.9, 0.0)
        # without ATG the only coding annotation is "no CDS": the plain chain's posteriors
        plain = GeneStructureDecoder()(probs)
        np.testing.assert_allclose(coding(probs, np.full(length, 4, np.uint8)), plain, atol=1e-6)
        np.testing.assert_allclose(coding(probs, sequence_to_codes("C" * length)), plain, atol=1e-6)
