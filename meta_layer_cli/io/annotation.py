"""SpliceAI-style gene annotation tables (``#NAME CHROM STRAND TX_START TX_END EXON_START EXON_END``)."""

from __future__ import annotations

import os
from pathlib import Path

from meta_layer_cli.io.genes import Transcript


def builtin_annotation_path(build: str) -> Path:
    """Path of the grch37/grch38 table shipped in the installed ``spliceai`` package."""
    if build not in ("grch37", "grch38"):
        raise ValueError(f"unknown genome build {build!r} (expected grch37 or grch38)")
    from meta_layer_cli.io.resources import package_file

    return package_file("spliceai", f"spliceai/annotations/{build}.txt")


def read_annotation_table(path: str | os.PathLike) -> list[Transcript]:
    """One transcript per row. Exon starts are 0-based, ends exclusive (UCSC style)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation table not found: {path}")
    out = []
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if line.startswith("#") or not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 7:
                raise ValueError(f"{path.name} line {lineno}: expected 7 tab-separated columns")
            name, chrom, strand, _, _, starts, ends = fields[:7]
            try:
                s = [int(v) for v in starts.strip(",").split(",")]
                e = [int(v) for v in ends.strip(",").split(",")]
            except ValueError:
                raise ValueError(f"{path.name} line {lineno}: exon starts/ends are not integers") from None
            if len(s) != len(e) or strand not in ("+", "-"):
                raise ValueError(f"{path.name} line {lineno}: exon lists differ in length or bad strand")
            out.append(Transcript(name, name, name, chrom, strand, tuple(sorted(zip(s, e)))))
    return out

def read_gene_annotation(annotation: str | os.PathLike, transcript_rule: str = "canonical"):
    """One transcript per gene from a GTF/GFF3, a SpliceAI-style table, or ``grch37``/``grch38``."""
    from meta_layer_cli.io.gtf import genes_from_transcripts, read_transcripts

    if str(annotation) in ("grch37", "grch38"):
        return read_annotation_table(builtin_annotation_path(str(annotation)))
    path = Path(annotation)
    if path.suffix == ".txt" or path.name.endswith(".txt.gz"):
        return read_annotation_table(path)
    return genes_from_transcripts(read_transcripts(path), transcript_rule)
