"""Per-nucleotide score tracks on disk: a *tracks folder* (what ``metalayer prepare`` writes and training reads).

This module is the folder's format (file names, one gene's file, the manifest's checks); the writer that
predicts a base model into a folder is :func:`meta_layer_cli.artifacts.prediction.predict_tracks`.

Layout of ``OUT/``::

    manifest.json            base model record, source, fingerprint, planned genes, dropped genes; file names
                             and checksums of the inputs, never a machine path (the folder moves as it is)
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

``manifest.json`` is deterministic: it lists every *planned* gene (finished or not) and nothing
about timing, so shards writing one folder, and a run killed and restarted, end with the same
bytes as one clean run. A gene is finished when its file exists. Writers check and update the
manifest under the folder lock; inputs whose fingerprint differs from the folder's are refused
with one line naming what changed (``overwrite=True`` starts over).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from itertools import accumulate
from pathlib import Path

import numpy as np
import polars as pl

from meta_layer_cli.base_models.record import BaseModelRecord
from meta_layer_cli.io.atomic import atomic_path
from meta_layer_cli.io.genes import GeneSequence
from meta_layer_cli.runtime.errors import InputDataError, reading

MANIFEST = "manifest.json"
GENES_DIR = "genes"
LOG = "log.jsonl"
FORMAT = "metalayer-tracks"
FORMAT_VERSION = 3  # 3: no machine paths (file names of the FASTA and annotation, no weights path)
READABLE_VERSIONS = (2, 3)  # 2 differs only by the paths it also holds, which no reader uses
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


_ABSENT = object()


class GeneTable(Sequence[dict]):
    """The manifest's planned genes, held by column: a ``Sequence`` of the same dicts as the JSON list.

    A whole genome's manifest is 20,000-100,000 genes; as JSON dicts that is ~800 bytes a gene held through
    every step. Here a text column is one string and its offsets, a number column one int64 array, a column of
    other values a list: ~150 bytes a gene. Rows come back as the dicts they were (same keys, same values), so
    readers iterate, index and compare it as the list it replaces (``GeneTable(rows) == rows``)."""

    __slots__ = ("_columns", "_length")

    def __init__(self, rows: Sequence[dict]):
        keys = list(dict.fromkeys(k for row in rows for k in row))
        self._length = len(rows)
        self._columns = {k: self._column([row.get(k, _ABSENT) for row in rows]) for k in keys}

    @staticmethod
    def _column(values: list):
        """("text", joined, offsets, present) | ("int", array, present) | ("any", values) for one key."""
        present = np.array([v is not _ABSENT and v is not None for v in values], dtype=bool)
        given = [v for v in values if v is not _ABSENT and v is not None]
        missing = [v is _ABSENT for v in values]
        if any(missing):  # a key some rows lack: kept exactly (absent is not None)
            return ("any", values)
        if all(type(v) is str for v in given):
            texts = [v if v is not None else "" for v in values]
            return ("text", "".join(texts), np.fromiter(accumulate(map(len, texts), initial=0), np.int64), present)
        if all(type(v) is int for v in given):
            return ("int", np.array([v if v is not None else 0 for v in values], dtype=np.int64), present)
        return ("any", values)

    def _value(self, column, i: int):
        kind = column[0]
        if kind == "text":
            return column[1][column[2][i] : column[2][i + 1]] if column[3][i] else None
        if kind == "int":
            return int(column[1][i]) if column[2][i] else None
        return column[1][i]

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._length))]
        if not -self._length <= i < self._length:
            raise IndexError(i)
        i %= self._length
        row = {k: self._value(c, i) for k, c in self._columns.items()}
        return {k: v for k, v in row.items() if v is not _ABSENT}

    def __iter__(self) -> Iterator[dict]:
        return (self[i] for i in range(self._length))

    def __eq__(self, other) -> bool:
        if isinstance(other, (GeneTable, list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def column(self, key: str) -> list:
        """Every row's value of ``key`` (None where a row has none), without building the rows."""
        column = self._columns.get(key)
        if column is None:
            return [None] * self._length
        return [v if v is not _ABSENT else None for v in (self._value(column, i) for i in range(self._length))]

    def select(self, keys: Sequence[str], gene_ids: Collection[str]) -> list[dict]:
        """The rows of ``gene_ids`` (in table order) with only ``keys`` (None where a row has none): what a step
        needs of some genes, without building every row whole."""
        columns = [self.column(k) for k in ("gene_id", *keys)]
        return [dict(zip(keys, values)) | {"gene_id": g} for g, *values in zip(*columns) if g in gene_ids]


def manifest_genes(manifest: dict) -> GeneTable:
    """A manifest's planned genes as a :class:`GeneTable` (what :func:`read_manifest` gives; a list is converted)."""
    genes = manifest.get("genes") or []
    return genes if isinstance(genes, GeneTable) else GeneTable(genes)


def read_manifest(out_dir: str | os.PathLike) -> dict:
    """The manifest of a tracks folder (a clear error for a folder that is not one, or an old format)."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no {MANIFEST} in {out_dir}: not a metalayer tracks folder (see `metalayer prepare`)")
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
    manifest["genes"] = GeneTable(manifest.get("genes") or [])
    return manifest


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
]
