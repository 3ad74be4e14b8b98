"""GTF / GFF3 gene annotation -> one :class:`Transcript` per gene, whatever the annotation's conventions.

One reader for the files users have: GENCODE and Ensembl GTF/GFF3, NCBI RefSeq GTF/GFF3, and
EMBL/AUGUSTUS-style GTFs. The two files of one annotation give the same genes: the same ids,
transcripts, names, biotypes, tags and exons.

* **ids.** GFF3 ids lose their type prefix (Ensembl ``gene:ENSG..`` / ``transcript:ENST..``, NCBI
  ``gene-LOC123`` / ``rna-XM_..``); a ``gene_id`` / ``transcript_id`` attribute, where a line has one,
  wins (GENCODE, Ensembl, NCBI mRNAs). NCBI's GTF writes a transcript without an accession as
  ``unassigned_transcript_N`` (numbered through the file), where its GFF3 says ``rna-GENE``, ``rna-GENE-2``,
  ...: such a transcript is named ``GENE``, ``GENE-2``, ... in file order, as in the GFF3.
* **gene of a GFF3 transcript.** The top of its ``Parent`` chain (a ``gene``, ``ncRNA_gene``,
  ``pseudogene``...). Exons whose parent is a top-level feature that also has transcripts (EMBL's
  gene-level exon copies) are ignored; a top-level feature with exons and no transcripts is one
  transcript, named like its gene.
* **biotype** (:attr:`Transcript.biotype`) is the *gene's*: ``gene_type`` (GENCODE) or ``gene_biotype``
  (Ensembl GTF, NCBI, EMBL) on the transcript's lines, else from the gene's own line (NCBI and EMBL
  write it only there; Ensembl GFF3 as ``biotype``). Transcript biotypes (``transcript_biotype "mRNA"``)
  are never taken for it.
* **name**: ``gene_name``, else NCBI's ``gene``, else the gene line's ``Name`` (GFF3), else the gene id.
* **tags** (GTF ``tag "..."`` repeated, GFF3 ``tag=a,b``) with spaces written as ``_``: NCBI's
  ``MANE Select`` is ``MANE_Select``, as GENCODE/Ensembl write it.
* GFF3 values are percent-decoded (``%3B`` -> ``;``); a ``##FASTA`` section ends the records.

Transcripts that cannot describe a real splice structure are dropped, each with a reason, never
merged or guessed at: exons on more than one contig or strand (the same transcript id reused
elsewhere), overlapping or abutting exons (a zero-length intron would put a donor and an acceptor
side by side), and exons starting before position 1. :func:`parse_annotation` returns them with the
reasons; callers count and name them in warnings and manifests.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from meta_layer_cli.io.genes import Transcript, select_transcript
from meta_layer_cli.runtime.errors import InputDataError, UsageError

#: Bumped whenever the same annotation file may parse to other genes (cached parses are keyed by it).
READER_VERSION = 2

# key, then a quoted value (which may hold ';') or a bare one (GENCODE's ``level 2;``)
_GTF_ATTR = re.compile(r'\s*([^\s;"]+)\s+(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))\s*;?')
_PLACEHOLDER_TRANSCRIPT = re.compile(r"unassigned_transcript_\d+")
# GFF3 features that never parent an exon: not kept (a whole genome has millions of them)
_LEAF_FEATURES = frozenset(
    {
        "exon",
        "CDS",
        "five_prime_UTR",
        "three_prime_UTR",
        "UTR",
        "start_codon",
        "stop_codon",
        "intron",
        "stop_codon_redefined_as_selenocysteine",
        "cDNA_match",
        "match_part",
    }
)
# the GFF3 attributes a gene or transcript line is read for
_KEPT_ATTRIBUTES = ("gene_id", "transcript_id", "gene_name", "Name", "gene", "gene_type", "gene_biotype", "biotype")
_GENE_BIOTYPE_KEYS = ("gene_type", "gene_biotype")


def open_text(path: Path):
    """A text file, plain or gzip (by its magic bytes)."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rt") if magic == b"\x1f\x8b" else open(path)


def _tag_set(values) -> set[str]:
    return {v.strip().replace(" ", "_") for v in values if v.strip()}


def _gtf_attributes(text: str) -> tuple[dict[str, str], set[str]]:
    attrs: dict[str, str] = {}
    tags: list[str] = []
    for m in _GTF_ATTR.finditer(text):
        key, value = m.group(1), m.group(2) if m.group(2) is not None else m.group(3)
        if key == "tag":
            tags.append(value)
        else:
            attrs.setdefault(key, value)
    return attrs, _tag_set(tags)


def _gff3_attributes(text: str) -> tuple[dict[str, str], set[str]]:
    """(attributes, tags). Values stay percent-encoded here: ``Parent`` and ``tag`` are lists split at
    commas before decoding (an encoded ``%2C`` is part of a value)."""
    attrs: dict[str, str] = {}
    for item in text.strip().strip(";").split(";"):
        if "=" in item:
            key, value = item.split("=", 1)
            attrs.setdefault(key.strip(), value.strip())
    tags = _tag_set(unquote(t) for t in attrs.pop("tag", "").split(","))
    return attrs, tags


def _strip_prefix(value: str, prefixes: tuple[str, ...]) -> str:
    for prefix in prefixes:
        if value.startswith(prefix) and len(value) > len(prefix):
            return value[len(prefix) :]
    return value


def _first(attrs: dict[str, str], keys) -> str:
    return next((attrs[k] for k in keys if attrs.get(k)), "")


@dataclass
class ParsedAnnotation:
    """Transcripts of an annotation file and the ones dropped (``{"id", "gene_id", "reason"}``)."""

    transcripts: list[Transcript]
    dropped: list[dict] = field(default_factory=list)


@dataclass
class _Feature:
    """A GFF3 line that may parent exons: its type, parents (raw ids) and the attributes read from it."""

    kind: str
    parents: tuple[str, ...]
    attrs: dict[str, str]
    tags: set[str]


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
    if spans[0][0] < 0:
        return f"exon {spans[0][0] + 1}-{spans[0][1]} starts before position 1 of {contigs[0]}"
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


@dataclass
class _Records:
    """What a pass over the file collects: per transcript key (the GTF's transcript id, the GFF3's parent id of
    exons) its exons ``(chrom, strand, start0, end0)``; for a GTF per transcript its ``gene_id`` and ``tags``, per
    gene id the first ``name`` and ``biotype`` any of its lines gives; for a GFF3 the lines that may parent exons."""

    exons: dict[str, list[tuple[str, str, int, int]]] = field(default_factory=lambda: defaultdict(list))
    info: dict[str, dict] = field(default_factory=dict)
    genes: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    features: dict[str, _Feature] = field(default_factory=dict)  # GFF3: lines that may parent exons
    exon_ids: dict[str, dict[str, str]] = field(default_factory=dict)  # GFF3: ids an exon line gives, by parent
    has_cds: bool = False  # CDS lines seen (for the message when no exon line is)


def _gtf_line(rec: _Records, chrom: str, strand: str, feature: str, start0: int, end0: int, text: str) -> None:
    attrs, tags = _gtf_attributes(text)
    gene_id = attrs.get("gene_id", "")
    tid = attrs.get("transcript_id", "")
    name, biotype = _first(attrs, ("gene_name", "gene")), _first(attrs, _GENE_BIOTYPE_KEYS)
    if gene_id:  # every line may say the gene's name and biotype (NCBI/EMBL: only the gene line does)
        gene = rec.genes[gene_id]
        if name:
            gene.setdefault("name", name)
        if biotype:
            gene.setdefault("biotype", biotype)
    if not tid:
        return
    if feature == "exon":
        rec.exons[tid].append((chrom, strand, start0, end0))
    elif feature != "transcript":
        rec.has_cds = rec.has_cds or feature == "CDS"
        return
    entry = rec.info.setdefault(tid, {"gene_id": gene_id or tid, "tags": set()})
    entry["tags"] |= tags


def _gff3_line(rec: _Records, chrom: str, strand: str, feature: str, start0: int, end0: int, text: str) -> None:
    attrs, tags = _gff3_attributes(text)
    parents = tuple(unquote(p) for p in attrs.get("Parent", "").split(",") if p)
    if feature == "exon":
        for parent in parents:
            rec.exons[parent].append((chrom, strand, start0, end0))
            if parent not in rec.exon_ids:  # ids the exon line itself gives (GENCODE), for a parent never declared
                rec.exon_ids[parent] = {k: unquote(attrs[k]) for k in _KEPT_ATTRIBUTES if k in attrs}
        return
    rec.has_cds = rec.has_cds or feature == "CDS"
    if feature in _LEAF_FEATURES or "ID" not in attrs:
        return
    kept = {k: unquote(attrs[k]) for k in _KEPT_ATTRIBUTES if k in attrs}
    rec.features.setdefault(unquote(attrs["ID"]), _Feature(feature, parents, kept, tags))


def _gff3_transcripts(rec: _Records) -> dict[str, dict]:
    """Transcript records (as :func:`_gtf_transcripts` gives them) of a GFF3's features with exons (module
    docstring: which features are transcripts, and their gene)."""
    parenting = {p for key in rec.exons if key in rec.features for p in rec.features[key].parents}
    out: dict[str, dict] = {}
    for key in rec.exons:
        feature = rec.features.get(key)
        if feature is None:  # exons of a parent that has no line of its own: the exon lines' ids, else the parent's
            attrs = rec.exon_ids.get(key, {})
            tid = attrs.get("transcript_id") or _strip_prefix(key, ("transcript:", "rna-"))
            gene_id = attrs.get("gene_id") or tid
            out[key] = {"transcript_id": tid, "gene_id": gene_id, "tags": set(), "gene_attrs": attrs, "tx_attrs": attrs}
            continue
        if not feature.parents and key in parenting:
            continue  # a gene's own copy of its transcripts' exons (EMBL): not a transcript
        root, root_key, seen = feature, key, {key}
        while root.parents and root.parents[0] in rec.features and root.parents[0] not in seen:
            root_key = root.parents[0]
            seen.add(root_key)
            root = rec.features[root_key]
        gene_id = root.attrs.get("gene_id") or _strip_prefix(root_key, ("gene:", "gene-"))
        if root is feature:  # a gene with exons and no transcript: one transcript named like the gene
            tid = feature.attrs.get("transcript_id") or gene_id
        else:
            tid = feature.attrs.get("transcript_id") or _strip_prefix(key, ("transcript:", "rna-"))
        out[key] = {
            "transcript_id": tid,
            "gene_id": gene_id,
            "tags": feature.tags,
            "gene_attrs": root.attrs,
            "tx_attrs": feature.attrs,
        }
    for entry in out.values():
        gene_attrs, tx_attrs = entry.pop("gene_attrs"), entry.pop("tx_attrs")
        entry["gene_name"] = _first(tx_attrs, ("gene_name", "gene")) or _first(
            gene_attrs, ("gene_name", "Name", "gene")
        )
        entry["biotype"] = _first(tx_attrs, _GENE_BIOTYPE_KEYS) or _first(gene_attrs, (*_GENE_BIOTYPE_KEYS, "biotype"))
    return out


def _gtf_transcripts(rec: _Records) -> dict[str, dict]:
    """Transcript records of a GTF: ids, gene, name and biotype (the gene line's where the transcript's lines say
    none), tags; NCBI's ``unassigned_transcript_N`` renamed as its GFF3 names it (module docstring)."""
    out: dict[str, dict] = {}
    placeholders: dict[str, int] = defaultdict(int)
    for tid, entry in rec.info.items():
        if tid not in rec.exons:
            continue
        gene_id = entry["gene_id"]
        name = tid
        if _PLACEHOLDER_TRANSCRIPT.fullmatch(tid):
            placeholders[gene_id] += 1
            name = gene_id if placeholders[gene_id] == 1 else f"{gene_id}-{placeholders[gene_id]}"
        gene = rec.genes.get(gene_id, {})
        out[tid] = {
            "transcript_id": name,
            "gene_id": gene_id,
            "tags": entry["tags"],
            "gene_name": gene.get("name", ""),
            "biotype": gene.get("biotype", ""),
        }
    return out


def parse_annotation(path: str | os.PathLike) -> ParsedAnnotation:
    """Transcripts of a GTF or GFF3 (gzip allowed) and the ones dropped, with reasons (module docstring).

    The format is taken from a ``##gff-version 3`` line, else from the attribute syntax. A malformed line
    raises InputDataError naming its line number.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    rec = _Records()
    gff3: bool | None = None
    for lineno, line in _lines(path):
        if line.startswith("#"):
            if line.startswith("##gff-version") and gff3 is None and len(line.split()) > 1:
                gff3 = line.split()[1].startswith("3")
            if line.startswith("##FASTA"):
                break
            continue
        if not line.strip():
            continue
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) != 9:
            raise InputDataError(f"{path.name} line {lineno}: expected 9 tab-separated fields, found {len(fields)}")
        chrom, _, feature, start, end, _, strand, _, attr_text = fields
        if gff3 is None:
            gff3 = "=" in attr_text and '"' not in attr_text
        try:
            start0, end0 = int(start) - 1, int(end)
        except ValueError:
            raise InputDataError(
                f"{path.name} line {lineno}: start/end are not integers ({start!r}, {end!r})"
            ) from None
        if end0 <= start0 or (feature == "exon" and strand not in ("+", "-")):
            raise InputDataError(f"{path.name} line {lineno}: bad strand {strand!r} or interval {start}-{end}")
        (_gff3_line if gff3 else _gtf_line)(rec, chrom, strand, feature, start0, end0, attr_text)
    if gff3 is None:
        raise InputDataError(f"{path}: no annotation records found")
    records = _gff3_transcripts(rec) if gff3 else _gtf_transcripts(rec)
    out, dropped = [], []
    for key, meta in records.items():
        blocks = rec.exons[key]
        problem = _structure_problem(blocks)
        if problem is not None:
            dropped.append({"id": meta["transcript_id"], "gene_id": meta["gene_id"], "reason": problem})
            continue
        out.append(
            Transcript(
                transcript_id=meta["transcript_id"],
                gene_id=meta["gene_id"],
                gene_name=meta["gene_name"] or meta["gene_id"],
                chrom=blocks[0][0],
                strand=blocks[0][1],
                exons=tuple(sorted({(b[2], b[3]) for b in blocks})),
                tags=frozenset(meta["tags"]),
                biotype=meta["biotype"],
            )
        )
    if not out:
        reasons = f" ({len(dropped)} dropped, e.g. {dropped[0]['id']}: {dropped[0]['reason']})" if dropped else ""
        if not reasons and rec.has_cds:
            reasons = (
                " (it has CDS lines but no exon lines: give the annotation with exons, e.g. AUGUSTUS --UTR=on"
                " or gffread -E)"
            )
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


def filter_biotypes(
    genes: list[Transcript], wanted: list[str] | set[str] | None, what: str = "the annotation"
) -> tuple[list[Transcript], int]:
    """(genes of the ``wanted`` gene biotypes, how many others were left out); no ``wanted``: all genes.

    A filter that cannot be applied is a UsageError, never a silent keep-everything: ``what`` (the
    annotation) names no biotype at all, or a wanted biotype is not among those it names (the message
    lists them). Genes that name no biotype where others do are left out (counted).
    """
    wanted = set(wanted or [])
    if not wanted:
        return genes, 0
    present: dict[str, int] = defaultdict(int)
    for g in genes:
        if g.biotype:
            present[g.biotype] += 1
    asked = ", ".join(sorted(wanted))
    if not present:
        raise UsageError(
            f"biotype filter {asked}: {what} names no gene biotypes (no gene_type, gene_biotype or "
            "biotype attribute on any gene); drop the filter (--biotype, a pipeline's "
            "biotype:)"
        )
    unknown = sorted(wanted - set(present))
    if unknown:
        have = ", ".join(f"{b} ({n:,})" for b, n in sorted(present.items(), key=lambda kv: (-kv[1], kv[0])))
        raise UsageError(f"biotype filter: {', '.join(unknown)} is not a gene biotype of {what}; it has {have}")
    kept = [g for g in genes if g.biotype in wanted]
    return kept, len(genes) - len(kept)
