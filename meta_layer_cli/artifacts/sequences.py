"""Base-model scores and deltas for ref/alt sequence pairs: ``score_sequences`` and what it is made of.

Assay data (Vex-seq, MaPSy, saturation mutagenesis) come as ref/alt sequences
without a genome. :func:`predict_sequences` gives the base model's ``[len, C]``
track for each (sequence, upstream, downstream) input -- identical inputs once,
cached ones not at all, ALTs from their reference's activations, the rest packed
into shared forward passes -- and :func:`score_sequences` turns them into the
deltas at the exon's splice sites and in a window around the variant. Indel ALT
tracks are put on REF coordinates as SpliceAI does (:func:`alt_on_ref`). The
variant models' datasets (:mod:`meta_layer_cli.features.variants`) are built from
exactly these predictions.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from meta_layer_cli.artifacts.cache import PredictionCache, as_cache
from meta_layer_cli.base_models import resolve_base_model
from meta_layer_cli.base_models.base import padded_codes
from meta_layer_cli.base_models.incremental import Substitution, predict_reference_and_substitutions
from meta_layer_cli.io.genes import GeneSequence
from meta_layer_cli.io.sequence import sequence_to_codes
from meta_layer_cli.io.tables import check_variant_table, read_table
from meta_layer_cli.runtime.errors import InputDataError

SEQUENCE_SCORE_COLUMNS = (
    "variant_start",
    "variant_end",
    "ref_acceptor",
    "alt_acceptor",
    "delta_acceptor",
    "ref_donor",
    "alt_donor",
    "delta_donor",
    "delta_gain",
    "delta_gain_pos",
    "delta_loss",
    "delta_loss_pos",
    "max_abs_delta",
)

if TYPE_CHECKING:
    from meta_layer_cli.runtime.device import DeviceLike


def variant_span(ref: str, alt: str) -> tuple[int, int]:
    """Common prefix length ``p`` and common suffix length ``s`` (``p + s <= min(len)``)."""
    n = min(len(ref), len(alt))
    p = 0
    while p < n and ref[p] == alt[p]:
        p += 1
    s = 0
    while s < n - p and ref[len(ref) - 1 - s] == alt[len(alt) - 1 - s]:
        s += 1
    return p, s


def alt_on_ref(alt_scores: np.ndarray, ref_len: int, p: int, s: int) -> np.ndarray:
    """ALT scores ``[La, C]`` placed on REF coordinates ``[ref_len, C]`` (SpliceAI's indel rule).

    Outside the changed segment positions map one to one; deleted REF positions
    get 0; inserted ALT positions collapse (maximum) onto the REF position before them.
    """
    la = alt_scores.shape[0]
    out = np.zeros((ref_len, alt_scores.shape[1]), dtype=alt_scores.dtype)
    out[:p] = alt_scores[:p]
    if s:
        out[ref_len - s :] = alt_scores[la - s :]
    m_r, m_a = ref_len - s - p, la - s - p
    k = min(m_r, m_a)
    out[p : p + k] = alt_scores[p : p + k]
    if m_a > m_r:
        anchor = p + k - 1
        if anchor >= 0:
            out[anchor] = alt_scores[anchor : la - s].max(axis=0)
        else:  # insertion before the first base: collapse onto it
            out[0] = alt_scores[: la - s + 1].max(axis=0)
    return out


def _spliced_sequences(model, pairs: Sequence[tuple[tuple[str, str, str], str]], cache, batch_size: int | None):
    """Scores for references and ALT sequences of them, from shared reference activations.

    ``pairs``: ((ref, upstream, downstream), alt). Returns {(seq, upstream, downstream): ``[len, C]``}
    for every reference and ALT. Each reference is run once with ``len(ref)`` extra N (or
    real flank) each side, so that every ALT's reach covers its whole sequence.
    """
    found: dict[tuple[str, str, str], np.ndarray] = {}
    by_ref: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for ref_item, alt in pairs:
        by_ref[ref_item].append(alt)
    c = model.context
    for (ref, up, down), alts in by_ref.items():
        alts = [a for a in dict.fromkeys(alts) if a != ref]
        reach = len(ref) + 1
        codes = padded_codes(c + reach, ref, up, down)
        subs, firsts = [], []
        for alt in alts:
            p, s = variant_span(ref, alt)
            if len(alt) - s - p == 0:  # a pure deletion: let the block keep one base of context
                p, s = (p - 1, s) if p > 0 else (p, s - 1)
            subs.append(Substitution(c + reach + p, sequence_to_codes(alt[p : len(alt) - s]), len(ref) - s - p))
            firsts.append(reach - p)  # the output row of ALT position 0
        ref_scores, alt_scores = predict_reference_and_substitutions(model, codes, subs, reach, batch_size or 64)
        found[(ref, up, down)] = ref_scores[reach : reach + len(ref)]
        for alt, first, scores in zip(alts, firsts, alt_scores):
            found[(alt, up, down)] = scores[first : first + len(alt)]
    if cache is not None:
        for item, scores in found.items():
            cache.put(model, padded_codes(c, *item), scores)
    return found


def predict_sequences(
    model,
    refs: Sequence[tuple[str, str, str]],
    alts: Sequence[tuple[str, str, str]],
    cache,
    batched: bool,
    incremental: bool = True,
    batch_size: int | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Scores ``[len(seq), C]`` for each reference and ALT (seq, upstream, downstream).

    Batched: identical inputs once, cached ones not at all; ALTs from their reference's
    activations (``incremental``), everything else packed into shared inputs.
    """
    if not batched:
        return (
            [model.predict_sequence(s, "+", u, d) for s, u, d in refs],
            [model.predict_sequence(s, "+", u, d) for s, u, d in alts],
        )
    items = list(refs) + list(alts)
    unique = list(dict.fromkeys(items))
    found: dict[tuple[str, str, str], np.ndarray] = {}
    missing = []
    for item in unique:
        hit = cache.get(model, padded_codes(model.context, *item)) if cache is not None else None
        if hit is None:
            missing.append(item)
        else:
            found[item] = hit
    if incremental and hasattr(model, "ensemble_members"):
        todo = set(missing)
        pairs = [(r, a[0]) for r, a in zip(refs, alts) if (r[1], r[2]) == (a[1], a[2]) and (r in todo or a in todo)]
        if pairs:
            found.update(_spliced_sequences(model, pairs, cache, batch_size))
            missing = [m for m in missing if m not in found]
    pack_nt = 400_000
    start = 0
    while start < len(missing):
        stop, size = start, 0
        while stop < len(missing) and (size == 0 or size < pack_nt):
            size += len(missing[stop][0]) + model.context
            stop += 1
        group = missing[start:stop]
        genes = [
            GeneSequence(str(i), "", "", "+", s, np.zeros(len(s), np.int8), None, u, d)
            for i, (s, u, d) in enumerate(group)
        ]
        for item, scores in zip(group, model.predict_genes(genes)):
            found[item] = scores
            if cache is not None:
                cache.put(model, padded_codes(model.context, *item), scores)
        start = stop
    return [found[i] for i in refs], [found[i] for i in alts]


def score_sequences(
    table,
    base_model="spliceai",
    weights: str | os.PathLike | None = None,
    device: DeviceLike = None,
    window: int = 50,
    *,
    cache: PredictionCache | str | os.PathLike | None = None,
    batched: bool = True,
    incremental: bool = True,
    batch_size: int | None = None,
) -> pl.DataFrame:
    """Base-model deltas for ref/alt sequence pairs (assay data, no genome needed).

    ``table``: a polars DataFrame or a CSV/TSV/parquet path with columns ``id,
    ref_seq, alt_seq, exon_start, exon_end`` (0-based, half-open, in ``ref_seq``,
    transcript orientation; exon bounds may be null) and optionally ``upstream``
    / ``downstream``: real sequence flanking ``ref_seq`` and ``alt_seq`` alike
    (transcript orientation) that the model sees as context; without them the
    context is N. Returns the table with these columns added (Float64 scores, Int64
    positions, all in ``ref_seq`` coordinates; ALT scores are mapped onto REF
    coordinates as SpliceAI does for indels, see :func:`alt_on_ref`):

    ``variant_start``, ``variant_end``
        the REF segment that differs ``[start, end)`` (empty for an insertion;
        null when ref == alt);
    ``ref_acceptor``, ``alt_acceptor``, ``delta_acceptor``
        acceptor probability at ``exon_start`` (the exon's first nt) and alt − ref;
    ``ref_donor``, ``alt_donor``, ``delta_donor``
        donor probability at ``exon_end - 1`` (the exon's last nt) and alt − ref;
    ``delta_gain`` / ``delta_gain_pos``, ``delta_loss`` / ``delta_loss_pos``
        the largest increase / decrease (as a positive number) of any splice
        channel within ``window`` nt of the variant, and where;
    ``max_abs_delta``
        ``max(delta_gain, delta_loss)``.

    For SpliceAI/OpenSpliceAI "splice channels" are acceptor and donor. For
    Pangolin (tissue channels, no acceptor/donor split) they are the four
    tissues, and the site columns take, at that site, the tissue whose
    |alt − ref| is largest (``ref_*``/``alt_*`` are that tissue's values).

    Identical sequences are predicted once; each ALT is computed from its
    reference's activations (``incremental``, see
    :mod:`meta_layer_cli.base_models.incremental`); without it, sequences share forward
    passes (packed with N spacers of the model's full context, so no output sees
    a neighbour); ``cache`` keeps predictions across runs. ``batched=False``
    predicts each row's ref and alt separately (the naive path). All paths give
    the same numbers up to float rounding.
    """
    frame = check_variant_table(read_table(table), "sequence table")
    model = resolve_base_model(base_model, weights, device)
    cache = as_cache(cache)
    refs = frame["ref_seq"].to_list()
    alts = frame["alt_seq"].to_list()
    n = len(refs)
    ups = frame["upstream"].fill_null("").to_list() if "upstream" in frame.columns else [""] * n
    downs = frame["downstream"].fill_null("").to_list() if "downstream" in frame.columns else [""] * n
    for i, (r, a) in enumerate(zip(refs, alts)):
        if not r or not a:
            raise InputDataError(f"row {i} ({frame['id'][i]}): empty ref_seq or alt_seq")
    ref_scores, alt_scores = predict_sequences(
        model, list(zip(refs, ups, downs)), list(zip(alts, ups, downs)), cache, batched, incremental, batch_size
    )
    channels = tuple(model.channels)
    if "acceptor" in channels and "donor" in channels:
        site_channels = {"acceptor": [channels.index("acceptor")], "donor": [channels.index("donor")]}
        splice = [channels.index("acceptor"), channels.index("donor")]
    else:
        site_channels = {"acceptor": list(range(len(channels))), "donor": list(range(len(channels)))}
        splice = list(range(len(channels)))
    exon_starts = frame["exon_start"].to_list()
    exon_ends = frame["exon_end"].to_list()
    cols: dict[str, list] = {c: [] for c in SEQUENCE_SCORE_COLUMNS}
    for i in range(n):
        ref, alt = refs[i], alts[i]
        y_ref = ref_scores[i].astype(np.float64)
        p, s = variant_span(ref, alt)
        y_alt = alt_on_ref(alt_scores[i].astype(np.float64), len(ref), p, s)
        delta = y_alt - y_ref
        identical = ref == alt
        v0, v1 = (None, None) if identical else (p, len(ref) - s)
        cols["variant_start"].append(v0)
        cols["variant_end"].append(v1)
        for site, pos in (("acceptor", exon_starts[i]), ("donor", None if exon_ends[i] is None else exon_ends[i] - 1)):
            if pos is None or not 0 <= pos < len(ref):
                values = (None, None, None)
            else:
                chans = site_channels[site]
                k = chans[int(np.argmax(np.abs(delta[pos, chans])))]
                values = (float(y_ref[pos, k]), float(y_alt[pos, k]), float(delta[pos, k]))
            for name, v in zip(("ref_", "alt_", "delta_"), values):
                cols[f"{name}{site}"].append(v)
        if identical:
            lo, hi = 0, 0
        else:
            lo, hi = max(0, p - window), min(len(ref), max(len(ref) - s, p) + window)
        if hi <= lo:
            gain = loss = 0.0
            gain_pos = loss_pos = None
        else:
            d = delta[lo:hi, splice]
            gpos, lpos = int(d.max(axis=1).argmax()), int(d.min(axis=1).argmin())
            gain, loss = float(d[gpos].max()), -float(d[lpos].min())
            gain_pos, loss_pos = lo + gpos, lo + lpos
        cols["delta_gain"].append(gain)
        cols["delta_gain_pos"].append(gain_pos)
        cols["delta_loss"].append(loss)
        cols["delta_loss_pos"].append(loss_pos)
        cols["max_abs_delta"].append(max(gain, loss))
    ints = {"variant_start", "variant_end", "delta_gain_pos", "delta_loss_pos"}
    added = pl.DataFrame({c: pl.Series(c, v, dtype=pl.Int64 if c in ints else pl.Float64) for c, v in cols.items()})
    return pl.concat([frame.drop([c for c in SEQUENCE_SCORE_COLUMNS if c in frame.columns]), added], how="horizontal")
