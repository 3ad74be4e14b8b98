"""Per-nucleotide score tracks on disk: a *tracks folder* (what ``metalayer prepare`` writes and training reads).

This module is the folder's format (file names, one gene's file, the manifest's checks); the writer that
predicts a base model into a folder is :func:`meta_layer_cli.artifacts.prediction.predict_tracks`.

Layout of ``OUT/``::

    manifest.json            base model record, source, fingerprint, dropped genes, the name of the planned
                             genes' table; file names and checksums of the inputs, never a machine path (the
                             folder moves as it is)
    planned-<sha256>.parquet the planned genes, one row each (id, name, locus, length, transcript, file); named by
                             its checksum, so a manifest and the table it names are replaced together
    genes/<name>.parquet     one per gene, one row per nucleotide in transcript orientation (5' -> 3')
    log.jsonl                one line per run (what was predicted, how fast); not part of the result
    .metalayer.lock          held briefly by writers (see below)

Parquet columns: ``offset`` (0-based index in the transcript), ``chrom``, ``position`` (1-based
genomic; null when unknown), ``strand``, ``base`` (A/C/G/T/N), ``label`` (0 neither, 1 acceptor,
2 donor), then one float32 column per base-model channel. The file's key-value metadata holds
the gene id and the real genomic flanks the base model saw (``metalayer.upstream`` /
``metalayer.downstream``, transcript orientation), so another base model can later be run on
exactly the same genes from the folder alone.

Gene file names are the sanitised id plus a hash of the exact id (``a/b`` and ``a_b`` never share
a file). Every file is written to a temporary name and renamed, so an interrupted run leaves
whole files only; a rerun predicts only the genes whose file is missing.

``manifest.json`` and its table are deterministic: they list every *planned* gene (finished or not) and nothing
about timing, so shards writing one folder, and a run killed and restarted, end with the same
bytes as one clean run. A gene is finished when its file exists. Writers check and update the
manifest under the folder lock; inputs whose fingerprint differs from the folder's are refused
with one line naming what changed (``overwrite=True`` starts over).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from meta_layer_cli.base_models.record import BaseModelRecord
from meta_layer_cli.io.atomic import atomic_path, write_json_atomic
from meta_layer_cli.io.genes import GeneSequence
from meta_layer_cli.runtime.errors import InputDataError, reading

MANIFEST = "manifest.json"
GENES_DIR = "genes"
LOG = "log.jsonl"
FORMAT = "metalayer-tracks"
FORMAT_VERSION = 4  # 4: the planned genes are a table beside the manifest (3 listed them in it as JSON)
READABLE_VERSIONS = (2, 3, 4)  # 2 differs from 3 only by machine paths, which no reader uses
GENE_TABLE_PREFIX = "planned-"
FIXED_COLUMNS = ("offset", "chrom", "position", "strand", "base", "label")
FLANK_KEYS = ("metalayer.upstream", "metalayer.downstream")


def gene_file_name(gene_id: str) -> str:
    """``<sanitised id>-<10 hex of SHA-256(id)>.parquet``: readable, and distinct for distinct ids."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", gene_id)[:80] or "gene"
    return f"{safe}-{hashlib.sha256(gene_id.encode()).hexdigest()[:10]}.parquet"


def gene_track_path(out_dir: str | os.PathLike, gene_id: str) -> Path:
    return Path(out_dir) / GENES_DIR / gene_file_name(gene_id)


def track_frame(gene: GeneSequence, scores: np.ndarray, channels: Sequence[str]) -> pl.DataFrame:
    """One gene's rows: fixed columns + one column per channel (``scores`` is ``[L, C]``)."""
    n = len(gene.sequence)
    if scores.shape != (n, len(channels)):
        raise ValueError(f"gene {gene.gene_id}: scores {scores.shape} do not match {n} nt x {len(channels)} channels")
    columns = {
        "offset": pl.Series(np.arange(n, dtype=np.int32)),
        "chrom": pl.repeat(gene.chrom, n, eager=True).cast(pl.Categorical),
        "position": pl.Series(gene.positions, dtype=pl.Int64)
        if gene.positions is not None
        else pl.repeat(None, n, dtype=pl.Int64, eager=True),
        "strand": pl.repeat(gene.strand, n, eager=True).cast(pl.Categorical),
        "base": pl.Series([gene.sequence]).str.split("").explode().cast(pl.Categorical),
        "label": pl.Series(np.asarray(gene.labels, dtype=np.int8)),
    }
    for i, name in enumerate(channels):
        columns[name] = pl.Series(scores[:, i].astype(np.float32))
    return pl.DataFrame(columns)


def write_gene_track(
    out_dir: str | os.PathLike, gene: GeneSequence, scores: np.ndarray, channels, flank: int | None = None
) -> Path:
    """Write one gene's track atomically, with its id and up to ``flank`` nt of each real flank as metadata."""
    import pyarrow.parquet as pq

    path = gene_track_path(out_dir, gene.gene_id)
    table = track_frame(gene, scores, channels).to_arrow()
    up = gene.upstream[len(gene.upstream) - flank :] if flank is not None else gene.upstream
    down = gene.downstream[:flank] if flank is not None else gene.downstream
    table = table.replace_schema_metadata({"metalayer.gene_id": gene.gene_id, FLANK_KEYS[0]: up, FLANK_KEYS[1]: down})
    with atomic_path(path) as tmp:
        pq.write_table(table, str(tmp), compression="zstd")
    return path


GENE_COLUMNS = {  # a planned gene: GeneEntry's fields and its track's file name
    "gene_id": pl.String,
    "gene_name": pl.String,
    "chrom": pl.String,
    "strand": pl.String,
    "length": pl.Int64,
    "start": pl.Int64,
    "end": pl.Int64,
    "transcript_id": pl.String,
    "file": pl.String,
}


class GeneTable(Sequence[dict]):
    """The manifest's planned genes: a ``Sequence`` of dicts (one per gene, the keys of :data:`GENE_COLUMNS`; None
    where a gene has no value) held as one polars frame (:attr:`frame`).

    A whole genome plans 20,000-400,000 genes. As parsed JSON that was ~1 kB of Python objects a gene while it was
    read and ~240 bytes a gene held by column after; as Arrow columns it is ~200 bytes a gene, no Python object a
    gene, and read from the folder's table without ever being JSON. Keys outside :data:`GENE_COLUMNS` are not kept
    (none is written)."""

    __slots__ = ("frame",)

    def __init__(self, rows: Sequence[dict] | pl.DataFrame = ()):
        if isinstance(rows, pl.DataFrame):
            self.frame = rows
        else:
            rows = list(rows)
            self.frame = pl.DataFrame({k: [r.get(k) for r in rows] for k in GENE_COLUMNS}, schema=GENE_COLUMNS)

    def __len__(self) -> int:
        return self.frame.height

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return self.frame.row(i % len(self), named=True)

    def __iter__(self) -> Iterator[dict]:
        return self.frame.iter_rows(named=True)

    def __eq__(self, other) -> bool:
        if isinstance(other, GeneTable):
            return self.frame.equals(other.frame)
        if isinstance(other, (list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def column(self, key: str) -> list:
        """Every row's value of ``key`` (None where a row has none), without building the rows."""
        return self.frame.get_column(key).to_list() if key in self.frame.columns else [None] * len(self)

    def select(self, keys: Sequence[str], gene_ids: Collection[str]) -> list[dict]:
        """The rows of ``gene_ids`` (in table order) with only ``keys`` (None where a row has none): what a step
        needs of some genes, without building every row whole."""
        chosen = self.frame.filter(pl.col("gene_id").is_in(list(gene_ids)))
        return [{k: row.get(k) for k in keys} | {"gene_id": row["gene_id"]} for row in chosen.iter_rows(named=True)]

    def values_for(self, key: str, gene_ids: Sequence[str]) -> pl.Series:
        """``key``'s value for each of ``gene_ids``, in their order (repeats kept; null for an id the table lacks):
        one join of columns, no dict over a whole genome's genes."""
        wanted = pl.DataFrame({"gene_id": pl.Series(list(gene_ids), dtype=pl.String)}).with_row_index("order")
        known = self.frame.select("gene_id", key).unique("gene_id", keep="first")
        return wanted.join(known, on="gene_id", how="left").sort("order")[key]

    def parquet_bytes(self) -> bytes:
        """The table as the folder stores it (the same rows give the same bytes)."""
        buffer = io.BytesIO()
        self.frame.write_parquet(buffer, compression="zstd", statistics=False)
        return buffer.getvalue()


def manifest_genes(manifest: dict) -> GeneTable:
    """A manifest's planned genes as a :class:`GeneTable` (what :func:`read_manifest` gives; a list is converted)."""
    genes = manifest.get("genes") or []
    return genes if isinstance(genes, GeneTable) else GeneTable(genes)


def _read_gene_table(out_dir: str | os.PathLike, entry) -> GeneTable:
    """The planned genes a format-4 manifest names (``{"table": "planned-<sha256>.parquet", "count": N}``), checked
    against the name's checksum and the count; anything else is one :class:`InputDataError` line."""
    if not isinstance(entry, dict) or not isinstance(entry.get("table"), str) or "/" in entry["table"]:
        raise InputDataError(f"{out_dir}/{MANIFEST}: 'genes' does not name a table of planned genes")
    path = Path(out_dir) / entry["table"]
    redo = "rerun `metalayer prepare` into a new folder (or with --overwrite)"
    if not path.is_file():
        raise InputDataError(f"{out_dir}: its table of planned genes, {entry['table']}, is missing; {redo}")
    data = path.read_bytes()
    if entry["table"] != f"{GENE_TABLE_PREFIX}{hashlib.sha256(data).hexdigest()[:16]}.parquet":
        raise InputDataError(f"{path}: not the table of planned genes its manifest names (checksum differs); {redo}")
    with reading(f"{path} (the planned genes)"):
        frame = pl.read_parquet(io.BytesIO(data))
    if (
        frame.columns != list(GENE_COLUMNS)
        or frame.dtypes != list(GENE_COLUMNS.values())
        or frame.height != entry.get("count")
    ):
        raise InputDataError(f"{path}: not a table of {entry.get('count')} planned genes; {redo}")
    return GeneTable(frame)


def read_manifest(out_dir: str | os.PathLike) -> dict:
    """The manifest of a tracks folder, its ``genes`` a :class:`GeneTable` (a clear error for a folder that is not
    one, or an old format)."""
    path = Path(out_dir) / MANIFEST
    for attempt in range(2):
        if not path.is_file():
            raise FileNotFoundError(
                f"no {MANIFEST} in {out_dir}: not a metalayer tracks folder (see `metalayer prepare`)"
            )
        try:
            manifest = json.loads(path.read_text())
        except ValueError as err:
            raise InputDataError(f"{path}: not valid JSON ({err})") from None
        if manifest.get("format") != FORMAT or manifest.get("format_version") not in READABLE_VERSIONS:
            raise InputDataError(
                f"{out_dir} was written by another version of metalayer (format "
                f"{manifest.get('format')} {manifest.get('format_version')}); run `metalayer prepare` "
                "into a new folder"
            )
        if manifest["format_version"] < 4:  # 2 and 3 list the genes in the JSON
            with reading(f"{path} (its planned genes)"):
                manifest["genes"] = GeneTable(manifest.get("genes") or [])
            return manifest
        try:
            manifest["genes"] = _read_gene_table(out_dir, manifest.get("genes"))
            return manifest
        except InputDataError:
            if attempt:
                raise
            # a writer may have replaced the manifest, and removed the table it named, since this read: read again
    raise AssertionError("unreachable")


def write_manifest(out_dir: str | os.PathLike, manifest: dict) -> None:
    """Write ``manifest`` (its ``genes`` a :class:`GeneTable` or a list of rows) as the folder's manifest, in this
    version's format: the genes
    to ``planned-<sha256>.parquet``, then ``manifest.json`` naming it, each atomically, then earlier tables away.
    A writer killed between the two leaves the old manifest and its table whole (and a table nothing names).
    Callers hold the folder lock."""
    root = Path(out_dir)
    genes = manifest_genes(manifest)
    data = genes.parquet_bytes()
    name = f"{GENE_TABLE_PREFIX}{hashlib.sha256(data).hexdigest()[:16]}.parquet"
    if not (root / name).is_file():
        with atomic_path(root / name) as tmp:
            tmp.write_bytes(data)
    header = {**manifest, "format": FORMAT, "format_version": FORMAT_VERSION}
    write_json_atomic(root / MANIFEST, {**header, "genes": {"table": name, "count": len(genes)}})
    for old in root.glob(f"{GENE_TABLE_PREFIX}*.parquet"):
        if old.name != name:
            old.unlink(missing_ok=True)


def manifest_record(manifest: dict) -> BaseModelRecord:
    return BaseModelRecord.from_dict(manifest["base_model"])


def _finished(out_dir: str | os.PathLike, manifest: dict) -> Iterator[tuple[str, bool]]:
    # one listing of genes/, not a stat per gene (383,424 stats took 5-28 s); plain strings, not a Path per
    # gene: pathlib interns every path part it parses, for good
    root = os.fspath(out_dir)
    try:
        listed = {f"{GENES_DIR}/{name}" for name in os.listdir(os.path.join(root, GENES_DIR))}
    except FileNotFoundError:
        listed = set()
    genes = manifest_genes(manifest)
    for gene_id, file in zip(genes.column("gene_id"), genes.column("file")):
        done = file in listed or (not file.startswith(f"{GENES_DIR}/") and os.path.isfile(os.path.join(root, file)))
        yield gene_id, done


def finished_gene_ids(out_dir: str | os.PathLike, manifest: dict | None = None) -> list[str]:
    """Planned genes whose file exists, in manifest order."""
    return [g for g, done in _finished(out_dir, manifest or read_manifest(out_dir)) if done]


def missing_gene_ids(out_dir: str | os.PathLike, manifest: dict | None = None) -> list[str]:
    return [g for g, done in _finished(out_dir, manifest or read_manifest(out_dir)) if not done]


def require_complete(out_dir: str | os.PathLike, manifest: dict | None = None, allow_partial: bool = False) -> None:
    """The one rule for every reader of a prepared folder (training, evaluation, prediction, calibration, a prepare
    from it): a folder with planned genes still without tracks (an unfinished or still running prepare, a shard not
    run) is refused with one :class:`InputDataError` line, unless ``allow_partial`` (``--allow-partial``: use the
    finished genes). Genes a reader names must be finished either way (each reader says which it lacks)."""
    if allow_partial:
        return
    manifest = manifest or read_manifest(out_dir)
    missing = missing_gene_ids(out_dir, manifest)
    if missing:
        raise InputDataError(
            f"{out_dir} is incomplete: {len(missing)} of {len(manifest['genes'])} planned genes have "
            f"no tracks yet (e.g. {missing[0]}); finish `metalayer prepare` (every --shard) or pass "
            "--allow-partial to use the finished ones"
        )


def read_gene_track(out_dir: str | os.PathLike, gene_id: str) -> pl.DataFrame:
    path = gene_track_path(out_dir, gene_id)
    if not path.is_file():
        raise FileNotFoundError(f"no track for gene {gene_id!r} in {out_dir}")
    with reading(f"{path} (the track of gene {gene_id})"):
        return pl.read_parquet(path)


def read_gene_flanks(out_dir: str | os.PathLike, gene_id: str) -> tuple[str, str]:
    """The real flanks stored with a gene's track (``""`` where none were known)."""
    import pyarrow.parquet as pq

    path = gene_track_path(out_dir, gene_id)
    with reading(f"{path} (the track of gene {gene_id})"):
        meta = pq.read_schema(str(path)).metadata or {}
    return tuple(meta.get(k.encode(), b"").decode() for k in FLANK_KEYS)  # type: ignore[return-value]


def iter_tracks(
    out_dir: str | os.PathLike, gene_ids: Iterable[str] | None = None
) -> Iterator[tuple[str, pl.DataFrame]]:
    """(gene_id, frame) for every finished gene of a tracks folder (or ``gene_ids``), in manifest order."""
    manifest = read_manifest(out_dir)
    for gene_id in gene_ids or finished_gene_ids(out_dir, manifest):
        if gene_track_path(out_dir, gene_id).is_file():
            yield gene_id, read_gene_track(out_dir, gene_id)


__all__ = [
    "FIXED_COLUMNS",
    "GENES_DIR",
    "GENE_COLUMNS",
    "MANIFEST",
    "GeneTable",
    "finished_gene_ids",
    "gene_file_name",
    "gene_track_path",
    "iter_tracks",
    "manifest_genes",
    "manifest_record",
    "missing_gene_ids",
    "read_gene_flanks",
    "read_gene_track",
    "read_manifest",
    "require_complete",
    "track_frame",
    "write_gene_track",
    "write_manifest",
]
