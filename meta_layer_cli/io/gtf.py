"""GTF / GFF3 gene annotation -> one :class:`Transcript` per gene."""

from __future__ import annotations

import gzip
import os
import re
from collections import defaultdict
from pathlib import Path

from meta_layer_cli.io.genes import Transcript, select_transcript

_GTF_ATTR = re.compile(r'\s*([^\s;]+)\s+"?([^";]*)"?\s*;?')


def open_text(path: Path):
    """A text file, plain or gzip (by its magic bytes)."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rt") if magic == b"\x1f\x8b" else open(path)


def _gtf_attributes(text: str) -> tuple[dict[str, str], set[str]]:
    attrs: dict[str, str] = {}
    tags: set[str] = set()
    for key, value in _GTF_ATTR.findall(text):
        if key == "tag":
            tags.add(value)
        else:
            attrs.setdefault(key, value)
    return attrs, tags


def _gff3_attributes(text: str) -> tuple[dict[str, str], set[str]]:
    attrs: dict[str, str] = {}
    for item in text.strip().strip(";").split(";"):
        if "=" in item:
            key, value = item.split("=", 1)
            attrs[key.strip()] = value.strip()
    tags = set(attrs.pop("tag", "").split(",")) - {""}
    return attrs, tags


def _strip_prefix(value: str) -> str:
    # GFF3 from Ensembl writes "transcript:ENST..." and "gene:ENSG...".
    return value.split(":", 1)[1] if ":" in value and value.split(":", 1)[0] in ("gene", "transcript") else value


def read_transcripts(path: str | os.PathLike) -> list[Transcript]:
    """All transcripts with at least one exon, from a GTF or GFF3 (gzip allowed).

    The format is taken from the attribute syntax. A malformed line raises
    ValueError naming its line number.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    exons: dict[str, list[tuple[int, int]]] = defaultdict(list)
    info: dict[str, dict] = {}
    gene_names: dict[str, str] = {}
    gff3: bool | None = None
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 9:
                raise ValueError(f"{path.name} line {lineno}: expected 9 tab-separated fields, found {len(fields)}")
            chrom, _, feature, start, end, _, strand, _, attr_text = fields
            if gff3 is None:
                gff3 = "=" in attr_text and '"' not in attr_text
            try:
                start0, end0 = int(start) - 1, int(end)
            except ValueError:
                raise ValueError(
                    f"{path.name} line {lineno}: start/end are not integers ({start!r}, {end!r})"
                ) from None
            if strand not in ("+", "-") or end0 <= start0:
                raise ValueError(f"{path.name} line {lineno}: bad strand {strand!r} or interval {start}-{end}")
            attrs, tags = (_gff3_attributes if gff3 else _gtf_attributes)(attr_text)
            if gff3:
                if feature == "gene" and "ID" in attrs:
                    gene_names[_strip_prefix(attrs["ID"])] = attrs.get("Name", attrs.get("gene_name", ""))
                if feature in ("mRNA", "transcript", "lnc_RNA", "ncRNA") and "ID" in attrs:
                    tid = _strip_prefix(attrs["ID"])
                    info[tid] = dict(
                        gene_id=_strip_prefix(attrs.get("Parent", tid).split(",")[0]),
                        gene_name=attrs.get("gene_name", ""),
                        chrom=chrom,
                        strand=strand,
                        tags=tags,
                    )
                elif feature == "exon":
                    for parent in attrs.get("Parent", "").split(","):
                        if parent:
                            exons[_strip_prefix(parent)].append((start0, end0))
            else:
                tid = attrs.get("transcript_id")
                if feature in ("exon", "transcript") and tid:
                    if feature == "exon":
                        exons[tid].append((start0, end0))
                    entry = info.setdefault(
                        tid,
                        dict(
                            gene_id=attrs.get("gene_id", tid),
                            gene_name=attrs.get("gene_name", attrs.get("gene_id", tid)),
                            chrom=chrom,
                            strand=strand,
                            tags=set(),
                        ),
                    )
                    entry["tags"] |= tags
    if gff3 is None:
        raise ValueError(f"{path}: no annotation records found")
    out = []
    for tid, blocks in exons.items():
        meta = info.get(tid)
        if meta is None:
            continue
        name = meta["gene_name"] or gene_names.get(meta["gene_id"], "") or meta["gene_id"]
        out.append(
            Transcript(
                transcript_id=tid,
                gene_id=meta["gene_id"],
                gene_name=name,
                chrom=meta["chrom"],
                strand=meta["strand"],
                exons=tuple(sorted(set(blocks))),
                tags=frozenset(meta["tags"]),
            )
        )
    if not out:
        raise ValueError(f"{path}: no transcripts with exons found")
    return out


def genes_from_transcripts(transcripts: list[Transcript], rule: str = "canonical") -> list[Transcript]:
    """One transcript per gene (see :func:`select_transcript`), sorted by chrom and start."""
    by_gene: dict[str, list[Transcript]] = defaultdict(list)
    for t in transcripts:
        by_gene[t.gene_id].append(t)
    chosen = [select_transcript(ts, rule) for ts in by_gene.values()]
    return sorted(chosen, key=lambda t: (t.chrom, t.start, t.gene_id))


def filter_genes(genes: list[Transcript], wanted: list[str] | None) -> list[Transcript]:
    """Genes whose name, id or unversioned id is in ``wanted`` (in ``wanted``'s order)."""
    if not wanted:
        return genes
    index: dict[str, Transcript] = {}
    for g in genes:
        for key in (g.gene_name, g.gene_id, g.gene_id.split(".")[0], g.transcript_id):
            index.setdefault(key, g)
    missing = [w for w in wanted if w not in index]
    if missing:
        raise KeyError(f"gene(s) not in annotation: {', '.join(missing)}")
    return [index[w] for w in wanted]
