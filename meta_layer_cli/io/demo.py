"""The built-in demo dataset: 610 real human genes (chr1 and chr3, SpliceAI's held-out test
chromosomes) with canonical GENCODE splice-site labels, shipped in ``frame-alignment-checks``.

Sequences run from transcript start to end in transcript orientation, with no
flanking DNA (so predictions are N-padded). Gene ids are the npz indices as
strings (``x605`` -> ``"605"``).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from meta_layer_cli.io.genes import GeneSequence
from meta_layer_cli.io.resources import package_file
from meta_layer_cli.io.sequence import one_hot_to_sequence
from meta_layer_cli.runtime.errors import InputDataError

_DIST = "frame-alignment-checks"
_NPZ = "frame_alignment_checks/data/relevant_validation_genes.npz"
_COORDS = "frame_alignment_checks/data/relevant_validation_genes_transcript_coords.json"


@lru_cache(maxsize=1)
def _archive():
    return np.load(package_file(_DIST, _NPZ, "the demo genes"))


@lru_cache(maxsize=1)
def demo_gene_info() -> dict[str, dict]:
    """Per-gene metadata (gene name, transcript, chrom, strand, hg19/hg38 span) where known."""
    with open(package_file(_DIST, _COORDS, "the demo genes")) as fh:
        return json.load(fh)


def demo_gene_ids() -> list[str]:
    """All 610 gene ids, in numeric order."""
    return sorted({name[1:] for name in _archive().files}, key=int)


def load_demo_gene(gene_id: str) -> GeneSequence:
    """One demo gene with its sequence and labels (0 neither, 1 acceptor, 2 donor)."""
    gene_id = str(gene_id)
    archive = _archive()
    if f"x{gene_id}" not in archive.files:
        raise InputDataError(f"demo gene {gene_id!r} does not exist (ids run from 1 to 825 with gaps)")
    x = archive[f"x{gene_id}"]
    y = archive[f"y{gene_id}"]
    seq = one_hot_to_sequence(x.T)
    info = demo_gene_info().get(gene_id, {})
    return GeneSequence(
        gene_id=gene_id,
        gene_name=info.get("gene", ""),
        chrom=info.get("chrom", ""),
        strand=info.get("strand", "+"),
        sequence=seq,
        labels=y.argmax(1).astype(np.int8),
    )


def demo_gene_length(gene_id: str) -> int:
    return _demo_gene_lengths()[str(gene_id)]


@lru_cache(maxsize=1)
def _demo_gene_lengths() -> dict[str, int]:
    """Every demo gene's length from its array's .npy header alone: indexing the archive would inflate
    the whole one-hot array (~1.6 MB a gene, ~1 GB for all) to read one number."""
    archive = _archive()
    lengths = {}
    for name in archive.files:
        if name.startswith("x"):
            with archive.zip.open(f"{name}.npy") as fh:
                version = np.lib.format.read_magic(fh)
                read_header = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                lengths[name[1:]] = int(read_header(fh)[0][0])
    return lengths


def exons_from_labels(labels: np.ndarray) -> list[tuple[int, int]]:
    """Transcript-orientation exons ``[start, end)`` implied by acceptor (1) / donor (2) labels."""
    acceptors = np.flatnonzero(labels == 1)
    donors = np.flatnonzero(labels == 2)
    starts = np.r_[0, acceptors]
    ends = np.r_[donors + 1, len(labels)]
    return list(zip(starts.tolist(), ends.tolist()))


def _spacer_pool(exclude: set[str], length: int, count: int) -> list[str]:
    """``count`` stretches of ``length`` nt of real intronic sequence (the middle of long introns of
    demo genes not in ``exclude``), for the space between genes of :func:`write_demo_genome`."""
    out: list[str] = []
    if length == 0:
        return [""] * count
    for gene_id in sorted(set(demo_gene_ids()) - exclude, key=lambda g: -demo_gene_length(g)):
        gene = load_demo_gene(gene_id)
        if "N" in gene.sequence:
            continue
        exons = exons_from_labels(gene.labels)
        for (_, e0), (s1, _) in zip(exons, exons[1:]):
            intron = gene.sequence[e0:s1]
            margin = 1000  # stay clear of the splice sites' sequence signals
            usable = intron[margin : len(intron) - margin]
            for k in range(len(usable) // length):
                out.append(usable[k * length : (k + 1) * length])
                if len(out) == count:
                    return out
    return out + ["N" * length] * (count - len(out))


def write_demo_genome(
    directory: str | os.PathLike,
    gene_ids: list[str] | None = None,
    spacer: int = 5000,
    max_length: int | None = None,
) -> tuple[Path, Path]:
    """A small genome built from real demo genes: ``genome.fa`` + ``genes.gtf`` in ``directory``.

    Each gene with known coordinates (chr1 or chr3) is laid on its chromosome in its hg19 order,
    minus-strand genes reverse-complemented, with ``spacer`` nt of real intronic sequence (from
    other demo genes) around every gene. The GTF holds one ``Ensembl_canonical`` protein-coding
    transcript per gene whose exons are the demo labels' exons, gene ids are the demo ids, so a
    prepared gene must reproduce the demo gene's sequence and labels exactly. Every fourth gene
    with at least three exons also gets a non-canonical transcript that skips its second exon.
    ``max_length`` keeps only genes up to that many nt. Returns (FASTA path, GTF path).
    """
    from meta_layer_cli.io.atomic import atomic_path
    from meta_layer_cli.io.sequence import reverse_complement

    info = demo_gene_info()
    ids = [g for g in (gene_ids or demo_gene_ids()) if g in info]
    if max_length is not None:
        ids = [g for g in ids if demo_gene_length(g) <= max_length]
    if not ids:
        raise InputDataError("no demo genes with coordinates selected")
    ids.sort(key=lambda g: (info[g]["chrom"], info[g]["hg19_start"], int(g)))
    spacers = iter(_spacer_pool(set(ids), spacer, len(ids) + 2 * len({info[g]["chrom"] for g in ids})))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    contigs: dict[str, list[str]] = {}
    gtf: list[str] = []
    for n, gene_id in enumerate(ids):
        meta = info[gene_id]
        chrom, strand = meta["chrom"], meta["strand"]
        gene = load_demo_gene(gene_id)
        if chrom not in contigs:
            contigs[chrom] = [next(spacers)]
        pieces = contigs[chrom]
        start0 = sum(len(p) for p in pieces)
        pieces += [gene.sequence if strand == "+" else reverse_complement(gene.sequence), next(spacers)]
        length = len(gene.sequence)

        # transcript [a, b) -> 1-based inclusive genomic
        exons = sorted(
            (start0 + a + 1, start0 + b) if strand == "+" else (start0 + length - b + 1, start0 + length - a)
            for a, b in exons_from_labels(gene.labels)
        )
        name, tx = meta["gene"], meta["transcript"]
        attrs = f'gene_id "{gene_id}"; gene_name "{name}"; gene_type "protein_coding";'
        lo, hi = start0 + 1, start0 + length
        gtf.append(f"{chrom}\tdemo\tgene\t{lo}\t{hi}\t.\t{strand}\t.\t{attrs}")
        transcripts = [(tx, exons, ' tag "Ensembl_canonical"; tag "basic";')]
        if n % 4 == 0 and len(exons) >= 3:
            skipped = [e for i, e in enumerate(sorted(exons, reverse=strand == "-")) if i != 1]
            transcripts.append((f"{tx}_alt", sorted(skipped), ""))
        for tid, parts, tags in transcripts:
            t_attrs = f'{attrs} transcript_id "{tid}";'
            gtf.append(f"{chrom}\tdemo\ttranscript\t{parts[0][0]}\t{parts[-1][1]}\t.\t{strand}\t.\t{t_attrs}{tags}")
            gtf += [f"{chrom}\tdemo\texon\t{a}\t{b}\t.\t{strand}\t.\t{t_attrs}" for a, b in parts]
    fasta_path, gtf_path = directory / "genome.fa", directory / "genes.gtf"
    with atomic_path(fasta_path) as tmp, open(tmp, "w") as fh:
        for chrom in sorted(contigs):
            seq = "".join(contigs[chrom])
            fh.write(f">{chrom}\n")
            fh.writelines(seq[i : i + 60] + "\n" for i in range(0, len(seq), 60))
    with atomic_path(gtf_path) as tmp:
        tmp.write_text("#!genome-build metalayer-demo (real demo gene sequences, hg19 order)\n" + "\n".join(gtf) + "\n")
    return fasta_path, gtf_path
