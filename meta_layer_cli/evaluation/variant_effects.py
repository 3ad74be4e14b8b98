"""A canonical meta-layer checkpoint judged on measured variant effects (``run_canonical_training(variant_sets=...)``).

For each row of a measured table (Vex-seq, MaPSy, ... as :mod:`meta_layer_cli.io.assays` loads them),
the base model's tracks of the reference and the variant sequence are recalibrated by the
checkpoint, and the change at the assayed exon's splice sites, ``meta(alt) − meta(ref)`` of the
acceptor at ``exon_start`` plus the donor at ``exon_end - 1``, is compared with the measured effect
(Pearson, Spearman; AUROC/AUPRC for ``|target| >=`` the kind's threshold). The base model's own
change at the same sites is reported beside it, on the same rows. Indel ALT tracks are put on REF
coordinates as SpliceAI does. The meta model sees N past the given sequence, as in training.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from meta_layer_cli.evaluation.variant_metrics import regression_metrics
from meta_layer_cli.features.variants import DEFAULT_THRESHOLDS
from meta_layer_cli.runtime.progress import Progress

if TYPE_CHECKING:
    from meta_layer_cli.runtime.device import DeviceLike


@dataclass
class VariantEffectEvaluation:
    """Per table: ``{"meta": metrics, "base": metrics}`` on the same rows (see the module docstring)."""

    sets: dict[str, dict[str, dict]]

    def to_dict(self) -> dict:
        return self.sets

    def summary(self) -> str:
        head = f"{'set':<16} {'rows':>6}  {'predictor':<26} {'Pearson':>8} {'Spearman':>8} {'AUROC':>7} {'AUPRC':>7}"
        lines = [head, "-" * len(head)]
        for name, both in self.sets.items():
            for label, key in (("meta(alt) - meta(ref)", "meta"), ("base(alt) - base(ref)", "base")):
                m = both[key]

                def f(k: str, m: dict = m) -> str:
                    v = m.get(k)
                    return f"{v:8.3f}" if isinstance(v, float) and math.isfinite(v) else f"{'-':>8}"

                lines.append(
                    f"{name:<16} {m['n']:>6}  {label:<26} {f('pearson')} {f('spearman')} "
                    f"{f('auroc')[1:]:>7} {f('auprc')[1:]:>7}"
                )
        return "\n".join(lines)


def _table(item, index: int) -> tuple[str, pl.DataFrame]:
    from meta_layer_cli.io.assays import load_assay
    from meta_layer_cli.io.tables import read_table

    if isinstance(item, pl.DataFrame):
        name = str(item["source"][0]) if "source" in item.columns and len(item) else f"set{index}"
        return name, item
    if isinstance(item, dict):
        spec = dict(item)
        loader = spec.pop("loader")
        return spec.pop("name", loader), load_assay(loader, **spec)
    return os.path.basename(str(item)), read_table(item)


def evaluate_canonical_on_variants(
    checkpoint: str | os.PathLike,
    variant_sets: Sequence,
    device: DeviceLike = None,
    models_dir: str | os.PathLike | None = None,
    cache=None,
    loaded: tuple | None = None,
    progress: bool = True,
) -> VariantEffectEvaluation:
    """meta(alt) - meta(ref) of a canonical checkpoint against measured effects, from the meta-layer as
    ``score-vcf`` applies it to a window (:class:`~meta_layer_cli.models.apply.CanonicalPredictor`: its
    calibration, no gene-structure decoder). ``loaded``: the checkpoint's ``(model, config)`` if the caller
    holds them (train-canonical, which has just loaded its best model)."""
    from meta_layer_cli.artifacts.cache import MemoryCache, as_cache
    from meta_layer_cli.artifacts.sequences import alt_on_ref, predict_sequences, variant_span
    from meta_layer_cli.io.sequence import sequence_to_codes
    from meta_layer_cli.models.apply import CanonicalPredictor
    from meta_layer_cli.models.checkpoint import CanonicalCheckpoint, load_model

    model, config = loaded if loaded is not None else load_model(checkpoint, device)
    records = CanonicalCheckpoint.read(checkpoint, config).base_records
    meta = CanonicalPredictor.of(model, config, device)
    bases = [r.load(device=device, models_dir=models_dir) for r in records]
    memory = MemoryCache(as_cache(cache))
    out: dict[str, dict[str, dict]] = {}
    for i, item in enumerate(variant_sets):
        name, frame = _table(item, i)
        frame = frame.filter(
            pl.col("exon_start").is_not_null() & pl.col("exon_end").is_not_null() & pl.col("target").is_not_null()
        )
        if frame.is_empty():
            continue
        n = len(frame)
        ups = frame["upstream"].fill_null("").to_list() if "upstream" in frame.columns else [""] * n
        downs = frame["downstream"].fill_null("").to_list() if "downstream" in frame.columns else [""] * n
        refs = list(zip(frame["ref_seq"].to_list(), ups, downs))
        alts = list(zip(frame["alt_seq"].to_list(), ups, downs))
        with Progress(f"{name}: base model on {n:,} ref/alt pairs", enabled=progress):  # says when it starts
            per_base = [predict_sequences(b, refs, alts, memory, batched=True) for b in bases]
        meta_delta = np.full(n, np.nan)
        base_delta = np.full(n, np.nan)
        starts, ends = frame["exon_start"].to_list(), frame["exon_end"].to_list()
        with Progress(f"{name}: meta-layer on ref/alt pairs", total=n, unit="rows", enabled=progress) as bar:
            for row in range(n):
                bar.update(1)
                ref, alt = refs[row][0], alts[row][0]
                acc, don = int(starts[row]), int(ends[row]) - 1
                if not (0 <= acc < len(ref) and 0 <= don < len(ref)):
                    continue  # the exon's sites are not in the sequence: no delta, and no model pass for it
                t_ref = np.concatenate([p[0][row] for p in per_base], axis=1).T.astype(np.float32)
                t_alt = np.concatenate([p[1][row] for p in per_base], axis=1).T.astype(np.float32)
                m_ref = meta(sequence_to_codes(ref), t_ref, whole_gene=False)
                m_alt = meta(sequence_to_codes(alt), t_alt, whole_gene=False)
                p, s = variant_span(ref, alt)
                m_alt = alt_on_ref(m_alt, len(ref), p, s)
                meta_delta[row] = (m_alt[acc, 1] - m_ref[acc, 1]) + (m_alt[don, 2] - m_ref[don, 2])
                b_ref, b_alt = per_base[0][0][row], alt_on_ref(per_base[0][1][row], len(ref), p, s)
                if records[0].channels[:3] == ("neither", "acceptor", "donor"):
                    base_delta[row] = (b_alt[acc, 1] - b_ref[acc, 1]) + (b_alt[don, 2] - b_ref[don, 2])
        kinds = frame["target_kind"].to_list() if "target_kind" in frame.columns else ["delta_psi_percent"] * n
        threshold = DEFAULT_THRESHOLDS.get(max(set(kinds), key=kinds.count), 20.0)
        target = frame["target"].cast(pl.Float64).to_numpy()
        out[name] = {
            "meta": regression_metrics(meta_delta, target, threshold),
            "base": regression_metrics(base_delta, target, threshold),
        }
    return VariantEffectEvaluation(out)
