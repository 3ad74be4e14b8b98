"""Transcript models and their splice sites, the common currency of GTF/GFF3 and annotation tables."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from meta_layer_cli.runtime.errors import InputDataError, UsageError

# Channel order shared by every base model and label array: neither, acceptor, donor.
NEITHER, ACCEPTOR, DONOR = 0, 1, 2
LABEL_NAMES = ("neither", "acceptor", "donor")


@dataclass(frozen=True)
class Transcript:
    """One transcript; coordinates are 0-based half-open genomic, exons sorted ascending.

    Splice-site convention (SpliceAI's): an acceptor is the first exonic nucleotide
    after an intron, a donor the last exonic nucleotide before one, both in
    transcript orientation.
    """

    transcript_id: str
    gene_id: str
    gene_name: str
    chrom: str
    strand: str
    exons: tuple[tuple[int, int], ...]
    tags: frozenset[str] = field(default_factory=frozenset)
    biotype: str = ""  # gene_type / gene_biotype ("" when the annotation does not say)

    @property
    def start(self) -> int:
        return self.exons[0][0]

    @property
    def end(self) -> int:
        return self.exons[-1][1]

    @property
    def exonic_length(self) -> int:
        return sum(e - s for s, e in self.exons)

    def donors(self) -> np.ndarray:
        """Genomic 0-based positions of donor sites."""
        if self.strand == "+":
            return np.array([e - 1 for _, e in self.exons[:-1]], dtype=np.int64)
        return np.array([s for s, _ in self.exons[1:]], dtype=np.int64)

    def acceptors(self) -> np.ndarray:
        """Genomic 0-based positions of acceptor sites."""
        if self.strand == "+":
            return np.array([s for s, _ in self.exons[1:]], dtype=np.int64)
        return np.array([e - 1 for _, e in self.exons[:-1]], dtype=np.int64)

    def genomic_positions(self) -> np.ndarray:
        """0-based genomic position of each transcript-orientation index ``[end - start]``."""
        if self.strand == "+":
            return np.arange(self.start, self.end, dtype=np.int64)
        return np.arange(self.end - 1, self.start - 1, -1, dtype=np.int64)

    def labels(self) -> np.ndarray:
        """Labels ``[end - start]`` (int8; 0 neither, 1 acceptor, 2 donor) in transcript orientation."""
        labels = np.zeros(self.end - self.start, dtype=np.int8)
        for kind, sites in ((ACCEPTOR, self.acceptors()), (DONOR, self.donors())):
            idx = sites - self.start if self.strand == "+" else self.end - 1 - sites
            labels[idx] = kind
        return labels


def select_transcript(transcripts: list[Transcript], rule: str = "canonical") -> Transcript:
    """Pick one transcript per gene.

    ``canonical``: MANE_Select, else Ensembl_canonical, else the longest; ``longest``:
    longest exonic length (ties: widest span, then id, so the choice is deterministic).
    """
    if rule not in ("canonical", "longest"):
        raise UsageError(f"transcript rule must be 'canonical' or 'longest', got {rule!r}")
    if rule == "canonical":
        for tag in ("MANE_Select", "Ensembl_canonical"):
            tagged = [t for t in transcripts if tag in t.tags]
            if tagged:
                transcripts = tagged
                break
    return max(transcripts, key=lambda t: (t.exonic_length, t.end - t.start, t.transcript_id))


@dataclass
class GeneSequence:
    """A gene ready for prediction, in transcript orientation (5' -> 3').

    ``labels[i]`` and ``positions[i]`` describe ``sequence[i]``. ``positions`` are
    1-based genomic coordinates (descending on the minus strand), or None when
    the source has no coordinates. ``upstream``/``downstream`` hold real flanking
    DNA, also in transcript orientation; empty means N.
    """

    gene_id: str
    gene_name: str
    chrom: str
    strand: str
    sequence: str
    labels: np.ndarray
    positions: np.ndarray | None = None
    upstream: str = ""
    downstream: str = ""

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.sequence):
            raise InputDataError(f"gene {self.gene_id}: {len(self.labels)} labels for {len(self.sequence)} nt")
        if self.positions is not None and len(self.positions) != len(self.sequence):
            raise InputDataError(f"gene {self.gene_id}: positions and sequence differ in length")


def gene_from_fasta(transcript: Transcript, fasta, flank: int) -> GeneSequence:
    """Cut a transcript (plus ``flank`` nt of real genomic context each side) from a FASTA."""
    from meta_layer_cli.io.sequence import reverse_complement

    chrom = transcript.chrom
    seq = fasta.fetch(chrom, transcript.start, transcript.end)
    left = fasta.fetch(chrom, transcript.start - flank, transcript.start) if flank else ""
    right = fasta.fetch(chrom, transcript.end, transcript.end + flank) if flank else ""
    if transcript.strand == "-":
        seq, left, right = reverse_complement(seq), reverse_complement(right), reverse_complement(left)
    return GeneSequence(
        gene_id=transcript.gene_id,
        gene_name=transcript.gene_name,
        chrom=chrom,
        strand=transcript.strand,
        sequence=seq,
        labels=transcript.labels(),
        positions=transcript.genomic_positions() + 1,
        upstream=left,
        downstream=right,
    )
