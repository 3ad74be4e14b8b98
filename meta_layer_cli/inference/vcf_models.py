"""``score_vcf(..., checkpoints=...)``: the ``MetaLayer=`` INFO field.

One entry per SpliceAI entry (ALT allele x overlapping gene, same order)::

    MetaLayer=ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL|P_SA|EFFECT|DPSI

``DS_*`` / ``DP_*``
    SpliceAI's delta definition (window of +-D, indel realignment, ``-M 1``
    masking; :func:`~meta_layer_cli.inference.spliceai_format.spliceai_entry`) applied to
    the meta-layer's recalibrated acceptor/donor probabilities, meta(alt) -
    meta(ref), from a ``metalayer train`` checkpoint. The meta model sees the
    base model's tracks over ``+-(D + its receptive field)`` around the variant,
    predicted on the same gene-masked windows SpliceAI scores: the scorer's one
    pass of the base model covers that wider span (:attr:`VcfCheckpoints.margin`),
    so the base model runs once per variant, not once more for the meta layer.
``P_SA``, ``EFFECT``, ``DPSI``
    the variant models' outputs (``train-delta`` checkpoints, see
    :mod:`meta_layer_cli.inference.variant_models`): probability splice-altering,
    most likely effect type, predicted delta PSI (percent). They read the exon
    that contains the variant, or the nearest exon within
    :data:`MAX_EXON_DISTANCE` nt, as ``predict --variants`` reads an assay row: the
    exon plus :data:`EXON_FLANK` nt each side, on the gene's strand, with real
    genomic context; farther variants get ``.``, as do fields no given
    checkpoint provides.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from meta_layer_cli.inference.spliceai_format import mask_outside_gene, spliceai_entry, spliceai_normalize
from meta_layer_cli.inference.vcf_scorer import ScoringTask, VariantScorer
from meta_layer_cli.runtime.errors import UsageError

META_INFO = (
    '##INFO=<ID=MetaLayer,Number=.,Type=String,Description="metalayer meta-layer variant annotation: '
    "SpliceAI-style delta scores and positions of the recalibrated probabilities, meta(alt) - meta(ref), "
    "then the variant models' probability splice-altering, effect type and predicted delta PSI (percent); "
    "'.' where not available. "
    'Format: ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL|P_SA|EFFECT|DPSI">'
)

if TYPE_CHECKING:
    from meta_layer_cli.runtime.device import DeviceLike
EXON_FLANK = 100  # intron nt each side of the exon, as in the Vex-seq / MaPSy constructs
MAX_EXON_DISTANCE = 300  # variant models are trained on exons and their near flanks only
SCORE_VCF_RUNS_ONE = "score-vcf runs one base model"
_EMPTY_DELTAS = "|".join(["."] * 8)
_EMPTY_MODELS = ".|.|."


@dataclass
class VcfCheckpoints:
    """The checkpoints given to ``score_vcf``: at most one meta model and any variant models."""

    meta: object | None  # a CanonicalPredictor (model, decoder, calibration)
    predictors: list
    device: DeviceLike = None

    @property
    def margin(self) -> int:
        """Base-model rows the meta model reads beyond each side of the +-D window (0 without a meta model)."""
        from meta_layer_cli.models.apply import model_margin

        return model_margin(self.meta.model) if self.meta is not None else 0

    @staticmethod
    def base_record(paths: Sequence[str | os.PathLike]):
        """The base model the first of ``paths`` was trained on (a
        :class:`~meta_layer_cli.base_models.record.BaseModelRecord`): what ``score-vcf --checkpoint`` runs when
        no ``--base-model`` is given. :meth:`load` then checks every checkpoint against it."""
        from meta_layer_cli.inference.variant_models import checkpoint_record
        from meta_layer_cli.models.checkpoint import CanonicalCheckpoint, read_checkpoint_config

        config = read_checkpoint_config(paths[0])
        if config.get("kind") == "variant_model":
            return checkpoint_record(config, str(paths[0]))
        return CanonicalCheckpoint.read(paths[0], config).single_base_record(SCORE_VCF_RUNS_ONE)

    @classmethod
    def load(cls, paths: Sequence[str | os.PathLike], base_model, device: DeviceLike = None) -> VcfCheckpoints:
        """Sort ``paths`` into a meta-layer checkpoint and variant-model checkpoints; check their base model."""
        from meta_layer_cli.inference.variant_models import load_variant_predictor
        from meta_layer_cli.models.apply import CanonicalPredictor
        from meta_layer_cli.models.checkpoint import CanonicalCheckpoint, read_checkpoint_config

        meta, predictors = None, []
        for path in paths:
            config = read_checkpoint_config(path)
            if config.get("kind") == "variant_model":
                pred = load_variant_predictor(path, device)
                pred.check_base_model(base_model)
                predictors.append(pred)
                continue
            if meta is not None:
                raise UsageError(f"{path}: a second meta-layer checkpoint (give one, plus any variant models)")
            CanonicalCheckpoint.read(path, config).single_base_record(SCORE_VCF_RUNS_ONE).require(base_model, str(path))
            meta = CanonicalPredictor.load(path, device)  # with its calibration, if `metalayer calibrate` made it
        return cls(meta, predictors, device)

    def entries(
        self,
        scorer: VariantScorer,
        tasks: Sequence[ScoringTask],
        refs: Sequence[np.ndarray],
        alts: Sequence[np.ndarray],
    ) -> list[str]:
        """One ``MetaLayer`` entry per task (same order as the ``SpliceAI`` entries); ``refs``/``alts``: the
        scorer's base-model tracks of the tasks (:meth:`VariantScorer.tracks`, with :attr:`margin`)."""
        if not tasks:
            return []
        deltas = self._meta_deltas(scorer, tasks, refs, alts) if self.meta is not None else [None] * len(tasks)
        models = self._model_fields(scorer, tasks) if self.predictors else [_EMPTY_MODELS] * len(tasks)
        out = []
        for t, d, m in zip(tasks, deltas, models):
            head = d if d is not None else f"{t.allele}|{scorer.genes.genes[t.gene].name}|{_EMPTY_DELTAS}"
            out.append(f"{head}|{m}")
        return out

    # -- meta-layer deltas ------------------------------------------------------------------
    def _meta_deltas(
        self,
        scorer: VariantScorer,
        tasks: Sequence[ScoringTask],
        refs: Sequence[np.ndarray],
        alts: Sequence[np.ndarray],
    ) -> list[str]:
        """meta(REF) and meta(ALT) over POS +- (D + margin), from the scorer's tracks; the +-D rows give the
        entry."""
        m = self.margin
        if scorer.margin != m:
            raise ValueError(f"the scorer predicted {scorer.margin} extra rows; the meta model needs {m}")
        s = scorer.span
        out = []
        for t, ref_track, alt_track in zip(tasks, refs, alts):
            gene = scorer.genes.genes[t.gene]
            x_ref = mask_outside_gene(
                spliceai_normalize(scorer.fetch_padded(t.chrom, t.pos - 1 - s, t.pos + s)), t.pos - 1 - s, gene
            )
            x_alt = x_ref[:s] + spliceai_normalize(t.allele) + x_ref[s + t.ref_len :]
            probs = []
            for seq, track in ((x_ref, ref_track), (x_alt, alt_track)):
                minus = gene.strand == "-"
                # the model reads the gene's strand 5'->3'; the scorer's tracks are in genomic order
                # a window, not a whole gene: the calibration applies, the gene-structure decoder does not
                p = self.meta(scorer.codes(seq, gene.strand), (track[::-1] if minus else track).T, whole_gene=False)
                p = p[::-1] if minus else p  # back to genomic order
                probs.append(p[m : len(p) - m].astype(np.float64))
            bounds = gene.boundaries - t.pos
            nearest = bounds[np.argmin(np.abs(bounds))]
            out.append(spliceai_entry(t.allele, gene.name, probs[0], probs[1], t.ref_len, nearest, scorer.mask))
        return out

    # -- variant models ---------------------------------------------------------------------
    def _model_fields(self, scorer: VariantScorer, tasks: Sequence[ScoringTask]) -> list[str]:
        from meta_layer_cli.artifacts.cache import MemoryCache
        from meta_layer_cli.features.variants import build_variant_dataset
        from meta_layer_cli.inference.variant_models import predict_table_columns

        rows, where = [], []
        for i, t in enumerate(tasks):
            row = _exon_row(scorer, t, f"task{i}")
            if row is not None:
                rows.append(row)
                where.append(i)
        out = [_EMPTY_MODELS] * len(tasks)
        if not rows:
            return out
        frame = pl.DataFrame(rows)
        memory = MemoryCache(scorer.cache)
        datasets = {
            w: build_variant_dataset(
                frame, scorer.model, window=w, cache=memory, delta_window=self.predictors[0].run.get("delta_window", 50)
            )
            for w in sorted({p.window for p in self.predictors})
        }
        cols = predict_table_columns(self.predictors, datasets, self.device)
        n = len(rows)
        p_sa = cols.get("p_splice_altering", np.full(n, np.nan))
        effect = cols.get("effect_type", np.full(n, None, dtype=object))
        dpsi = cols.get("predicted_delta_psi", np.full(n, np.nan))
        for k, i in enumerate(where):
            out[i] = "|".join(
                [
                    f"{p_sa[k]:.3f}" if np.isfinite(p_sa[k]) else ".",
                    str(effect[k]) if effect[k] is not None else ".",
                    f"{dpsi[k]:.1f}" if np.isfinite(dpsi[k]) else ".",
                ]
            )
        return out


def _exon_row(scorer: VariantScorer, t: ScoringTask, row_id: str) -> dict | None:
    """A ``predict --variants`` row for the exon a variant belongs to (module docstring), or None."""
    from meta_layer_cli.io.sequence import reverse_complement

    gene = scorer.genes.genes[t.gene]
    if gene.exons is None or not len(gene.exons):
        return None
    first, last = gene.exons[:, 0], gene.exons[:, 1]
    v_lo, v_hi = t.pos, t.pos + t.ref_len - 1
    gap = np.maximum(np.maximum(first - v_hi, v_lo - last), 0)  # 0 when the variant touches the exon
    k = int(np.argmin(gap))
    if gap[k] > MAX_EXON_DISTANCE:
        return None
    e0, e1 = int(first[k]), int(last[k])
    lo = min(e0 - EXON_FLANK, v_lo - 1)  # 1-based inclusive span of ref_seq
    hi = max(e1 + EXON_FLANK, v_hi + 1)
    c = scorer.model.context
    span0 = lo - 1 - c
    seq = mask_outside_gene(spliceai_normalize(scorer.fetch_padded(t.chrom, span0, hi + c)), span0, gene)
    up, ref, down = seq[:c], seq[c : len(seq) - c], seq[len(seq) - c :]
    v = t.pos - lo
    alt = ref[:v] + spliceai_normalize(t.allele) + ref[v + t.ref_len :]
    exon_start, exon_end = e0 - lo, e1 - lo + 1
    if gene.strand == "-":
        up, down = reverse_complement(down), reverse_complement(up)
        exon_start, exon_end = len(ref) - exon_end, len(ref) - exon_start
        ref, alt = reverse_complement(ref), reverse_complement(alt)
    return {
        "id": row_id,
        "ref_seq": ref,
        "alt_seq": alt,
        "exon_start": exon_start,
        "exon_end": exon_end,
        "upstream": up,
        "downstream": down,
    }
