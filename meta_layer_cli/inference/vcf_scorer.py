"""Scoring chunks of VCF records (:class:`VariantScorer`): triage, shared reference regions, ALT tracks.

Speed: every reference track is N-masked outside one gene, so it depends only on
the gene, not on the variant. ``score_vcf`` predicts each gene's masked
reference once per region of nearby variants and slices it for every variant
there. Each ALT track (SNV or indel) is computed from that region's reference
activations, recomputing only the cone of positions the variant changes
(:mod:`meta_layer_cli.base_models.incremental`, about a quarter of a window's work).
The outputs equal the one-at-a-time definition (``batched=False`` runs that
path) up to float rounding of the network.

With a meta-layer checkpoint (``margin`` > 0) the same pass predicts ``margin`` more rows each
side of the +-D window, which is what the meta model reads around it: its ``MetaLayer=`` deltas
reuse these tracks instead of running the base model again (:mod:`meta_layer_cli.inference.vcf_models`).

The definition of the scores: :mod:`meta_layer_cli.inference.vcf`.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from meta_layer_cli.artifacts.windows import predict_windows
from meta_layer_cli.base_models.incremental import Substitution, predict_reference_and_substitutions
from meta_layer_cli.inference.spliceai_format import (
    gain_loss_entry,
    mask_outside_gene,
    spliceai_entry,
    spliceai_normalize,
)
from meta_layer_cli.io.annotation import GeneIndex
from meta_layer_cli.io.fasta import Fasta
from meta_layer_cli.io.sequence import reverse_complement, sequence_to_codes
from meta_layer_cli.io.vcf import VcfRecord

logger = logging.getLogger(__name__)

#: ``MetaLayerSkip`` values and what they mean.
SKIP_REASONS = {
    "malformed": "the line could not be parsed as a VCF record",
    "no_alt": "ALT is '.'",
    "contig_not_in_fasta": "CHROM is not a contig of the reference FASTA",
    "outside_genes": "POS lies in no annotated transcript",
    "ref_mismatch": "REF differs from the reference FASTA",
    "near_contig_end": "the scoring window runs past a contig end",
    "ref_too_long": "REF is longer than 2*D",
    "symbolic_allele": "ALT is symbolic (<DEL>, *, ., breakend) and was not scored",
}
SKIP_INFO = (
    '##INFO=<ID=MetaLayerSkip,Number=1,Type=String,Description="Why metalayer left this record '
    "(or some of its ALT alleles) without a SpliceAI entry: " + ", ".join(SKIP_REASONS) + '">'
)
MAX_WARNINGS_PER_REASON = 20


@dataclass
class ScoringTask:
    """One (record, ALT allele, gene) to score."""

    record: int
    slot: int
    gene: int
    chrom: str
    pos: int
    ref_len: int
    allele: str


@dataclass
class _Region:
    """A gene region's masked reference input (read on ``strand``), starting at 0-based ``start0``."""

    codes: np.ndarray
    start0: int
    strand: str


_MAX_REGION = 30_000  # output nt per shared reference region (bounds the activations kept)


def _short(text: str, limit: int = 20) -> str:
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} nt)"


def _is_symbolic(alt: str) -> bool:
    return any(c in alt for c in ".-*<>[]")


class VariantScorer:
    """Scores chunks of VCF records (see the module docstring for the definition)."""

    def __init__(
        self,
        model,
        fasta: Fasta,
        genes: GeneIndex,
        distance: int,
        mask: bool,
        cache,
        batch_size,
        incremental: bool = True,
        margin: int = 0,
    ):
        self.model = model
        self.incremental = incremental
        self.fasta = fasta
        self.genes = genes
        self.distance = distance
        self.mask = mask
        self.cache = cache
        self.batch_size = batch_size
        self.half_window = model.context + distance  # wid // 2: what decides near_contig_end, as in SpliceAI
        self.margin = margin  # rows predicted beyond +-D each side, for a meta model that reads them
        self.span = distance + margin  # the tracks cover POS - span .. POS + span
        channels = tuple(model.channels)
        self.splice_channels = (
            (channels.index("acceptor"), channels.index("donor"))
            if "acceptor" in channels and "donor" in channels
            else None
        )
        self.skipped: Counter[str] = Counter()
        self.warned: Counter[str] = Counter()
        self.stats = Counter()

    # -- record triage ----------------------------------------------------------------------
    def _skip(self, record: VcfRecord, reason: str, detail: str = "") -> str:
        self.skipped[reason] += 1
        self.warned[reason] += 1
        if self.warned[reason] <= MAX_WARNINGS_PER_REASON:
            what = f"{record.columns[0]}:{record.columns[1]} {_short(record.columns[3])}>{_short(record.columns[4])}"
            logger.warning(f"line {record.line_number}: {what} not scored ({reason}{': ' + detail if detail else ''})")
        return reason

    def triage(self, index: int, record: VcfRecord, tasks: list[ScoringTask]) -> tuple[list, str | None]:
        """Entries (str or task slot) for one record, and its skip reason (or None)."""
        if record.error is not None:
            return [], self._skip(record, "malformed", record.error)
        if not record.alts:
            return [], self._skip(record, "no_alt")
        chrom, pos, ref = record.chrom, record.pos, record.ref
        if chrom not in self.fasta:
            return [], self._skip(record, "contig_not_in_fasta")
        gene_ix = self.genes.overlapping(chrom, pos)
        if not gene_ix:
            return [], self._skip(record, "outside_genes")
        length = self.fasta.length(chrom)
        w = self.half_window
        reference = self.fasta.fetch(chrom, pos - 1, pos - 1 + len(ref))
        if reference != ref:
            return [], self._skip(record, "ref_mismatch", f"reference has {_short(reference)}")
        if pos - 1 - w < 0 or pos + w > length:
            return [], self._skip(record, "near_contig_end")
        if len(ref) > 2 * self.distance:
            return [], self._skip(record, "ref_too_long")
        entries: list = []
        symbolic = False
        for allele in record.alts:
            for g in gene_ix:
                if _is_symbolic(allele):
                    symbolic = True
                    continue
                if len(ref) > 1 and len(allele) > 1:
                    entries.append(f"{allele}|{self.genes.genes[g].name}|.|.|.|.|.|.|.|.")
                    continue
                entries.append(len(tasks))
                tasks.append(ScoringTask(index, len(tasks), g, chrom, pos, len(ref), allele))
        if symbolic:
            return entries, self._skip(record, "symbolic_allele")
        return entries, None

    # -- predictions --------------------------------------------------------------------------
    def codes(self, seq: str, strand: str) -> np.ndarray:
        """``seq`` (genomic order) as codes read on ``strand`` (the model reads a minus-strand gene 5'->3')."""
        return sequence_to_codes(reverse_complement(seq) if strand == "-" else seq)

    def fetch_padded(self, chrom: str, start0: int, end0: int) -> str:
        """``fasta[chrom][start0:end0]`` with N where the range leaves the contig (only the margin of a meta
        model can: the +-D window itself is checked by :meth:`triage`)."""
        length = self.fasta.length(chrom)
        lo, hi = max(start0, 0), min(end0, length)
        seq = self.fasta.fetch(chrom, lo, hi) if hi > lo else ""
        return "N" * (lo - start0) + seq + "N" * (end0 - max(hi, lo))

    def _windows(self, task: ScoringTask) -> tuple[str, str]:
        """(REF, ALT) input windows of a task, genomic order: POS +- (span + context), N outside the gene."""
        gene = self.genes.genes[task.gene]
        w = self.model.context + self.span
        window = spliceai_normalize(self.fetch_padded(task.chrom, task.pos - 1 - w, task.pos + w))
        x_ref = mask_outside_gene(window, task.pos - 1 - w, gene)
        x_alt = x_ref[:w] + spliceai_normalize(task.allele) + x_ref[w + task.ref_len :]
        return x_ref, x_alt

    def _ref_regions(self, tasks: Sequence[ScoringTask]) -> tuple[list[_Region], list[tuple[int, int]]]:
        """Masked reference inputs, one per region of nearby variants of a gene.

        Returns the regions and, per task, (region index, row of POS-D in the region's prediction).
        """
        d, c = self.span, self.model.context
        by_gene: dict[int, list[ScoringTask]] = defaultdict(list)
        for t in tasks:
            by_gene[t.gene].append(t)
        out: list[_Region] = []
        where: dict[int, tuple[int, int]] = {}
        for g, gtasks in by_gene.items():
            gene = self.genes.genes[g]
            gtasks.sort(key=lambda t: t.pos)
            groups: list[list] = []  # [first, last (1-based output positions), tasks]
            for t in gtasks:
                lo, hi = t.pos - d, t.pos + d + t.ref_len - 1  # a deletion's ALT sees REF past POS + D
                if groups and lo <= groups[-1][1] + c and hi - groups[-1][0] < _MAX_REGION:
                    groups[-1][1] = max(groups[-1][1], hi)
                    groups[-1][2].append(t)
                else:
                    groups.append([lo, hi, [t]])
            for first, last, rtasks in groups:
                start0 = first - 1 - c
                seq = mask_outside_gene(
                    spliceai_normalize(self.fetch_padded(gene.chrom, start0, last + c)), start0, gene
                )
                self.stats["ref_nt"] += last - first + 1
                for t in rtasks:
                    # on the minus strand the prediction runs 3'->5'; its row k is position last - k
                    where[t.slot] = (len(out), last - (t.pos + d) if gene.strand == "-" else t.pos - d - first)
                out.append(_Region(self.codes(seq, gene.strand), start0, gene.strand))
        return out, [where[t.slot] for t in tasks]

    def _batched(self, tasks: Sequence[ScoringTask]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Reference (one prediction per region) and ALT tracks, in genomic order.

        With ``incremental``, every ALT track is computed from its region's reference
        activations (see :mod:`meta_layer_cli.base_models.incremental`); otherwise ALT windows
        are predicted whole, deduplicated and batched.
        """
        regions, where = self._ref_regions(tasks)
        model, cache, d = self.model, self.cache, self.span
        cov = 2 * d + 1
        self.stats["alt_windows"] += len(tasks)
        alts: list[np.ndarray | None] = [None] * len(tasks)
        ref_scores: list[np.ndarray | None] = [None] * len(regions)
        spliced = self.incremental and hasattr(model, "ensemble_members")
        alt_codes: dict[int, np.ndarray] = {}
        if cache is not None or not spliced:  # whole-window keys: cached results are shared by every path
            alt_codes = {i: self.codes(self._windows(t)[1], regions[where[i][0]].strand) for i, t in enumerate(tasks)}
        if not spliced:
            for i, p in enumerate(
                predict_windows(model, [alt_codes[i] for i in range(len(tasks))], cache, self.batch_size)
            ):
                alts[i] = p
        members: dict[int, list[int]] = defaultdict(list)
        for i in range(len(tasks)):
            members[where[i][0]].append(i)
        plain: list[int] = []
        for r, region in enumerate(regions):
            todo = members[r] if spliced else []
            hit = cache.get(model, region.codes) if cache is not None else None
            alt_hits = [cache.get(model, alt_codes[i]) for i in todo] if cache is not None else [None]
            if hit is not None and all(h is not None for h in alt_hits):
                ref_scores[r] = hit
                for i, h in zip(todo, alt_hits):
                    alts[i] = h
                continue
            if not todo:
                plain.append(r)
                continue
            subs = []
            for i in todo:
                t = tasks[i]
                v, block = t.pos - 1 - region.start0, spliceai_normalize(t.allele)
                if region.strand == "-":
                    v, block = len(region.codes) - v - t.ref_len, reverse_complement(block)
                subs.append(Substitution(v, sequence_to_codes(block), t.ref_len))
            ref, outs = predict_reference_and_substitutions(model, region.codes, subs, d, self.batch_size or 64)
            self.stats["spliced_alts"] += len(todo)
            ref_scores[r] = ref
            for i, out in zip(todo, outs):
                t = tasks[i]
                n_alt = cov - t.ref_len + len(t.allele)  # the rows SpliceAI's ALT window has
                alts[i] = out[t.ref_len - 1 : t.ref_len - 1 + n_alt] if region.strand == "-" else out[:n_alt]
            if cache is not None:
                cache.put(model, region.codes, ref)
                for i in todo:
                    cache.put(model, alt_codes[i], alts[i])
        for r, p in zip(plain, predict_windows(model, [regions[r].codes for r in plain], cache, self.batch_size)):
            ref_scores[r] = p
        refs = []
        for region_index, row in where:
            y = ref_scores[region_index][row : row + cov]
            refs.append(y[::-1] if regions[region_index].strand == "-" else y)
        alts = [a[::-1] if regions[r].strand == "-" else a for a, (r, _) in zip(alts, where)]
        return refs, alts

    def _naive(self, tasks: Sequence[ScoringTask], allele: int) -> list[np.ndarray]:
        """Each task's whole REF (``allele`` 0) or ALT (1) window predicted on its own: the definition."""
        out = []
        for t in tasks:
            strand = self.genes.genes[t.gene].strand
            p = self.model.predict_codes(self.codes(self._windows(t)[allele], strand))
            out.append(p[::-1] if strand == "-" else p)
        return out

    def tracks(self, tasks: Sequence[ScoringTask], batched: bool) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per task the REF track ``[2*span + 1, C]`` and the ALT track (``len(ALT) - len(REF)`` rows more),
        genomic order, covering POS - span .. POS + span (``span`` = D + ``margin``)."""
        if not tasks:
            return [], []
        return self._batched(tasks) if batched else (self._naive(tasks, 0), self._naive(tasks, 1))

    def entries(
        self, tasks: Sequence[ScoringTask], refs: Sequence[np.ndarray], alts: Sequence[np.ndarray]
    ) -> list[str]:
        """The ``SpliceAI=`` entry of each task from its :meth:`tracks`: the +-D rows around POS."""
        m = self.margin
        out = []
        for t, y_ref, y_alt in zip(tasks, refs, alts):
            y_ref, y_alt = y_ref[m : len(y_ref) - m], y_alt[m : len(y_alt) - m]
            gene = self.genes.genes[t.gene]
            if self.splice_channels is not None:
                bounds = gene.boundaries - t.pos
                dist_exon_bdry = bounds[np.argmin(np.abs(bounds))]
                acc, don = self.splice_channels
                entry = spliceai_entry(
                    t.allele, gene.name, y_ref, y_alt, t.ref_len, dist_exon_bdry, self.mask, acc, don
                )
                out.append(entry)
            else:
                positions = np.arange(t.pos - self.distance, t.pos + self.distance + 1)
                annotated = np.isin(positions, gene.boundaries)
                out.append(gain_loss_entry(t.allele, gene.name, y_ref, y_alt, t.ref_len, annotated, self.mask))
        return out
