"""Per-nucleotide score tracks on disk: a *tracks folder* (what ``metalayer prepare`` writes and training reads).

Layout of ``OUT/``::

    manifest.json            base model record, source, fingerprint, planned genes, dropped genes
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
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from meta_layer_cli import __version__
from meta_layer_cli.artifacts.sources import GeneEntry, GeneSource, as_source, parse_shard
from meta_layer_cli.base_models import BaseModel, load_base_model
from meta_layer_cli.base_models.record import BaseModelRecord
from meta_layer_cli.io.atomic import atomic_path, write_json_atomic
from meta_layer_cli.io.genes import GeneSequence
from meta_layer_cli.runtime.errors import ChangedInputsError, InputDataError
from meta_layer_cli.runtime.fingerprint import differences
from meta_layer_cli.runtime.locks import folder_lock
from meta_layer_cli.runtime.progress import Progress

MANIFEST = "manifest.json"
GENES_DIR = "genes"
LOG = "log.jsonl"
FORMAT = "metalayer-tracks"
FORMAT_VERSION = 2
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


def write_gene_track(out_dir: str | os.PathLike, gene: GeneSequence, scores: np.ndarray, channels,
                     flank: int | None = None) -> Path:  # fmt: skip
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


def read_manifest(out_dir: str | os.PathLike) -> dict:
    """The manifest of a tracks folder (a clear error for a folder that is not one, or an old format)."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no {MANIFEST} in {out_dir}: not a metalayer tracks folder (see `metalayer prepare`)")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as err:
        raise InputDataError(f"{path}: not valid JSON ({err})") from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise InputDataError(f"{out_dir} was written by another version of metalayer (format "
                             f"{manifest.get('format')} {manifest.get('format_version')}); run `metalayer prepare` "
                             "into a new folder")  # fmt: skip
    return manifest


def manifest_record(manifest: dict) -> BaseModelRecord:
    return BaseModelRecord.from_dict(manifest["base_model"])


def finished_gene_ids(out_dir: str | os.PathLike, manifest: dict | None = None) -> list[str]:
    """Planned genes whose file exists, in manifest order."""
    manifest = manifest or read_manifest(out_dir)
    root = Path(out_dir)
    return [g["gene_id"] for g in manifest["genes"] if (root / g["file"]).is_file()]


def missing_gene_ids(out_dir: str | os.PathLike, manifest: dict | None = None) -> list[str]:
    manifest = manifest or read_manifest(out_dir)
    root = Path(out_dir)
    return [g["gene_id"] for g in manifest["genes"] if not (root / g["file"]).is_file()]


def read_gene_track(out_dir: str | os.PathLike, gene_id: str) -> pl.DataFrame:
    path = gene_track_path(out_dir, gene_id)
    if not path.is_file():
        raise FileNotFoundError(f"no track for gene {gene_id!r} in {out_dir}")
    return pl.read_parquet(path)


def read_gene_flanks(out_dir: str | os.PathLike, gene_id: str) -> tuple[str, str]:
    """The real flanks stored with a gene's track (``""`` where none were known)."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(str(gene_track_path(out_dir, gene_id))).metadata or {}
    return tuple(meta.get(k.encode(), b"").decode() for k in FLANK_KEYS)  # type: ignore[return-value]


def iter_tracks(
    out_dir: str | os.PathLike, gene_ids: Iterable[str] | None = None
) -> Iterator[tuple[str, pl.DataFrame]]:
    """(gene_id, frame) for every finished gene of a tracks folder (or ``gene_ids``), in manifest order."""
    manifest = read_manifest(out_dir)
    for gene_id in gene_ids or finished_gene_ids(out_dir, manifest):
        if gene_track_path(out_dir, gene_id).is_file():
            yield gene_id, read_gene_track(out_dir, gene_id)


def _fingerprint(record: BaseModelRecord, dtype: str, source: GeneSource, flank: int) -> dict:
    return {
        "base model": record.name,
        "weights checksum": record.weights_checksum,
        "context": record.context,
        "dtype": dtype,
        **source.fingerprint,
        "stored flank": flank,
    }


def _entry(e: GeneEntry, out_dir: Path) -> dict:
    return {**e.to_dict(), "file": gene_track_path(out_dir, e.gene_id).relative_to(out_dir).as_posix()}


def _merge_entries(old: list[dict], new: list[dict]) -> list[dict]:
    """Planned genes of both, old order first; new metadata wins for genes in both."""
    by_id = {g["gene_id"]: g for g in old}
    by_id.update({g["gene_id"]: g for g in new})
    order = list(dict.fromkeys([g["gene_id"] for g in old] + [g["gene_id"] for g in new]))
    return [by_id[g] for g in order]


def _register(out_dir: Path, record: BaseModelRecord, dtype: str, source: GeneSource, flank: int,
              overwrite: bool, genome_build: str | None) -> dict:  # fmt: skip
    """Check the folder's fingerprint and add this source's planned genes to its manifest (under the lock)."""
    fingerprint = _fingerprint(record, dtype, source, flank)
    planned = [_entry(e, out_dir) for e in source.entries]
    with folder_lock(out_dir, wait=120, what="updating the manifest of"):
        path = out_dir / MANIFEST
        existing = None
        if path.is_file():
            try:
                existing = read_manifest(out_dir)
            except InputDataError:
                if not overwrite:
                    raise
        if existing is not None and existing["fingerprint"] != fingerprint:
            if not overwrite:
                changed = "; ".join(differences(existing["fingerprint"], fingerprint))
                raise ChangedInputsError(f"{out_dir} was made from other inputs ({changed}); use another folder, "
                                         "or --overwrite to start over")  # fmt: skip
            existing = None
        if existing is None and overwrite and (out_dir / GENES_DIR).is_dir():
            shutil.rmtree(out_dir / GENES_DIR)
        dropped = {d["gene_id"]: d for d in (existing or {}).get("dropped", [])}
        dropped.update({d["gene_id"]: d for d in source.dropped})
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "metalayer_version": __version__,
            "base_model": record.to_dict(),
            "channels": list(record.channels),
            "dtype": dtype,
            "source": {**source.info, "flank": flank,
                       "genome_build": genome_build or source.info.get("genome_build")},  # fmt: skip
            "fingerprint": fingerprint,
            "genes": _merge_entries((existing or {}).get("genes", []), planned),
            "dropped": [dropped[k] for k in sorted(dropped)],
        }
        if manifest != existing:
            write_json_atomic(path, manifest)
    return manifest


def plan_packs(entries: Sequence[GeneEntry], pack_nt: int) -> list[list[GeneEntry]]:
    """Consecutive genes grouped into forward passes of about ``pack_nt`` nt.

    The grouping depends only on the planned genes, never on which are already done or on the
    shard, so every run computes each gene in the same pack and writes the same bytes (a
    convolution's last bits depend on the shape of the block it runs in).
    """
    packs: list[list[GeneEntry]] = []
    size = 0
    for e in entries:
        if not packs or size >= pack_nt:
            packs.append([])
            size = 0
        packs[-1].append(e)
        size += e.length
    return packs


def predict_tracks(
    model: BaseModel | str,
    genes: GeneSource | Sequence[GeneSequence],
    out_dir: str | os.PathLike,
    *,
    weights: str | os.PathLike | None = None,
    device: str = "cpu",
    genome_build: str | None = None,
    shard: str | tuple[int, int] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    pack_nt: int = 200_000,
    flank: int | None = None,
) -> dict:
    """Predict every planned gene with a base model and write its track; return the manifest.

    ``genes``: a :class:`~meta_layer_cli.artifacts.sources.GeneSource` (streamed one pack of genes at a
    time) or GeneSequence objects. Short genes share forward passes (see
    :meth:`NeuralBaseModel.predict_genes`) in packs of about ``pack_nt`` nt (:func:`plan_packs`).
    ``shard`` ("K/N"): this job predicts only every N-th pack, starting with the K-th; the manifest
    still plans all genes, so N shards into one folder end with the bytes of one run. A rerun skips
    packs whose genes all have their file. ``flank``: nt of real
    flank stored with each gene (default: the model's context). The returned manifest carries a
    ``last_run`` entry (also appended to ``log.jsonl``), which the file on disk does not.
    """
    if isinstance(model, str):
        model = load_base_model(model, weights=weights, device=device)
    source = as_source(genes)
    out_dir = Path(out_dir)
    record = BaseModelRecord.of(model)
    dtype = str(getattr(model, "dtype", "float32")).removeprefix("torch.")
    flank = model.context if flank is None else flank
    manifest = _register(out_dir, record, dtype, source, flank, overwrite, genome_build)

    packs = plan_packs(source.entries, pack_nt)
    parsed = parse_shard(shard)
    if parsed is not None:
        k, n = parsed
        packs = [p for i, p in enumerate(packs) if i % n == k - 1]
    todo = [p for p in packs if any(not gene_track_path(out_dir, e.gene_id).is_file() for e in p)]
    mine = sum(len(p) for p in packs)
    started = time.perf_counter()
    done_nt = written = written_nt = 0
    with Progress(f"prepare {record.name}", total=mine, unit="genes", enabled=progress,
                  completed=mine - sum(len(p) for p in todo)) as bar:  # fmt: skip
        for pack in todo:
            genes = list(source.genes(model.context, pack))
            for gene, scores in zip(genes, model.predict_genes(genes)):
                if not gene_track_path(out_dir, gene.gene_id).is_file():  # a resumed pack keeps its finished files
                    write_gene_track(out_dir, gene, scores, model.channels, flank)
                    written += 1
                    written_nt += len(gene.sequence)
                done_nt += len(gene.sequence)
                rate = done_nt / max(time.perf_counter() - started, 1e-9)
                bar.update(1, rate=f"{rate:,.0f} nt/s")
    elapsed = time.perf_counter() - started
    run = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "shard": None if parsed is None else f"{parsed[0]}/{parsed[1]}",
           "predicted_genes": written, "predicted_nt": written_nt, "seconds": round(elapsed, 2),
           "version": __version__}  # fmt: skip
    with open(out_dir / LOG, "a") as fh:
        fh.write(json.dumps(run) + "\n")
    return {**manifest, "last_run": run}


__all__ = [
    "FIXED_COLUMNS",
    "GENES_DIR",
    "MANIFEST",
    "finished_gene_ids",
    "gene_file_name",
    "gene_track_path",
    "iter_tracks",
    "manifest_record",
    "missing_gene_ids",
    "predict_tracks",
    "read_gene_flanks",
    "read_gene_track",
    "read_manifest",
    "track_frame",
    "write_gene_track",
]
