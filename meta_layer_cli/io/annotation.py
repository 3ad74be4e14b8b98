"""Gene annotations: SpliceAI-style tables, GTF/GFF3 and the built-in ``grch37`` / ``grch38`` tables.

One sniffer and one parser serve every reader:

* **sniff** (:func:`is_annotation_table`): a file whose first line starts with ``#NAME`` is a
  SpliceAI-style table, whatever its suffix, plain or gzip; anything else is read as GTF/GFF3.
* **parse** (:func:`read_annotation_table`): the header line names the columns
  (``#NAME CHROM STRAND TX_START TX_END EXON_START EXON_END``, any order, extra columns
  ignored); ``TX_START`` and exon starts are 0-based, ``TX_END`` and exon ends 1-based
  inclusive (UCSC style, as SpliceAI's tables). Exon lists are comma-separated, with or
  without a trailing comma: every listed exon is kept (the official SpliceAI drops the
  last exon of a list without a trailing comma). Blank lines and further ``#`` lines are
  skipped. A row with unequal numbers of exon starts and ends, no exon, a non-integer
  coordinate or a strand other than ``+`` / ``-`` is an error naming its line.

:func:`read_gene_annotation` gives :class:`~meta_layer_cli.io.genes.Transcript` s (one per
gene; spans from the first exon's start to the last exon's end), :func:`read_variant_annotation`
gives :class:`VariantGene` s (SpliceAI's view: the ``TX_START``/``TX_END`` span and the exon
boundaries) for ``score_vcf``; :class:`GeneIndex` finds the genes over a position.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from meta_layer_cli.io.contigs import strip_chr
from meta_layer_cli.io.genes import Transcript
from meta_layer_cli.io.gtf import genes_from_transcripts, open_text, read_transcripts

#: The columns a SpliceAI-style annotation table must name in its header line.
TABLE_COLUMNS = ("#NAME", "CHROM", "STRAND", "TX_START", "TX_END", "EXON_START", "EXON_END")
BUILTIN_TABLES = ("grch37", "grch38")


def builtin_annotation_path(build: str) -> Path:
    """Path of the grch37/grch38 table shipped in the installed ``spliceai`` package."""
    if build not in BUILTIN_TABLES:
        raise ValueError(f"unknown genome build {build!r} (expected grch37 or grch38)")
    from meta_layer_cli.io.resources import package_file

    return package_file("spliceai", f"spliceai/annotations/{build}.txt", f"the built-in {build} annotation")


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

    @classmethod
    def from_exons(
        cls, name: str, chrom: str, strand: str, tx_start: int, tx_end: int, firsts: Sequence[int], lasts: Sequence[int]
    ) -> VariantGene:
        """From paired 1-based first / last exonic nt (equal lengths)."""
        firsts, lasts = np.asarray(firsts, np.int64), np.asarray(lasts, np.int64)
        exons = np.stack([firsts, lasts], axis=1).reshape(-1, 2)
        exons = exons[np.argsort(exons[:, 0], kind="stable")]
        return cls(name, chrom, strand, tx_start, tx_end, np.union1d(firsts, lasts), exons)

    @classmethod
    def from_transcript(cls, t: Transcript) -> VariantGene:
        """A GTF/GFF3 transcript, named by its gene name; its span is the first exon's start to the last exon's end."""
        return cls.from_exons(
            t.gene_name or t.gene_id,
            t.chrom,
            t.strand,
            t.start + 1,
            t.end,
            [s + 1 for s, _ in t.exons],
            [e for _, e in t.exons],
        )

    def transcript(self) -> Transcript:
        """The gene as a :class:`Transcript` (0-based half-open exons; id and names = the gene's name)."""
        exons = () if self.exons is None else tuple((int(a) - 1, int(b)) for a, b in self.exons)
        return Transcript(self.name, self.name, self.name, self.chrom, self.strand, exons)


def annotation_path(annotation: str | os.PathLike) -> Path:
    """``grch37`` / ``grch38`` -> the built-in table; otherwise the file, which must exist."""
    if str(annotation) in BUILTIN_TABLES:
        return builtin_annotation_path(str(annotation))
    path = Path(annotation)
    if not path.is_file():
        raise FileNotFoundError(f"annotation not found: {path} (give grch37, grch38, a table or a GTF/GFF3)")
    return path


def is_annotation_table(path: str | os.PathLike) -> bool:
    """The sniff rule: the file (plain or gzip, any suffix) starts with ``#NAME``."""
    with open_text(Path(path)) as fh:
        return fh.read(5) == "#NAME"


def _integers(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def read_annotation_table(path: str | os.PathLike) -> list[VariantGene]:
    """Every row of a SpliceAI-style table (rules in the module docstring), in file order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation table not found: {path}")
    genes = []
    with open_text(path) as fh:
        header = fh.readline().rstrip("\r\n").split("\t")
        if any(c not in header for c in TABLE_COLUMNS):
            raise ValueError(f"{path.name}: not a SpliceAI annotation table (header needs {' '.join(TABLE_COLUMNS)})")
        col = {c: header.index(c) for c in TABLE_COLUMNS}
        for lineno, line in enumerate(fh, 2):
            if not line.strip() or line.startswith("#"):
                continue
            row = line.rstrip("\r\n").split("\t")
            try:
                starts = _integers(row[col["EXON_START"]])
                ends = _integers(row[col["EXON_END"]])
                tx_start, tx_end = int(row[col["TX_START"]]), int(row[col["TX_END"]])
                name, chrom, strand = row[col["#NAME"]], row[col["CHROM"]], row[col["STRAND"]]
            except (ValueError, IndexError):
                raise ValueError(f"{path.name} line {lineno}: malformed annotation row") from None
            if strand not in ("+", "-"):
                raise ValueError(f"{path.name} line {lineno}: strand {strand!r} is not + or -")
            if len(starts) != len(ends):
                raise ValueError(f"{path.name} line {lineno}: {len(starts)} exon starts but {len(ends)} exon ends")
            if not starts:
                raise ValueError(f"{path.name} line {lineno}: no exons")
            firsts = [s + 1 for s in starts]
            genes.append(VariantGene.from_exons(name, chrom, strand, tx_start + 1, tx_end, firsts, ends))
    return genes


def _gtf_transcripts(path: Path, transcript_rule: str) -> list[Transcript]:
    try:
        return genes_from_transcripts(read_transcripts(path), transcript_rule)
    except ValueError as err:
        with open_text(path) as fh:
            first = next((ln for ln in fh if ln.strip() and not ln.startswith("#")), "")
        if len(first.rstrip("\r\n").split("\t")) == 7:
            raise ValueError(
                f"{path.name} looks like a SpliceAI annotation table without its header line "
                f"({' '.join(TABLE_COLUMNS)}); add it"
            ) from err
        raise


def read_gene_annotation(annotation: str | os.PathLike, transcript_rule: str = "canonical") -> list[Transcript]:
    """One transcript per gene from a GTF/GFF3, a SpliceAI-style table, or ``grch37``/``grch38``."""
    path = annotation_path(annotation)
    if is_annotation_table(path):
        return [g.transcript() for g in read_annotation_table(path)]
    return _gtf_transcripts(path, transcript_rule)


def read_variant_annotation(annotation: str | os.PathLike) -> list[VariantGene]:
    """``grch37``/``grch38`` (SpliceAI's tables), a SpliceAI-style table, or a GTF/GFF3.

    A GTF/GFF3 gives one transcript per gene (MANE/Ensembl canonical, else the
    longest), named by its gene name; its span is the first exon's start to the
    last exon's end.
    """
    path = annotation_path(annotation)
    if is_annotation_table(path):
        return read_annotation_table(path)
    return [VariantGene.from_transcript(t) for t in _gtf_transcripts(path, "canonical")]


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
