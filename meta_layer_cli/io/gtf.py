"""GTF / GFF3 gene annotation -> one :class:`Transcript` per gene.

Transcripts that cannot describe a real splice structure are dropped, each with a reason, never
merged or guessed at: exons on more than one contig or strand (the same transcript id reused
elsewhere), and overlapping or abutting exons (a zero-length intron would put a donor and an
acceptor side by side). :func:`parse_annotation` returns them with the reasons; callers count
and name them in warnings and manifests.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from meta_layer_cli.io.genes import Transcript, select_transcript
from meta_layer_cli.runtime.errors import InputDataError

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


@dataclass
class ParsedAnnotation:
    """Transcripts of an annotation file and the ones dropped (``{"id", "gene_id", "reason"}``)."""

    transcripts: list[Transcript]
    dropped: list[dict] = field(default_factory=list)


def _lines(path: Path):
    """Numbered text lines of a plain or gzip file; a truncated or undecodable file is one clear error."""
    try:
        with open_text(path) as fh:
            yield from enumerate(fh, 1)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise InputDataError(f"{path.name}: truncated or corrupt gzip file ({err})") from None
    except UnicodeDecodeError as err:
        raise InputDataError(f"{path.name}: not a text annotation ({err.reason} at byte {err.start})") from None


def _structure_problem(blocks: list[tuple[str, str, int, int]]) -> str | None:
    """Why exons ``(chrom, strand, start0, end0)`` cannot be one transcript, or None."""
    contigs = sorted({b[0] for b in blocks})
    if len(contigs) > 1:
        return f"exons on several contigs ({', '.join(contigs[:3])})"
    if len({b[1] for b in blocks}) > 1:
        return "exons on both strands"
    spans = sorted({(b[2], b[3]) for b in blocks})
    for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
        if s1 < e0:
            return f"overlapping exons {s0 + 1}-{e0} and {s1 + 1}-{e1}"
        if s1 == e0:
            return f"abutting exons {s0 + 1}-{e0} and {s1 + 1}-{e1} (no intron between them)"
    return None


def read_transcripts(path: str | os.PathLike) -> list[Transcript]:
    """All valid transcripts with at least one exon, from a GTF or GFF3 (gzip allowed); see
    :func:`parse_annotation` for the dropped ones."""
    return parse_annotation(path).transcripts


def parse_annotation(path: str | os.PathLike) -> ParsedAnnotation:
    """Transcripts of a GTF or GFF3 (gzip allowed) and the ones dropped, with reasons (module docstring).

    The format is taken from the attribute syntax. A malformed line raises InputDataError naming
    its line number.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    exons: dict[str, list[tuple[str, str, int, int]]] = defaultdict(list)
    info: dict[str, dict] = {}
    gene_names: dict[str, str] = {}
    gene_types: dict[str, str] = {}
    gff3: bool | None = None
    for lineno, line in _lines(path):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.rstrip("\n").split("\t")
        if len(fields) != 9:
            raise InputDataError(
                f"{path.name} line {lineno}: expected 9 tab-separated fields, found {len(fields)}"
            )
        chrom, _, feature, start, end, _, strand, _, attr_text = fields
        if gff3 is None:
            gff3 = "=" in attr_text and '"' not in attr_text
        try:
            start0, end0 = int(start) - 1, int(end)
        except ValueError:
            raise InputDataError(
                f"{path.name} line {lineno}: start/end are not integers ({start!r}, {end!r})"
            ) from None
        if strand not in ("+", "-") or end0 <= start0:
            raise InputDataError(f"{path.name} line {lineno}: bad strand {strand!r} or interval {start}-{end}")
        attrs, tags = (_gff3_attributes if gff3 else _gtf_attributes)(attr_text)
        if gff3:
            if feature == "gene" and "ID" in attrs:
                gene_names[_strip_prefix(attrs["ID"])] = attrs.get("Name", attrs.get("gene_name", ""))
                gene_types[_strip_prefix(attrs["ID"])] = attrs.get("biotype", attrs.get("gene_type", ""))
            if feature in ("mRNA", "transcript", "lnc_RNA", "ncRNA") and "ID" in attrs:
                tid = _strip_prefix(attrs["ID"])
                info[tid] = dict(
                    gene_id=_strip_prefix(attrs.get("Parent", tid).split(",")[0]),
                    gene_name=attrs.get("gene_name", ""),
                    chrom=chrom,
                    strand=strand,
                    tags=tags,
                    biotype=attrs.get("gene_type", attrs.get("gene_biotype", "")),
                )
            elif feature == "exon":
                for parent in attrs.get("Parent", "").split(","):
                    if parent:
                        exons[_strip_prefix(parent)].append((chrom, strand, start0, end0))
        else:
            tid = attrs.get("transcript_id")
            if feature in ("exon", "transcript") and tid:
                if feature == "exon":
                    exons[tid].append((chrom, strand, start0, end0))
                entry = info.setdefault(
                    tid,
                    dict(
                        gene_id=attrs.get("gene_id", tid),
                        gene_name=attrs.get("gene_name", attrs.get("gene_id", tid)),
                        chrom=chrom,
                        strand=strand,
                        tags=set(),
                        biotype=attrs.get("gene_type", attrs.get("gene_biotype", "")),
                    ),
                )
                entry["tags"] |= tags
    if gff3 is None:
        raise InputDataError(f"{path}: no annotation records found")
    out, dropped = [], []
    for tid, blocks in exons.items():
        meta = info.get(tid)
        if meta is None:
            continue
        problem = _structure_problem(blocks)
        if problem is not None:
            dropped.append({"id": tid, "gene_id": meta["gene_id"], "reason": problem})
            continue
        name = meta["gene_name"] or gene_names.get(meta["gene_id"], "") or meta["gene_id"]
        out.append(
            Transcript(
                transcript_id=tid,
                gene_id=meta["gene_id"],
                gene_name=name,
                chrom=blocks[0][0],
                strand=blocks[0][1],
                exons=tuple(sorted({(b[2], b[3]) for b in blocks})),
                tags=frozenset(meta["tags"]),
                biotype=meta["biotype"] or gene_types.get(meta["gene_id"], ""),
            )
        )
    if not out:
        reasons = f" ({len(dropped)} dropped, e.g. {dropped[0]['id']}: {dropped[0]['reason']})" if dropped else ""
        raise InputDataError(f"{path}: no usable transcripts with exons found{reasons}")
    return ParsedAnnotation(out, dropped)


def genes_from_transcripts(transcripts: list[Transcript], rule: str = "canonical") -> list[Transcript]:
    """One transcript per gene (see :func:`select_transcript`), sorted by chrom and start."""
    by_gene: dict[str, list[Transcript]] = defaultdict(list)
    for t in transcripts:
        by_gene[t.gene_id].append(t)
    chosen = [select_transcript(ts, rule) for ts in by_gene.values()]
    return sorted(chosen, key=lambda t: (t.chrom, t.start, t.gene_id))


def dropped_genes(parsed: ParsedAnnotation) -> list[dict]:
    """Genes all of whose transcripts were dropped: ``{"gene_id", "reason"}`` (the first transcript's reason)."""
    kept = {t.gene_id for t in parsed.transcripts}
    out: dict[str, dict] = {}
    for d in parsed.dropped:
        if d["gene_id"] not in kept and d["gene_id"] not in out:
            out[d["gene_id"]] = {"gene_id": d["gene_id"], "reason": f"transcript {d['id']}: {d['reason']}"}
    return list(out.values())


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
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise InputDataError(f"{len(missing)} gene(s) not in the annotation: {shown}")
    return [index[w] for w in wanted]
