"""The variant models' data contract and dataset: one definition, used by training and by inference.

The names every variant model, loss and metric index into (:data:`TARGET_KINDS`,
:data:`EFFECT_TYPES`, :data:`MASK_CHANNELS`) and the default splice-altering thresholds
(:data:`DEFAULT_THRESHOLDS`) live here, below the models that read them.

:func:`build_variant_dataset` turns tables of :mod:`meta_layer_cli.io.assays` (one row per
variant: ``id, ref_seq, alt_seq, exon_start, exon_end, target, target_kind, group,
source, upstream, downstream``) into a :class:`VariantDataset`:

* a fixed window of ``window`` nt (default 320) in REF coordinates, centred on the
  exon's centre, or on the variant when the exon is unknown or the variant would fall
  outside the window. Where the window runs past ``ref_seq`` it takes the row's real
  ``upstream`` / ``downstream`` flank, and N (all-zero) past that;
* REF and ALT one-hot codes on REF coordinates (indels aligned as SpliceAI aligns an
  indel's ALT track, see :mod:`meta_layer_cli.models.variant`). Some assay tables keep the
  exon at a fixed offset in both sequences, so an indel shifts the flank: REF and ALT
  then have equal length and differ over a long stretch (31 Vex-seq indel rows). Such
  rows are realigned first (:func:`realign_shifted_indel`), so that the indel is an
  indel and the window maxima do not compare shifted positions;
* the base model's REF and ALT tracks over the same window, ALT mapped onto REF
  coordinates by :func:`meta_layer_cli.artifacts.sequences.alt_on_ref`. They come from
  :func:`meta_layer_cli.artifacts.sequences.score_sequences` (packing, incremental ALT
  prediction, on-disk cache) run once on the rows extended to the window, whose
  predictions are kept in memory (:class:`MemoryCache`) and read back as tracks --
  nothing is predicted twice. Each sequence is predicted with its real flanks (or N)
  as context, exactly as ``score_sequences`` predicts it;
* the exon / variant mask, the target and its kind, the exon group, and the raw
  base-model deltas of ``score_sequences`` (``delta_acceptor``, ``delta_donor``,
  ``delta_gain``, ``delta_loss``, ``max_abs_delta``) for the baseline.

Exon-grouped splits of these datasets are :mod:`meta_layer_cli.training.splits`' (every exon,
``group``, entirely on one side); :func:`exon_group_key` makes one key per exon across data sets.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import polars as pl
import torch

from meta_layer_cli.artifacts.cache import MemoryCache, PredictionCache, as_cache
from meta_layer_cli.base_models.record import BaseModelRecord
from meta_layer_cli.io.sequence import sequence_to_codes
from meta_layer_cli.io.tables import check_variant_table
from meta_layer_cli.runtime.errors import InputDataError, UsageError

#: The effect-type classes (index = class id of the ``effect_type`` / ``unified`` models).
EFFECT_TYPES = ("donor_gain", "donor_loss", "acceptor_gain", "acceptor_loss", "exon_skipping", "normal", "complex")
#: Units a target is measured in (index = ``kind``); each kind has its own readout and scale.
TARGET_KINDS = ("delta_psi_percent", "log2_ratio", "splice_altering")
#: The mask channels of a variant model's input: the assayed exon, the positions the variant changes.
MASK_CHANNELS = ("exon", "variant")
#: Splice-altering = ``|target| >= threshold`` of its kind: ``|delta PSI| >= 20`` (percent, Vex-seq, as in
#: CAGI5); ``|log2 ratio| >= 1`` (MaPSy, WT1: a two-fold change of splicing efficiency / exon inclusion);
#: splice_altering (already 0/1) at 0.5.
DEFAULT_THRESHOLDS = {"delta_psi_percent": 20.0, "log2_ratio": 1.0, "splice_altering": 0.5}

DEFAULT_WINDOW = 320
BASE_DELTA_COLUMNS = ("delta_acceptor", "delta_donor", "delta_gain", "delta_loss", "max_abs_delta")
_N = 4


@dataclass
class VariantDataset:
    """Model-ready arrays for ``N`` variants over a window of ``L`` nt (REF coordinates).

    ``ref_codes`` / ``alt_codes`` uint8 ``[N, L]`` (0-3 ACGT, 4 N); ``ref_tracks`` /
    ``alt_tracks`` float32 ``[N, C, L]``; ``mask`` uint8 ``[N, 2, L]`` (exon, variant);
    ``target`` float64 ``[N]`` (NaN if not measured); ``ref_psi`` float64 ``[N]`` (the exon's
    reference PSI in percent, from a ``ref_psi`` table column; NaN if not known); ``kind``
    int64 ``[N]`` (index into :data:`TARGET_KINDS`); ``effect`` int64 ``[N]`` (index into :data:`EFFECT_TYPES`, -1
    unknown); ``ids``, ``groups``, ``sources`` str ``[N]``; ``base_deltas`` name -> float64
    ``[N]``; ``base_model`` the :class:`BaseModelRecord` of the base model that made the tracks.
    """

    ids: np.ndarray
    ref_codes: np.ndarray
    alt_codes: np.ndarray
    ref_tracks: np.ndarray
    alt_tracks: np.ndarray
    mask: np.ndarray
    target: np.ndarray
    ref_psi: np.ndarray
    kind: np.ndarray
    effect: np.ndarray
    groups: np.ndarray
    sources: np.ndarray
    base_deltas: dict[str, np.ndarray]
    channels: list[str]
    window: int
    base_model: BaseModelRecord | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def kind_names(self) -> np.ndarray:
        return np.asarray(TARGET_KINDS, dtype=object)[self.kind]

    def subset(self, index: np.ndarray | Sequence[int]) -> VariantDataset:
        """Rows ``index`` (ints or a boolean mask), as a new dataset."""
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        values = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                values[f.name] = v[idx]
            elif f.name == "base_deltas":
                values[f.name] = {k: a[idx] for k, a in v.items()}
            else:
                values[f.name] = v
        return VariantDataset(**values)

    @classmethod
    def concat(cls, parts: Sequence[VariantDataset]) -> VariantDataset:
        if not parts:
            raise ValueError("nothing to concatenate")
        first = parts[0]
        for p in parts[1:]:
            if p.channels != first.channels or p.window != first.window:
                raise InputDataError("datasets differ in base-model channels or window")
        values = {}
        for f in fields(cls):
            v = getattr(first, f.name)
            if isinstance(v, np.ndarray):
                values[f.name] = np.concatenate([getattr(p, f.name) for p in parts])
            elif f.name == "base_deltas":
                values[f.name] = {k: np.concatenate([p.base_deltas[k] for p in parts]) for k in v}
            else:
                values[f.name] = v
        return cls(**values)

    def labels(self, thresholds: dict[str, float] | None = None) -> np.ndarray:
        """Splice-altering label ``[N]``: 1.0 if ``|target| >= threshold`` of its kind, else 0.0; NaN if no target."""
        thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
        thr = np.array([thresholds[k] for k in TARGET_KINDS])[self.kind]
        out = (np.abs(self.target) >= thr).astype(np.float64)
        out[~np.isfinite(self.target)] = np.nan
        return out

    def batch(
        self, index: np.ndarray | Sequence[int], device: str | torch.device | None = None
    ) -> dict[str, torch.Tensor]:
        """Tensors for rows ``index``: ``ref_seq``/``alt_seq`` one-hot ``[B, 4, L]``, ``ref_tracks``/``alt_tracks``
        ``[B, C, L]``, ``mask`` ``[B, 2, L]``, ``kind`` ``[B]``, ``target`` and ``ref_psi`` ``[B]`` (float32)."""
        from meta_layer_cli.runtime.device import resolve_device

        idx = np.asarray(index)
        device = resolve_device(device)

        def one_hot(codes: np.ndarray) -> torch.Tensor:
            t = torch.from_numpy(codes.astype(np.int64))
            return torch.nn.functional.one_hot(t, 5)[..., :4].permute(0, 2, 1).float()

        return {
            "ref_seq": one_hot(self.ref_codes[idx]).to(device),
            "alt_seq": one_hot(self.alt_codes[idx]).to(device),
            "ref_tracks": torch.from_numpy(self.ref_tracks[idx]).to(device),
            "alt_tracks": torch.from_numpy(self.alt_tracks[idx]).to(device),
            "mask": torch.from_numpy(self.mask[idx].astype(np.float32)).to(device),
            "kind": torch.from_numpy(self.kind[idx]).to(device),
            "target": torch.from_numpy(self.target[idx].astype(np.float32)).to(device),
            "ref_psi": torch.from_numpy(self.ref_psi[idx].astype(np.float32)).to(device),
        }


# ---------------------------------------------------------------------------------------------
# building
# ---------------------------------------------------------------------------------------------
def exon_group_key(group: str) -> str:
    """One key per exon across data sets: a trailing ``:+`` / ``:-`` strand is dropped (Vex-seq writes
    ``chr:start-end:strand``, MaPSy ``chr:start-end``)."""
    return group[:-2] if group.endswith((":+", ":-")) else group


def prepare_table(frame: pl.DataFrame) -> pl.DataFrame:
    """The base columns of a loader table, filling what a plain ``id, ref_seq, alt_seq, exon_start, exon_end``
    table lacks: no target, kind ``delta_psi_percent``, group = id, source ``table``, no flanks, no reference PSI."""
    frame = check_variant_table(frame)
    defaults = {
        "target": pl.lit(None, dtype=pl.Float64),
        "target_kind": pl.lit("delta_psi_percent"),
        "group": pl.col("id").cast(pl.Utf8),
        "source": pl.lit("table"),
        "upstream": pl.lit(""),
        "downstream": pl.lit(""),
        "ref_psi": pl.lit(None, dtype=pl.Float64),
    }
    frame = frame.with_columns([v.alias(k) for k, v in defaults.items() if k not in frame.columns])
    extra = ["effect_type"] if "effect_type" in frame.columns else []
    return frame.select(
        pl.col("id").cast(pl.Utf8),
        pl.col("ref_seq").cast(pl.Utf8).str.to_uppercase(),
        pl.col("alt_seq").cast(pl.Utf8).str.to_uppercase(),
        pl.col("exon_start").cast(pl.Int64),
        pl.col("exon_end").cast(pl.Int64),
        pl.col("target").cast(pl.Float64),
        pl.col("target_kind").cast(pl.Utf8).fill_null("delta_psi_percent"),
        pl.col("group").cast(pl.Utf8).fill_null(pl.col("id").cast(pl.Utf8)),
        pl.col("source").cast(pl.Utf8).fill_null("table"),
        pl.col("upstream").cast(pl.Utf8).fill_null(""),
        pl.col("downstream").cast(pl.Utf8).fill_null(""),
        pl.col("ref_psi").cast(pl.Float64),
        *extra,
    )


def _window_start(ref_len: int, exon: tuple[int | None, int | None], variant: tuple[int, int], window: int) -> int:
    """First REF coordinate of the window (may be negative: upstream flank / N)."""
    v0, v1 = variant
    if exon[0] is not None and exon[1] is not None:
        start = (exon[0] + exon[1]) // 2 - window // 2
        if start <= v0 and max(v1, v0 + 1) <= start + window:
            return start
    return (v0 + max(v1, v0 + 1)) // 2 - window // 2


def aligned_alt_codes(ref_codes: np.ndarray, alt_codes: np.ndarray, p: int, s: int) -> np.ndarray:
    """ALT codes on REF coordinates ``[len(ref)]``: deleted REF positions N, inserted bases dropped."""
    lr, la = len(ref_codes), len(alt_codes)
    out = np.full(lr, _N, dtype=np.uint8)
    out[:p] = alt_codes[:p]
    if s:
        out[lr - s :] = alt_codes[la - s :]
    k = min(lr - s - p, la - s - p)
    out[p : p + k] = alt_codes[p : p + k]
    return out


def realign_shifted_indel(
    ref: str, alt: str, exon_start: int | None, exon_end: int | None, max_shift: int = 20, evidence: int = 10
) -> tuple[str, str, int | None, int | None] | None:
    """Undo a flank shift: equal-length REF / ALT that are one indel of ``d <= max_shift`` nt apart.

    Tables built with the exon at a fixed offset (Vex-seq: 100 nt of intron before the
    exon in both REF_SEQ and ALT_SEQ) represent an indel upstream of the exon as a
    shift of everything before it, with ``d`` extra (or fewer) genomic bases at the
    start of ALT; downstream of the exon, the shift is at the end. Returns the row as a
    plain indel -- ``(ref, alt, exon_start, exon_end)``, the genomic bases that only one
    of the sequences held added to the other (exon bounds moved with REF) -- or None when
    the row is not such a shift. At least ``evidence`` shifted bases must match exactly,
    so a true multi-nucleotide substitution is left alone.
    """
    from meta_layer_cli.artifacts.sequences import variant_span

    n = len(ref)
    if len(alt) != n:
        return None
    p, s = variant_span(ref, alt)
    if n - s - p < evidence:
        return None
    for d in range(1, max_shift + 1):
        v = n - s - d  # upstream deletion: alt = X(d) + ref[:v] + ref[v + d:]
        if v >= evidence and alt[d : d + v] == ref[:v]:
            moved = (None if exon_start is None else exon_start + d, None if exon_end is None else exon_end + d)
            return alt[:d] + ref, alt, *moved
        v = n - s  # upstream insertion: alt = ref[d:v] + I(d) + ref[v:]
        if v - d >= evidence and alt[: v - d] == ref[d:v]:
            return ref, ref[:d] + alt, exon_start, exon_end
        if n - d - p >= evidence and alt[p : n - d] == ref[p + d :]:  # downstream deletion: + Y(d) at the end
            return ref + alt[n - d :], alt, exon_start, exon_end
        if n - d - p >= evidence and alt[p + d :] == ref[p : n - d]:  # downstream insertion
            return ref, alt + ref[n - d :], exon_start, exon_end
    return None


def effect_type_labels(frame: pl.DataFrame, thresholds: dict[str, float] | None = None) -> np.ndarray:
    """Effect type index per row (:data:`EFFECT_TYPES`; -1 unknown).

    From an ``effect_type`` column where the table has one. Otherwise, for exon-inclusion
    assays (delta PSI, log2 ratio), an **approximation** from the measured change:
    ``|target| < threshold`` -> ``normal``; a decrease of at least the threshold ->
    ``exon_skipping``; an increase -> ``complex`` (more inclusion is none of the named
    effects). Binary splice-altering rows: 0 -> ``normal``, 1 -> unknown (-1).
    """
    thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    if "effect_type" in frame.columns:
        names = frame["effect_type"].to_list()
        bad = sorted({n for n in names if n is not None and n not in EFFECT_TYPES})
        if bad:
            raise InputDataError(f"unknown effect_type value(s) {bad} (known: {', '.join(EFFECT_TYPES)})")
        return np.array([EFFECT_TYPES.index(n) if n is not None else -1 for n in names], dtype=np.int64)
    out = np.full(frame.height, -1, dtype=np.int64)
    for i, (t, kind) in enumerate(zip(frame["target"].to_list(), frame["target_kind"].to_list())):
        if t is None or not np.isfinite(t):
            continue
        thr = thresholds[kind]
        if kind == "splice_altering":
            out[i] = EFFECT_TYPES.index("normal") if t < thr else -1
        elif abs(t) < thr:
            out[i] = EFFECT_TYPES.index("normal")
        else:
            out[i] = EFFECT_TYPES.index("exon_skipping" if t < 0 else "complex")
    return out


def build_variant_dataset(
    tables: pl.DataFrame | Sequence[pl.DataFrame],
    base_model,
    weights: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    window: int = DEFAULT_WINDOW,
    cache: PredictionCache | str | os.PathLike | None = None,
    delta_window: int = 50,
    thresholds: dict[str, float] | None = None,
    batch_size: int | None = None,
    realign: bool = True,
) -> VariantDataset:
    """Model inputs for every row of ``tables`` (see the module docstring for the layout).

    ``base_model``: a loaded base model or its name (with ``weights``, ``device``: ``auto``, ``cpu``, ``cuda[:N]``
    or ``mps``);
    ``cache``: a :class:`PredictionCache` or directory for base-model predictions;
    ``delta_window``: ``score_sequences``' window for the raw gain / loss deltas;
    ``realign``: realign flank-shifted indel rows (:func:`realign_shifted_indel`; only rows
    without ``upstream`` / ``downstream`` flanks).
    Rows without a target are kept (target NaN): scoring needs them, training drops them.
    """
    from meta_layer_cli.artifacts.sequences import alt_on_ref, predict_sequences, score_sequences, variant_span
    from meta_layer_cli.base_models import resolve_base_model

    if window <= 0:
        raise UsageError(f"window must be positive, got {window}")
    frames = [tables] if isinstance(tables, pl.DataFrame) else list(tables)
    if not frames:
        raise UsageError("no tables given")
    frame = pl.concat([prepare_table(f) for f in frames], how="diagonal_relaxed")
    if frame["id"].n_unique() != frame.height:
        dup = frame.filter(pl.col("id").is_duplicated())["id"][0]
        raise InputDataError(f"row ids are not unique across the tables (e.g. {dup!r})")
    unknown = sorted(set(frame["target_kind"].unique().to_list()) - set(TARGET_KINDS))
    if unknown:
        raise InputDataError(f"unknown target_kind {unknown} (known: {', '.join(TARGET_KINDS)})")
    model = resolve_base_model(base_model, weights, device)
    memory = MemoryCache(as_cache(cache))
    rows = frame.select("ref_seq", "alt_seq", "exon_start", "exon_end", "upstream", "downstream").rows()
    ext = {k: [] for k in ("ref_seq", "alt_seq", "exon_start", "exon_end", "upstream", "downstream")}
    starts = []  # window start in extended coordinates
    for i, (ref, alt, es, ee, up, down) in enumerate(rows):
        if not ref or not alt:
            raise InputDataError(f"row {i} ({frame['id'][i]}): empty ref_seq or alt_seq")
        if realign and not up and not down:
            ref, alt, es, ee = realign_shifted_indel(ref, alt, es, ee) or (ref, alt, es, ee)
        p, s = variant_span(ref, alt)
        w0 = _window_start(len(ref), (es, ee), (p, len(ref) - s), window)
        left = min(max(0, -w0), len(up))
        right = min(max(0, w0 + window - len(ref)), len(down))
        head, tail = up[len(up) - left :], down[:right]
        ext["ref_seq"].append(head + ref + tail)
        ext["alt_seq"].append(head + alt + tail)
        ext["exon_start"].append(None if es is None else es + left)
        ext["exon_end"].append(None if ee is None else ee + left)
        ext["upstream"].append(up[: len(up) - left])
        ext["downstream"].append(down[right:])
        starts.append(w0 + left)
    ext_frame = pl.DataFrame(
        {
            "id": frame["id"],
            **{k: pl.Series(k, v, dtype=pl.Int64 if k.startswith("exon") else pl.Utf8) for k, v in ext.items()},
        }
    )
    scored = score_sequences(ext_frame, base_model=model, window=delta_window, cache=memory, batch_size=batch_size)
    items_ref = list(zip(ext["ref_seq"], ext["upstream"], ext["downstream"]))
    items_alt = list(zip(ext["alt_seq"], ext["upstream"], ext["downstream"]))
    ref_scores, alt_scores = predict_sequences(model, items_ref, items_alt, memory, True, batch_size=batch_size)

    n, c = frame.height, len(model.channels)
    ref_codes = np.full((n, window), _N, dtype=np.uint8)
    alt_codes = np.full((n, window), _N, dtype=np.uint8)
    ref_tracks = np.zeros((n, c, window), dtype=np.float32)
    alt_tracks = np.zeros((n, c, window), dtype=np.float32)
    mask = np.zeros((n, 2, window), dtype=np.uint8)
    for i in range(n):
        ref, alt = ext["ref_seq"][i], ext["alt_seq"][i]
        p, s = variant_span(ref, alt)
        rc, ac = sequence_to_codes(ref), sequence_to_codes(alt)
        aligned = aligned_alt_codes(rc, ac, p, s)
        y_ref = ref_scores[i]
        y_alt = alt_on_ref(np.asarray(alt_scores[i], np.float32), len(ref), p, s)
        start = starts[i]
        lo, hi = max(0, start), min(len(ref), start + window)
        if hi > lo:
            dst = slice(lo - start, hi - start)
            ref_codes[i, dst] = rc[lo:hi]
            alt_codes[i, dst] = aligned[lo:hi]
            ref_tracks[i, :, dst] = y_ref[lo:hi].T
            alt_tracks[i, :, dst] = y_alt[lo:hi].T
        es, ee = ext["exon_start"][i], ext["exon_end"][i]
        if es is not None and ee is not None:
            a, b = max(es - start, 0), min(ee - start, window)
            if b > a:
                mask[i, 0, a:b] = 1
        if ref != alt:
            v0, v1 = p, len(ref) - s
            if v1 <= v0:  # pure insertion between v0 - 1 and v0
                v0, v1 = v0 - 1, v0 + 1
            a, b = max(v0 - start, 0), min(v1 - start, window)
            if b > a:
                mask[i, 1, a:b] = 1
    target = frame["target"].cast(pl.Float64).fill_null(float("nan")).to_numpy().astype(np.float64)
    ref_psi = frame["ref_psi"].fill_null(float("nan")).to_numpy().astype(np.float64)
    deltas = {
        k: scored[k].cast(pl.Float64).fill_null(float("nan")).to_numpy().astype(np.float64) for k in BASE_DELTA_COLUMNS
    }
    return VariantDataset(
        ids=np.asarray(frame["id"].to_list(), dtype=object),
        ref_codes=ref_codes,
        alt_codes=alt_codes,
        ref_tracks=ref_tracks,
        alt_tracks=alt_tracks,
        mask=mask,
        target=target,
        ref_psi=ref_psi,
        kind=np.array([TARGET_KINDS.index(k) for k in frame["target_kind"].to_list()], dtype=np.int64),
        effect=effect_type_labels(frame, thresholds),
        groups=np.asarray([exon_group_key(g) for g in frame["group"].to_list()], dtype=object),
        sources=np.asarray(frame["source"].to_list(), dtype=object),
        base_deltas=deltas,
        channels=list(model.channels),
        window=window,
        base_model=BaseModelRecord.of(model),
    )
