"""Variant effect scores in a genome from any base model: ``score_vcf`` (SpliceAI-compatible
VCF annotation). Ref/alt sequence pairs without a genome (splicing assays) are scored by
:func:`meta_layer_cli.artifacts.sequences.score_sequences`.

``score_vcf``: the SpliceAI definition
--------------------------------------
With ``base_model="spliceai"`` the ``SpliceAI=ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|
DP_AG|DP_AL|DP_DG|DP_DL`` INFO field is computed exactly as ``spliceai`` 1.3.1
(``spliceai.utils.get_delta_scores``) computes it:

* a variant is scored against every annotated gene whose transcript span
  (``TX_START + 1 .. TX_END``, 1-based inclusive) contains its POS, one entry per
  ALT allele x gene, alleles outer, genes in annotation order;
* the reference window is ``wid = 2*context + 2*D + 1`` nt centred on POS, with
  every base outside the gene's transcript span replaced by N; the ALT window is
  that window with REF replaced by ALT; both are read on the gene's strand;
* scores cover the ``2*D + 1`` positions centred on POS; for a deletion
  (``len(REF) > 1``, ``len(ALT) == 1``) the ALT track gets ``len(REF) - 1`` zero
  rows after the anchor, for an insertion (``len(REF) == 1``, ``len(ALT) > 1``) the
  anchor and inserted rows collapse into their maximum; ``len(REF) > 1`` and
  ``len(ALT) > 1`` gives ``ALT|SYMBOL|.|.|.|.|.|.|.|.``;
* ``DS_AG = max(alt - ref)`` of the acceptor track and ``DP_AG`` its offset
  from POS (likewise AL = ``max(ref - alt)``, DG, DL on the donor track),
  formatted with 2 decimals; with ``mask=True`` a gain at the nearest annotated
  exon boundary and a loss anywhere else are set to 0 (SpliceAI's -M 1);
* sequence characters are encoded as SpliceAI encodes them: case-insensitive,
  N (and, as in its ``one_hot_encode``, any other letter whose code ``% 5`` is 0)
  as all-zero, other IUPAC letters as the base their code ``% 5`` selects.

Records SpliceAI would skip are skipped the same way (no ``SpliceAI`` entry) and
flagged ``MetaLayerSkip=REASON`` (see :data:`SKIP_REASONS`).

Deliberate deviations from the official tool, none of which changes a score it
produces: a record with at least one ALT allele that was not scored is flagged
``MetaLayerSkip``; breakend ALTs (``G]17:1]``) count as symbolic (SpliceAI would
score the bracket text as sequence); exon lists without a trailing comma keep
their last exon (SpliceAI drops it); a contig missing from the FASTA is a skip
(SpliceAI crashes when the annotation names it); chromosome names are matched
with and without ``chr`` (``chrM`` == ``MT``).

Other base models fill the same fields from their own tracks. Models with
acceptor/donor channels (OpenSpliceAI) use exactly the definition above with
their own context. Pangolin's channels are tissues (splice-site probability in
heart, liver, brain, testis) with no acceptor/donor split, so, as Pangolin
scores variants, each position's gain is the largest per-tissue increase and its
loss the largest per-tissue decrease (``max_t`` / ``min_t`` of ``alt_t - ref_t``):
``DS_AG = DS_DG`` = the largest gain in the window, ``DS_AL = DS_DL`` = minus the
largest loss, with their offsets; with ``mask=True`` gains at annotated exon
boundaries and losses elsewhere are zeroed position-wise before the maximum (as
Pangolin masks).

Speed: every reference track is N-masked outside one gene, so it depends only on
the gene, not on the variant. ``score_vcf`` predicts each gene's masked
reference once per region of nearby variants and slices it for every variant
there. Each ALT track (SNV or indel) is computed from that region's reference
activations, recomputing only the cone of positions the variant changes
(:mod:`meta_layer_cli.base_models.incremental`, about a quarter of a window's work).
The outputs equal the one-at-a-time definition (``batched=False`` runs that
path) up to float rounding of the network.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from meta_layer_cli.artifacts.cache import PredictionCache, as_cache
from meta_layer_cli.base_models import resolve_base_model
from meta_layer_cli.base_models.incremental import Substitution, predict_reference_and_substitutions
from meta_layer_cli.io.contigs import strip_chr
from meta_layer_cli.io.fasta import Fasta
from meta_layer_cli.io.sequence import codes_to_one_hot, reverse_complement, sequence_to_codes
from meta_layer_cli.io.vcf import VcfHeader, VcfReader, VcfRecord, VcfWriter

logger = logging.getLogger(__name__)

SPLICEAI_INFO = (
    '##INFO=<ID=SpliceAI,Number=.,Type=String,Description="SpliceAIv1.3.1 variant '
    "annotation. These include delta scores (DS) and delta positions (DP) for "
    "acceptor gain (AG), acceptor loss (AL), donor gain (DG), and donor loss (DL). "
    'Format: ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL">'
)

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
_MAX_WARNINGS_PER_REASON = 20


# --------------------------------------------------------------------------------------------
# SpliceAI's sequence encoding
# --------------------------------------------------------------------------------------------
def _spliceai_table() -> dict[int, str]:
    # spliceai.utils.one_hot_encode: upper(); A,C,G,T,N -> 1,2,3,4,0; every byte then taken % 5,
    # row 0 all-zero. Other letters land on whichever base their byte code % 5 selects.
    table = {}
    for code in range(128):
        ch = chr(code).upper()
        table[code] = ch if ch in "ACGTN" else "NACGT"[ord(ch) % 5]
    return table


_SPLICEAI_TRANSLATE = str.maketrans(_spliceai_table())


def spliceai_normalize(seq: str) -> str:
    """Rewrite ``seq`` with A/C/G/T/N only, so that metalayer's one-hot encoding equals SpliceAI's."""
    return seq.translate(_SPLICEAI_TRANSLATE)


# --------------------------------------------------------------------------------------------
# Gene annotation in SpliceAI's terms
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VariantGene:
    """A gene as SpliceAI's annotator sees it (1-based, inclusive coordinates).

    ``boundaries``: sorted union of exon starts (first exonic nt) and exon ends
    (last exonic nt), the sites ``-M 1`` masking refers to. ``exons``: ``[n, 2]``
    (first, last) exonic nt of each exon, sorted by start.
    """

    name: str
    chrom: str
    strand: str
    tx_start: int
    tx_end: int
    boundaries: np.ndarray
    exons: np.ndarray | None = None


def _exon_array(starts: Sequence[int], ends: Sequence[int]) -> np.ndarray:
    """``[n, 2]`` (first, last) exonic nt, sorted; an unpaired tail (ragged table row) is dropped."""
    n = min(len(starts), len(ends))
    exons = np.stack([np.asarray(starts[:n], np.int64), np.asarray(ends[:n], np.int64)], axis=1).reshape(-1, 2)
    return exons[np.argsort(exons[:, 0], kind="stable")]


def _read_spliceai_table(path: Path) -> list[VariantGene]:
    genes = []
    with open(path, newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        need = ("#NAME", "CHROM", "STRAND", "TX_START", "TX_END", "EXON_START", "EXON_END")
        if header is None or any(c not in header for c in need):
            raise ValueError(f"{path.name}: not a SpliceAI annotation table (header needs {' '.join(need)})")
        col = {c: header.index(c) for c in need}
        for lineno, row in enumerate(reader, 2):
            if not row or not "".join(row).strip():
                continue
            try:
                starts = [int(v) + 1 for v in row[col["EXON_START"]].split(",") if v.strip()]
                ends = [int(v) for v in row[col["EXON_END"]].split(",") if v.strip()]
                tx_start, tx_end = int(row[col["TX_START"]]) + 1, int(row[col["TX_END"]])
            except (ValueError, IndexError):
                raise ValueError(f"{path.name} line {lineno}: malformed annotation row") from None
            strand = row[col["STRAND"]]
            if strand not in ("+", "-"):
                raise ValueError(f"{path.name} line {lineno}: strand {strand!r} is not + or -")
            genes.append(
                VariantGene(
                    row[col["#NAME"]],
                    row[col["CHROM"]],
                    strand,
                    tx_start,
                    tx_end,
                    np.union1d(np.asarray(starts, np.int64), np.asarray(ends, np.int64)),
                    _exon_array(starts, ends),
                )
            )
    return genes


def read_variant_annotation(annotation: str | os.PathLike) -> list[VariantGene]:
    """``grch37``/``grch38`` (SpliceAI's tables), a SpliceAI-style table, or a GTF/GFF3.

    A GTF/GFF3 gives one transcript per gene (MANE/Ensembl canonical, else the
    longest), named by its gene name; its span is the first exon's start to the
    last exon's end.
    """
    from meta_layer_cli.io.annotation import builtin_annotation_path

    if str(annotation) in ("grch37", "grch38"):
        return _read_spliceai_table(builtin_annotation_path(str(annotation)))
    path = Path(annotation)
    if not path.is_file():
        raise FileNotFoundError(f"annotation not found: {path} (give grch37, grch38, a table or a GTF/GFF3)")
    with open(path, "rb") as fh:
        head = fh.read(64)
    if head.startswith(b"#NAME"):
        return _read_spliceai_table(path)
    from meta_layer_cli.io.gtf import genes_from_transcripts, read_transcripts

    genes = []
    for t in genes_from_transcripts(read_transcripts(path)):
        starts = np.array([s + 1 for s, _ in t.exons], np.int64)
        ends = np.array([e for _, e in t.exons], np.int64)
        genes.append(
            VariantGene(
                t.gene_name or t.gene_id,
                t.chrom,
                t.strand,
                t.start + 1,
                t.end,
                np.union1d(starts, ends),
                _exon_array(starts, ends),
            )  # fmt: skip
        )
    return genes


class GeneIndex:
    """Genes by chromosome (``chr`` prefix ignored); lookup in annotation order."""

    def __init__(self, genes: Sequence[VariantGene]):
        self.genes = list(genes)
        by_chrom: dict[str, list[int]] = defaultdict(list)
        for i, g in enumerate(self.genes):
            by_chrom[strip_chr(g.chrom)].append(i)
        self._index = {
            c: (
                np.asarray(ix, np.int64),
                np.array([self.genes[i].tx_start for i in ix], np.int64),
                np.array([self.genes[i].tx_end for i in ix], np.int64),
            )
            for c, ix in by_chrom.items()
        }

    def overlapping(self, chrom: str, pos: int) -> list[int]:
        """Indices of genes whose span contains 1-based ``pos``."""
        hit = self._index.get(strip_chr(chrom))
        if hit is None:
            return []
        ix, starts, ends = hit
        return ix[(starts <= pos) & (pos <= ends)].tolist()


# --------------------------------------------------------------------------------------------
# Model plumbing: cached, batched predictions on exact inputs
# --------------------------------------------------------------------------------------------
def _default_batch(model) -> int:
    return 64 if getattr(getattr(model, "device", None), "type", "cpu") == "cuda" else 8


def predict_windows(
    model,
    windows: Sequence[np.ndarray],
    cache: PredictionCache | None = None,
    batch_size: int | None = None,
    max_padding: float = 0.25,
) -> list[np.ndarray]:
    """Predict many inputs, each with its own context: codes ``[L_i + 2*context]`` -> ``[L_i, C]``.

    Identical inputs are predicted once, cached inputs not at all. Inputs of
    similar length (within ``max_padding`` of the longest) share a forward pass
    of up to ``batch_size``: shorter ones are padded on the right with N, which
    is exact, because an output sees only ``context`` nt to its right and the
    padded outputs are dropped. Inputs longer than the model's block go
    through :meth:`predict_codes` one by one (bounded memory).
    """
    batch_size = batch_size or _default_batch(model)
    out: list[np.ndarray | None] = [None] * len(windows)
    todo: dict[bytes, list[int]] = {}
    hits: dict[bytes, np.ndarray] = {}
    for i, codes in enumerate(windows):
        key = codes.tobytes()
        if key in todo:
            todo[key].append(i)
        elif key in hits:
            out[i] = hits[key]
        else:
            hit = cache.get(model, codes) if cache is not None else None
            if hit is None:
                todo[key] = [i]
            else:
                hits[key] = out[i] = hit

    def store(group: list[int], scores: np.ndarray) -> None:
        if cache is not None:
            cache.put(model, windows[group[0]], scores)
        for i in group:
            out[i] = scores

    long_limit = getattr(model, "block_size", 50_000) + 2 * model.context
    groups = sorted(todo.values(), key=lambda g: -len(windows[g[0]]))
    b = 0
    while b < len(groups):
        longest = len(windows[groups[b][0]])
        if longest > long_limit:
            store(groups[b], np.ascontiguousarray(model.predict_codes(windows[groups[b][0]]), dtype=np.float32))
            b += 1
            continue
        e = b + 1
        while e < len(groups) and e - b < batch_size and len(windows[groups[e][0]]) >= (1 - max_padding) * longest:
            e += 1
        batch = groups[b:e]
        stacked = np.full((len(batch), longest), 4, dtype=np.uint8)  # 4 = N
        for row, g in enumerate(batch):
            stacked[row, : len(windows[g[0]])] = windows[g[0]]
        probs = model.predict(codes_to_one_hot(stacked))
        for g, p in zip(batch, probs):
            n_out = len(windows[g[0]]) - 2 * model.context
            store(g, np.ascontiguousarray(p[:, :n_out].T, dtype=np.float32))
        b = e
    return out  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# The delta-score definition
# --------------------------------------------------------------------------------------------
def _adjust_alt(y_alt: np.ndarray, ref_len: int, alt_len: int, half: int) -> np.ndarray:
    """SpliceAI's realignment of an indel's ALT track ``[2*half + 1 - ref_len + alt_len, C]`` to ``[2*half + 1, C]``."""
    if ref_len > 1 and alt_len == 1:
        del_len = ref_len - alt_len
        # float64 zeros, as in spliceai (the whole score then computes in float64)
        return np.concatenate([y_alt[: half + alt_len], np.zeros((del_len, y_alt.shape[1])), y_alt[half + alt_len :]])
    if ref_len == 1 and alt_len > 1:
        return np.concatenate(
            [y_alt[:half], np.max(y_alt[half : half + alt_len], axis=0)[None, :], y_alt[half + alt_len :]]
        )
    return y_alt


def spliceai_entry(
    allele: str,
    symbol: str,
    y_ref: np.ndarray,
    y_alt: np.ndarray,
    ref_len: int,
    dist_exon_bdry: int,
    mask: bool,
    acceptor: int = 1,
    donor: int = 2,
) -> str:
    """One ``ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL`` entry.

    ``y_ref``: ``[cov, C]`` reference probabilities at POS-D..POS+D (genomic order);
    ``y_alt``: ``[cov - ref_len + len(allele), C]`` ALT probabilities (genomic order).
    The arithmetic (dtypes included) is spliceai's, line for line.
    """
    cov = y_ref.shape[0]
    y_alt = _adjust_alt(y_alt, ref_len, len(allele), cov // 2)
    y = np.concatenate([y_ref[None], y_alt[None]])
    idx_pa = (y[1, :, acceptor] - y[0, :, acceptor]).argmax()
    idx_na = (y[0, :, acceptor] - y[1, :, acceptor]).argmax()
    idx_pd = (y[1, :, donor] - y[0, :, donor]).argmax()
    idx_nd = (y[0, :, donor] - y[1, :, donor]).argmax()
    m = int(mask)
    mask_pa = np.logical_and((idx_pa - cov // 2 == dist_exon_bdry), m)
    mask_na = np.logical_and((idx_na - cov // 2 != dist_exon_bdry), m)
    mask_pd = np.logical_and((idx_pd - cov // 2 == dist_exon_bdry), m)
    mask_nd = np.logical_and((idx_nd - cov // 2 != dist_exon_bdry), m)
    return "{}|{}|{:.2f}|{:.2f}|{:.2f}|{:.2f}|{}|{}|{}|{}".format(  # noqa: UP032 (spliceai's own formatting)
        allele,
        symbol,
        (y[1, idx_pa, acceptor] - y[0, idx_pa, acceptor]) * (1 - mask_pa),
        (y[0, idx_na, acceptor] - y[1, idx_na, acceptor]) * (1 - mask_na),
        (y[1, idx_pd, donor] - y[0, idx_pd, donor]) * (1 - mask_pd),
        (y[0, idx_nd, donor] - y[1, idx_nd, donor]) * (1 - mask_nd),
        idx_pa - cov // 2,
        idx_na - cov // 2,
        idx_pd - cov // 2,
        idx_nd - cov // 2,
    )


def gain_loss_entry(
    allele: str,
    symbol: str,
    y_ref: np.ndarray,
    y_alt: np.ndarray,
    ref_len: int,
    annotated: np.ndarray | None,
    mask: bool,
) -> str:
    """The SpliceAI-format entry for models whose channels are tissues (Pangolin).

    Per position, gain = ``max_t(alt_t - ref_t)`` and loss = ``min_t(alt_t - ref_t)``;
    DS_AG = DS_DG = the largest gain, DS_AL = DS_DL = minus the largest loss.
    ``annotated``: ``[cov]`` bool, annotated exon boundaries (for ``mask``).
    """
    cov = y_ref.shape[0]
    y_alt = _adjust_alt(y_alt, ref_len, len(allele), cov // 2)
    delta = y_alt - y_ref
    gain, loss = delta.max(axis=1), delta.min(axis=1)
    if mask and annotated is not None:
        gain = np.where(annotated, 0.0, gain)
        loss = np.where(annotated, loss, 0.0)
    g, la = int(gain.argmax()), int(loss.argmin())
    ds_gain, ds_loss = float(gain[g]) + 0.0, 0.0 - float(loss[la])
    half = cov // 2
    return (
        f"{allele}|{symbol}|{ds_gain:.2f}|{ds_loss:.2f}|{ds_gain:.2f}|{ds_loss:.2f}|"
        f"{g - half}|{la - half}|{g - half}|{la - half}"
    )


# --------------------------------------------------------------------------------------------
# score_vcf
# --------------------------------------------------------------------------------------------
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


def mask_outside_gene(seq: str, start0: int, gene: VariantGene) -> str:
    """``seq`` (genome from 0-based ``start0``) with every base outside the gene's span set to N."""
    lo = min(max(gene.tx_start - 1 - start0, 0), len(seq))
    hi = max(min(gene.tx_end - start0, len(seq)), lo)
    return "N" * lo + seq[lo:hi] + "N" * (len(seq) - hi)


class VariantScorer:
    """Scores chunks of VCF records (see the module docstring for the definition)."""

    def __init__(self, model, fasta: Fasta, genes: GeneIndex, distance: int, mask: bool, cache, batch_size,
                 incremental: bool = True):  # fmt: skip
        self.model = model
        self.incremental = incremental
        self.fasta = fasta
        self.genes = genes
        self.distance = distance
        self.mask = mask
        self.cache = cache
        self.batch_size = batch_size
        self.half_window = model.context + distance  # wid // 2
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
        if self.warned[reason] <= _MAX_WARNINGS_PER_REASON:
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
    def _codes(self, seq: str, strand: str) -> np.ndarray:
        return sequence_to_codes(reverse_complement(seq) if strand == "-" else seq)

    def _windows(self, task: ScoringTask) -> tuple[str, str]:
        gene = self.genes.genes[task.gene]
        w = self.half_window
        window = spliceai_normalize(self.fasta.fetch(task.chrom, task.pos - 1 - w, task.pos + w))
        x_ref = mask_outside_gene(window, task.pos - 1 - w, gene)
        x_alt = x_ref[:w] + spliceai_normalize(task.allele) + x_ref[w + task.ref_len :]
        return x_ref, x_alt

    def _ref_regions(self, tasks: Sequence[ScoringTask]) -> tuple[list[_Region], list[tuple[int, int]]]:
        """Masked reference inputs, one per region of nearby variants of a gene.

        Returns the regions and, per task, (region index, row of POS-D in the region's prediction).
        """
        d, c = self.distance, self.model.context
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
                    spliceai_normalize(self.fasta.fetch(gene.chrom, start0, last + c)), start0, gene
                )
                self.stats["ref_nt"] += last - first + 1
                for t in rtasks:
                    # on the minus strand the prediction runs 3'->5'; its row k is position last - k
                    where[t.slot] = (len(out), last - (t.pos + d) if gene.strand == "-" else t.pos - d - first)
                out.append(_Region(self._codes(seq, gene.strand), start0, gene.strand))
        return out, [where[t.slot] for t in tasks]

    def _batched(self, tasks: Sequence[ScoringTask]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Reference (one prediction per region) and ALT tracks, in genomic order.

        With ``incremental``, every ALT track is computed from its region's reference
        activations (see :mod:`meta_layer_cli.base_models.incremental`); otherwise ALT windows
        are predicted whole, deduplicated and batched.
        """
        regions, where = self._ref_regions(tasks)
        model, cache, d = self.model, self.cache, self.distance
        cov = 2 * d + 1
        self.stats["alt_windows"] += len(tasks)
        alts: list[np.ndarray | None] = [None] * len(tasks)
        ref_scores: list[np.ndarray | None] = [None] * len(regions)
        spliced = self.incremental and hasattr(model, "ensemble_members")
        alt_codes: dict[int, np.ndarray] = {}
        if cache is not None or not spliced:  # whole-window keys: cached results are shared by every path
            alt_codes = {i: self._codes(self._windows(t)[1], regions[where[i][0]].strand) for i, t in enumerate(tasks)}
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

    def _naive_refs(self, tasks: Sequence[ScoringTask]) -> list[np.ndarray]:
        out = []
        for t in tasks:
            strand = self.genes.genes[t.gene].strand
            p = self.model.predict_codes(self._codes(self._windows(t)[0], strand))
            out.append(p[::-1] if strand == "-" else p)
        return out

    def _naive_alts(self, tasks: Sequence[ScoringTask]) -> list[np.ndarray]:
        out = []
        for t in tasks:
            strand = self.genes.genes[t.gene].strand
            p = self.model.predict_codes(self._codes(self._windows(t)[1], strand))
            out.append(p[::-1] if strand == "-" else p)
        return out

    def entries(self, tasks: Sequence[ScoringTask], batched: bool) -> list[str]:
        if not tasks:
            return []
        refs, alts = self._batched(tasks) if batched else (self._naive_refs(tasks), self._naive_alts(tasks))
        out = []
        for t, y_ref, y_alt in zip(tasks, refs, alts):
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


def _output_header(header: VcfHeader, model, distance: int, mask: bool) -> VcfHeader:
    """The input header plus the SpliceAI / MetaLayerSkip INFO lines and a provenance line."""
    info = SPLICEAI_INFO
    if model.name != "spliceai":
        info = info.replace(
            "SpliceAIv1.3.1 variant annotation", f"SpliceAI-format variant annotation from {model.name}"
        )
    out = header.with_info([info, SKIP_INFO])
    tag = "##metalayer_score_vcf="
    out.meta = [m for m in out.meta if not m.startswith(tag)]
    out.meta.append(
        f"{tag}<base_model={model.name},weights_checksum={model.weights_checksum},context={model.context},"
        f"distance={distance},mask={int(mask)}>"
    )
    return out


def _chunks(records: Iterable[VcfRecord], size: int) -> Iterable[list[VcfRecord]]:
    chunk: list[VcfRecord] = []
    for r in records:
        chunk.append(r)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def score_vcf(
    input: str | os.PathLike,
    output: str | os.PathLike,
    reference_fasta: str | os.PathLike,
    annotation: str | os.PathLike,
    base_model="spliceai",
    weights: str | os.PathLike | None = None,
    distance: int = 50,
    mask: bool = False,
    device: str = "cpu",
    progress: bool = True,
    *,
    cache: PredictionCache | str | os.PathLike | None = None,
    batch_size: int | None = None,
    chunk_size: int = 20_000,
    batched: bool = True,
    incremental: bool = True,
    checkpoints: Sequence[str | os.PathLike] | None = None,
) -> dict:
    """Annotate a VCF with ``SpliceAI=`` delta scores from any base model (see the module docstring).

    Parameters
    ----------
    input, output : VCF paths (plain, gzip or bgzip in; ``.gz``/``.bgz`` out is bgzip).
    reference_fasta : FASTA (plain or bgzip) the VCF's coordinates refer to.
    annotation : ``grch37``, ``grch38``, a SpliceAI-style table, or a GTF/GFF3.
    base_model : a name for :func:`meta_layer_cli.load_base_model`, or a loaded model.
    distance : D, the window half-width (SpliceAI's ``-D``), 0..4999.
    mask : SpliceAI's ``-M 1``.
    cache : a :class:`PredictionCache` or directory to reuse predictions across runs.
    chunk_size : records held in memory at once (batching happens within a chunk).
    batched : False runs the one-variant-at-a-time definition (for tests and benchmarks).
    incremental : predict ALT tracks from the shared reference activations (True) or as
        whole ALT windows (False); both equal the one-at-a-time definition.
    checkpoints : a ``metalayer train`` checkpoint (trained on this base model alone) and/or
        ``train-variants`` checkpoints: adds the ``MetaLayer=`` field, one entry per
        ``SpliceAI`` entry (:mod:`meta_layer_cli.inference.vcf_models`).

    Every input line is written out, in order; the output file appears only
    when complete. Returns counts: ``records``, ``scored`` (records with at
    least one entry), ``entries``, ``skipped`` (by reason), ``alt_windows``,
    ``spliced_alts`` (of those, predicted from reference activations), ``ref_nt``
    and ``seconds``.
    """
    if not 0 <= distance < 5000:
        raise ValueError(f"distance (-D) must be in 0..4999, got {distance}")
    started = time.perf_counter()
    model = resolve_base_model(base_model, weights, device)
    genes = GeneIndex(read_variant_annotation(annotation))
    fasta = Fasta(reference_fasta)
    scorer = VariantScorer(model, fasta, genes, distance, mask, as_cache(cache), batch_size, incremental)
    extra = None
    if checkpoints:
        from meta_layer_cli.inference.vcf_models import META_INFO, VcfCheckpoints

        extra = VcfCheckpoints.load(checkpoints, model, device)
    counts = Counter()
    with VcfReader(input) as reader:
        header: VcfHeader = _output_header(reader.header, model, distance, mask)
        if extra is not None:
            header = header.with_info([META_INFO])
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        columns = [
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[n]}"),
            TimeElapsedColumn(),
        ]
        with (
            VcfWriter(output, header) as writer,
            Progress(*columns, console=Console(stderr=True), disable=not progress, transient=False) as bar,
        ):
            job = bar.add_task(f"score-vcf ({model.name})", total=None, n="")
            for chunk in _chunks(reader, chunk_size):
                tasks: list[ScoringTask] = []
                triaged = []
                for i, record in enumerate(chunk):
                    if not record.is_record:
                        triaged.append(None)
                        continue
                    counts["records"] += 1
                    triaged.append(scorer.triage(i, record, tasks))
                scored = scorer.entries(tasks, batched)
                meta_scored = extra.entries(scorer, tasks) if extra is not None else []
                for record, result in zip(chunk, triaged):
                    if result is None:
                        writer.write(record)
                        continue
                    entries, reason = result
                    values = [scored[e] if isinstance(e, int) else e for e in entries]
                    info: dict[str, str | None] = {}
                    if values:
                        info["SpliceAI"] = ",".join(values)
                        counts["scored"] += 1
                        counts["entries"] += len(values)
                        if extra is not None:  # unscored allele x gene entries are all '.' already
                            info["MetaLayer"] = ",".join(meta_scored[e] if isinstance(e, int) else f"{e}|.|.|."
                                                          for e in entries)  # fmt: skip
                    if reason is not None:
                        info["MetaLayerSkip"] = reason
                    # drop stale fields from an earlier run
                    writer.write(record, info, remove=("MetaLayerSkip", "MetaLayer"))
                bar.update(job, n=f"{counts['records']:,} records, {counts['entries']:,} entries")
    fasta.close()
    for reason, n in scorer.warned.items():
        if n > _MAX_WARNINGS_PER_REASON:
            logger.warning(f"... {n - _MAX_WARNINGS_PER_REASON} more records not scored ({reason}), see MetaLayerSkip")
    return {
        "records": counts["records"],
        "scored": counts["scored"],
        "entries": counts["entries"],
        "skipped": dict(scorer.skipped),
        "alt_windows": scorer.stats["alt_windows"],
        "spliced_alts": scorer.stats["spliced_alts"],
        "ref_nt": scorer.stats["ref_nt"],
        "seconds": time.perf_counter() - started,
    }
