"""Where genes come from: the built-in demo set, a user's FASTA + annotation, or an existing tracks folder.

A :class:`GeneSource` lists its genes up front as :class:`GeneEntry` metadata (no sequence) and
yields :class:`~meta_layer_cli.io.genes.GeneSequence` objects one at a time, so a whole-genome
annotation needs memory for its largest gene, not for all of them. Each source also says what its
sequences and labels depend on (``fingerprint``: file checksums, the transcript rule...), which a
tracks folder records so that a rerun with other inputs is refused, and which genes it dropped and
why (``dropped``): every dropped gene is named, never silently skipped.

Selections (``--genes``, ``--genes-file``, ``--region``, ``--shard K/N``) narrow ``entries``; a
requested gene that does not exist is an error naming it.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from meta_layer_cli.artifacts.tracks import (
    finished_gene_ids,
    read_gene_flanks,
    read_gene_track,
    read_manifest,
    require_complete,
)
from meta_layer_cli.io.annotation import annotation_path, is_annotation_table, read_annotation_table
from meta_layer_cli.io.contigs import contig_chromosomes, strip_chr
from meta_layer_cli.io.demo import demo_gene_ids, demo_gene_info, demo_gene_length, load_demo_gene
from meta_layer_cli.io.fasta import Fasta, scan_fasta
from meta_layer_cli.io.genes import GeneSequence, Transcript, gene_from_fasta
from meta_layer_cli.io.gtf import (
    READER_VERSION,
    dropped_genes,
    filter_biotypes,
    genes_from_transcripts,
    parse_annotation,
)
from meta_layer_cli.runtime.errors import InputDataError, UsageError, reading
from meta_layer_cli.runtime.fingerprint import file_checksum, value_checksum

logger = logging.getLogger(__name__)

TRANSCRIPT_RULES = ("canonical", "longest")


@dataclass(frozen=True)
class GeneEntry:
    """One gene of a source, without its sequence. ``start``/``end``: 0-based half-open genomic span
    of the chosen transcript (None without coordinates)."""

    gene_id: str
    gene_name: str
    chrom: str
    strand: str
    length: int
    start: int | None = None
    end: int | None = None
    transcript_id: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GeneEntry:
        return cls(
            **{k: data.get(k) for k in ("gene_id", "gene_name", "chrom", "strand", "length", "start", "end")},
            transcript_id=data.get("transcript_id") or "",
        )


def parse_region(text: str) -> tuple[str, int | None, int | None]:
    """``chr1``, ``chr1:1000-2000`` or ``chr1:1,000-2,000`` (1-based inclusive) -> (chrom, start0, end0)."""
    m = re.fullmatch(r"\s*([^:\s]+)(?::([\d,]+)-([\d,]+))?\s*", text)
    if not m:
        raise UsageError(f"--region {text!r}: expected CHROM or CHROM:START-END")
    if m.group(2) is None:
        return m.group(1), None, None
    start, end = int(m.group(2).replace(",", "")), int(m.group(3).replace(",", ""))
    if start < 1 or end < start:
        raise UsageError(f"--region {text!r}: START must be >= 1 and END >= START")
    return m.group(1), start - 1, end


def read_genes_file(path: str | os.PathLike) -> list[str]:
    """Gene ids or names, one per line (``#`` comments and blank lines ignored; ``-`` reads stdin). A file that
    names no gene (empty, blank lines, comments only, stdin from ``/dev/null``) is a :class:`UsageError`: it
    would otherwise select every gene, as no ``--genes-file`` does."""
    import sys

    shown = "stdin" if str(path) == "-" else str(path)
    with reading(f"--genes-file {shown}"):
        text = sys.stdin.read() if str(path) == "-" else Path(path).read_text()
    names = [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]
    if not names:
        raise UsageError(f"--genes-file {shown} names no gene (it is empty or holds only blank lines and comments)")
    return names


def gene_index(entries: Sequence[GeneEntry | dict]) -> dict[str, GeneEntry]:
    """Every name a user may give a gene by -> its entry: the id, the gene name, the id without its version, the
    transcript id (in that order of precedence). ``entries``: :class:`GeneEntry` or manifest dicts."""
    index: dict[str, GeneEntry] = {}
    for e in entries:
        e = GeneEntry.from_dict(e) if isinstance(e, dict) else e
        for key in (e.gene_id, e.gene_name, e.gene_id.split(".")[0], e.transcript_id):
            if key:
                index.setdefault(key, e)
    return index


def resolve_gene_names(genes: Sequence[str], entries: Sequence[GeneEntry | dict]) -> list[str]:
    """``genes`` (names or ids, as ``--genes`` takes them) as gene ids; a name no entry has is kept as given, for
    the caller to report with its own message."""
    index = gene_index(entries)
    return [index[g].gene_id if g in index else g for g in genes]


class GeneSource:
    """Genes to predict: ``entries`` (planned, in order), ``dropped``, ``info`` and ``fingerprint``."""

    kind = "genes"

    def __init__(
        self,
        entries: list[GeneEntry],
        dropped: list[dict] | None = None,
        info: dict | None = None,
        fingerprint: dict | None = None,
    ):
        ids = [e.gene_id for e in entries]
        if len(set(ids)) != len(ids):
            dup = sorted({g for g in ids if ids.count(g) > 1})
            raise InputDataError(f"gene ids must be unique; repeated: {', '.join(dup[:5])}")
        self.entries = entries
        self.dropped = dropped or []
        self.info = info or {}
        self.fingerprint = fingerprint or {}

    def __len__(self) -> int:
        return len(self.entries)

    def genes(self, context: int, entries: Sequence[GeneEntry] | None = None) -> Iterator[GeneSequence]:
        """The genes of ``entries`` (default: all), each with ``context`` nt of real flank where known."""
        raise NotImplementedError

    # -- selection ------------------------------------------------------------------------------
    def _narrowed(self, entries: list[GeneEntry]) -> GeneSource:
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        out.entries = entries
        return out

    def select(
        self,
        genes: Sequence[str] | None = None,
        region: str | None = None,
    ) -> GeneSource:
        """Only the genes named in ``genes`` (ids, names, unversioned ids or transcript ids; in that
        order) and/or overlapping ``region``. Unknown names are an error listing them."""
        entries = self.entries
        if genes:
            index = gene_index(entries)
            missing = [g for g in genes if g not in index]
            if missing:
                known = {d.get("gene_id") for d in self.dropped}
                why = [f"{g} (dropped: {self._drop_reason(g)})" if g in known else g for g in missing]
                shown = ", ".join(why[:10]) + (f" and {len(why) - 10} more" if len(why) > 10 else "")
                raise InputDataError(f"{len(missing)} requested gene(s) not available: {shown}")
            entries = list(dict.fromkeys(index[g] for g in genes))
        if region is not None:
            chrom, lo, hi = parse_region(region)
            if any(e.start is None for e in entries):
                raise UsageError("--region needs genes with coordinates (a FASTA + annotation source)")
            entries = [
                e
                for e in entries
                if strip_chr(e.chrom) == strip_chr(chrom) and (lo is None or (e.start < hi and e.end > lo))
            ]
            if not entries:
                raise InputDataError(f"no genes in region {region}")
        return self._narrowed(entries)

    def _drop_reason(self, gene_id: str) -> str:
        return next((d["reason"] for d in self.dropped if d.get("gene_id") == gene_id), "?")


class SequenceSource(GeneSource):
    """Genes already in memory (library use and tests)."""

    kind = "sequences"

    def __init__(self, genes: Sequence[GeneSequence]):
        self._genes = {g.gene_id: g for g in genes}
        entries = [
            GeneEntry(
                g.gene_id,
                g.gene_name,
                g.chrom,
                g.strand,
                len(g.sequence),
                None if g.positions is None else int(min(g.positions[0], g.positions[-1])) - 1,
                None if g.positions is None else int(max(g.positions[0], g.positions[-1])),
            )
            for g in genes
        ]
        digest = value_checksum([[g.gene_id, g.sequence, g.upstream, g.downstream, g.labels.tolist()] for g in genes])
        super().__init__(entries, info={"kind": self.kind}, fingerprint={"sequences": digest})

    def genes(self, context: int, entries: Sequence[GeneEntry] | None = None) -> Iterator[GeneSequence]:
        for e in entries if entries is not None else self.entries:
            yield self._genes[e.gene_id]


class DemoSource(GeneSource):
    """The built-in demo genes (no flanking DNA: the model sees N past the transcript)."""

    kind = "demo"

    def __init__(self, gene_ids: Sequence[str] | None = None):
        info = demo_gene_info()
        ids = [str(g) for g in gene_ids] if gene_ids else demo_gene_ids()
        known = set(demo_gene_ids())
        missing = [g for g in ids if g not in known]
        if missing:
            raise InputDataError(f"demo gene(s) {', '.join(missing[:5])} do not exist (ids run 1..825 with gaps)")
        entries = [
            GeneEntry(
                g,
                info.get(g, {}).get("gene", ""),
                info.get(g, {}).get("chrom", ""),
                info.get(g, {}).get("strand", "+"),
                demo_gene_length(g),
            )
            for g in ids
        ]
        super().__init__(
            entries,
            info={"kind": "demo", "genome_build": "hg19"},
            fingerprint={"sequence source": "demo genes (frame-alignment-checks)"},
        )

    def select(self, genes: Sequence[str] | None = None, region: str | None = None) -> GeneSource:
        if region is not None:
            raise UsageError("--region needs genes with coordinates (a FASTA + annotation source)")
        return super().select(genes, None)

    def genes(self, context: int, entries: Sequence[GeneEntry] | None = None) -> Iterator[GeneSequence]:
        for e in entries if entries is not None else self.entries:
            yield load_demo_gene(e.gene_id)


CACHE_ENV = "METALAYER_CACHE"
_announced: set[Path] = set()  # cache folders already announced by this process


def default_cache_dir() -> Path:
    """Where metalayer caches what it can recompute: ``$METALAYER_CACHE`` or ``~/.cache/metalayer``."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "metalayer")).expanduser()


def folder_size(folder: Path) -> int:
    """Bytes of the files under ``folder`` (0 if it does not exist)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:  # removed meanwhile (another job's temporary file)
                pass
    return total


def announce_cache(what: str) -> None:
    """Say, the first time this process writes ``what`` into the default cache, where the cache is, how big it
    is and how to move it: it grows in the user's home without being asked for. A cache the user placed with
    ``$METALAYER_CACHE`` is not announced (they chose it; a bad-input run stays one error line)."""
    root = default_cache_dir()
    if os.environ.get(CACHE_ENV) or root in _announced:
        return
    _announced.add(root)
    size = folder_size(root)
    shown = f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB" if size >= 1e6 else "empty"
    logger.info(
        f"caching {what} in {root} (now {shown}; it is reused by later runs and safe to delete; "
        f"set ${CACHE_ENV} to keep it elsewhere)"
    )


def load_annotation_genes(
    annotation: str | os.PathLike, transcripts: str = "canonical", cache: str | os.PathLike | None | bool = None
) -> tuple[list[Transcript], list[dict], str]:
    """(one transcript per gene, dropped genes with reasons, the annotation's checksum).

    ``annotation``: a GTF/GFF3 (gzip allowed), a SpliceAI-style table, or ``grch37``/``grch38``.
    The parsed result is cached by checksum, rule and reader version under ``cache`` (default
    :func:`default_cache_dir`/annotations; ``False``: no cache), so array jobs and reruns do not
    parse a whole-genome GTF again, and a newer reader never reuses an older one's genes.
    """
    if transcripts not in TRANSCRIPT_RULES:
        raise UsageError(f"--transcripts {transcripts!r}: choose canonical or longest")
    path = annotation_path(annotation)
    checksum = file_checksum(path)
    cache_file = None
    if cache is not False:
        root = Path(cache).expanduser() if cache not in (None, True) else default_cache_dir()
        cache_file = root / "annotations" / f"{checksum}-{transcripts}-v{READER_VERSION}.json.gz"
        if cache_file.is_file():
            try:
                data = json.loads(gzip.decompress(cache_file.read_bytes()))
                genes = [
                    Transcript(**{**t, "exons": tuple(map(tuple, t["exons"])), "tags": frozenset(t["tags"])})
                    for t in data["genes"]
                ]
                return genes, data["dropped"], checksum
            except (OSError, ValueError, KeyError, TypeError):
                pass  # unreadable cache entry: parse again and overwrite it
    with reading(f"annotation {path}"):  # the parsers name the line; anything they raise is the file's fault
        if is_annotation_table(path):
            genes, dropped = [g.transcript() for g in read_annotation_table(path)], []
        else:
            parsed = parse_annotation(path)
            genes, dropped = genes_from_transcripts(parsed.transcripts, transcripts), dropped_genes(parsed)
    if cache_file is not None:
        from meta_layer_cli.io.atomic import atomic_path

        if cache in (None, True):
            announce_cache("the parsed annotation")
        payload = {"genes": [{**asdict(t), "tags": sorted(t.tags)} for t in genes], "dropped": dropped}
        try:
            with atomic_path(cache_file) as tmp:
                tmp.write_bytes(gzip.compress(json.dumps(payload).encode(), 1))
        except OSError as err:  # a read-only home must not stop the job
            logger.debug(f"annotation cache not written: {err}")
    return genes, dropped, checksum


class FastaSource(GeneSource):
    """Genes cut from a FASTA by an annotation, each with real genomic flanks (N past contig ends).

    Genes on contigs the FASTA lacks, or reaching before its start or past its end, are dropped with
    a reason; when no contig matches at all (``chr1`` vs ``1`` is matched automatically) it is an error.
    ``biotype``: keep only genes of these gene biotypes (:func:`~meta_layer_cli.io.gtf.filter_biotypes`:
    an annotation without biotypes, or a biotype it does not name, is an error).
    """

    kind = "fasta"

    def __init__(
        self,
        fasta: str | os.PathLike,
        annotation: str | os.PathLike,
        transcripts: str = "canonical",
        biotype: Sequence[str] | None = None,
        genome_build: str | None = None,
        cache: str | os.PathLike | None | bool = None,
    ):
        self.fasta_path = Path(fasta)
        if not self.fasta_path.is_file():
            raise FileNotFoundError(f"FASTA not found: {self.fasta_path}")
        fasta_checksum, names, descriptions = scan_fasta(self.fasta_path)  # also refuses duplicate contig names
        numbered = contig_chromosomes(names, descriptions)
        reference = Fasta(self.fasta_path)
        genes, dropped, ann_checksum = load_annotation_genes(annotation, transcripts, cache)
        reference.contigs.check_overlap((t.chrom for t in genes), f"annotation {annotation}")
        wanted = set(biotype or [])
        genes, filtered = filter_biotypes(genes, wanted, f"annotation {Path(str(annotation)).name}")
        if filtered:
            logger.info(f"{filtered:,} gene(s) of other biotypes than {', '.join(sorted(wanted))} left out")
        entries: list[GeneEntry] = []
        self._transcripts: dict[str, Transcript] = {}
        contig_lengths: dict[str, int] = {}  # by the annotation's contig names (what tracks record as `chrom`)
        dropped = list(dropped)
        for t in genes:
            name = reference.contigs.resolve(t.chrom)
            if name is None:
                dropped.append({"gene_id": t.gene_id, "reason": f"contig {t.chrom!r} is not in the FASTA"})
                continue
            size = reference.lengths[name]
            if t.start < 0:  # a table's 0-based start below 0 (GTF/GFF3 transcripts are dropped when parsed)
                dropped.append(
                    {"gene_id": t.gene_id, "reason": f"starts at {t.start + 1:,}, before position 1 of {name}"}
                )
                continue
            if t.end > size:
                dropped.append(
                    {"gene_id": t.gene_id, "reason": f"ends at {t.end:,}, past the end of {name} ({size:,} nt)"}
                )
                continue
            entries.append(
                GeneEntry(t.gene_id, t.gene_name, t.chrom, t.strand, t.end - t.start, t.start, t.end, t.transcript_id)
            )
            contig_lengths[t.chrom] = size
            self._transcripts[t.gene_id] = t
        reference.close()
        if not entries:
            raise InputDataError(
                f"no usable genes in {annotation} on {self.fasta_path.name}"
                + (
                    f" ({len(dropped)} dropped, e.g. {dropped[0]['gene_id']}: {dropped[0]['reason']})"
                    if dropped
                    else ""
                )
            )
        build = genome_build or {"grch37": "GRCh37", "grch38": "GRCh38"}.get(str(annotation))
        # the chromosome each gene's contig is, where the FASTA header says so (NC_000001.11 -> 1): splits use it
        chromosomes = {
            e.chrom: numbered[reference.contigs.resolve(e.chrom)]
            for e in entries
            if reference.contigs.resolve(e.chrom) in numbered
        }
        info = {
            "kind": "fasta",
            "fasta": self.fasta_path.name,  # names only: a prepared folder holds no machine path
            "fasta_checksum": fasta_checksum,
            "annotation": Path(str(annotation)).name,
            "annotation_checksum": ann_checksum,
            "transcripts": transcripts,
            "biotype": sorted(wanted) or None,
            "filtered_by_biotype": filtered,
            "genome_build": build,
            "chromosomes": dict(sorted(chromosomes.items())),
            "contig_lengths": dict(sorted(contig_lengths.items())),
        }
        fingerprint = {
            "FASTA checksum": fasta_checksum,
            "annotation checksum": ann_checksum,
            "transcripts": transcripts,
            "biotype": sorted(wanted) or None,
        }
        if not is_annotation_table(annotation_path(annotation)):
            # another GTF/GFF3 reader may give other genes from the same file (ids, biotypes): a folder prepared
            # by an older one is refused rather than mixed with these genes
            fingerprint["annotation reader"] = READER_VERSION
        super().__init__(entries, dropped, info, fingerprint)

    def genes(self, context: int, entries: Sequence[GeneEntry] | None = None) -> Iterator[GeneSequence]:
        reference = Fasta(self.fasta_path)
        try:
            for e in entries if entries is not None else self.entries:
                yield gene_from_fasta(self._transcripts[e.gene_id], reference, context)
        finally:
            reference.close()


class TracksSource(GeneSource):
    """The genes of an existing tracks folder (sequence, labels, coordinates and stored flanks), to
    predict another base model on exactly the same genes without the original FASTA."""

    kind = "tracks"

    def __init__(self, tracks_dir: str | os.PathLike, allow_partial: bool = False):
        self.directory = Path(tracks_dir)
        manifest = read_manifest(self.directory)
        require_complete(self.directory, manifest, allow_partial)
        done = set(finished_gene_ids(self.directory, manifest))
        entries = [GeneEntry.from_dict(g) for g in manifest["genes"] if g["gene_id"] in done]
        source = manifest["source"]
        info = {**source, "kind": "tracks", "tracks": self.directory.name, "from": source.get("kind")}
        super().__init__(entries, list(manifest.get("dropped", [])), info, source_fingerprint(manifest["fingerprint"]))
        self.flank = int(source.get("flank") or 0)

    def genes(self, context: int, entries: Sequence[GeneEntry] | None = None) -> Iterator[GeneSequence]:
        for e in entries if entries is not None else self.entries:
            frame = read_gene_track(self.directory, e.gene_id)
            up, down = read_gene_flanks(self.directory, e.gene_id)
            if context > len(up) or context > len(down):
                logger.debug(f"{e.gene_id}: {context} nt of context wanted, {len(up)}/{len(down)} stored; N beyond")
            positions = frame["position"]
            yield GeneSequence(
                gene_id=e.gene_id,
                gene_name=e.gene_name,
                chrom=e.chrom,
                strand=e.strand,
                sequence="".join(frame["base"].cast(str).to_list()),
                labels=frame["label"].to_numpy().astype(np.int8),
                positions=None if positions.null_count() else positions.to_numpy(),
                upstream=up,
                downstream=down,
            )


# fingerprint keys that describe the genes themselves (shared by every base model's tracks of them)
_SOURCE_KEYS = ("sequence source", "FASTA checksum", "annotation checksum", "transcripts", "biotype", "sequences")


def source_fingerprint(fingerprint: dict) -> dict:
    """The part of a tracks folder's fingerprint that describes its genes (not the base model)."""
    return {k: v for k, v in fingerprint.items() if k in _SOURCE_KEYS}


def open_source(
    dataset: str | None = None,
    fasta: str | os.PathLike | None = None,
    annotation: str | os.PathLike | None = None,
    tracks: str | os.PathLike | None = None,
    transcripts: str = "canonical",
    biotype: Sequence[str] | None = None,
    genome_build: str | None = None,
    allow_partial: bool = False,
) -> GeneSource:
    """The source a command's flags describe: ``--dataset demo``, ``--fasta`` with ``--gtf``, or ``--data``
    (an unfinished folder refused unless ``allow_partial``)."""
    given = [x for x in (dataset, fasta, tracks) if x is not None]
    if len(given) != 1:
        raise UsageError("give one gene source: --dataset demo, --fasta with --gtf, or --data PREPARED")
    if dataset is not None:
        if dataset != "demo":
            raise UsageError(f"unknown dataset {dataset!r} (built in: demo)")
        if annotation is not None:
            raise UsageError("--gtf goes with --fasta, not with --dataset demo")
        return DemoSource()
    if tracks is not None:
        return TracksSource(tracks, allow_partial)
    if annotation is None:
        raise UsageError("--fasta needs --gtf (a GTF/GFF3, an annotation table, grch37 or grch38)")
    return FastaSource(fasta, annotation, transcripts, biotype, genome_build)


def as_source(genes: GeneSource | Sequence[GeneSequence]) -> GeneSource:
    return genes if isinstance(genes, GeneSource) else SequenceSource(list(genes))


__all__ = [
    "DemoSource",
    "FastaSource",
    "GeneEntry",
    "GeneSource",
    "SequenceSource",
    "TracksSource",
    "announce_cache",
    "as_source",
    "default_cache_dir",
    "gene_index",
    "load_annotation_genes",
    "open_source",
    "parse_region",
    "read_genes_file",
    "resolve_gene_names",
    "source_fingerprint",
]
