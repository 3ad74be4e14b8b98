"""Per-nucleotide score tracks on disk: one parquet file per gene plus ``manifest.json``.

Layout of ``OUT/``::

    manifest.json            base model, weights checksum, genome build, version, genes
    genes/<gene_id>.parquet  one row per nucleotide, transcript orientation (5' -> 3')

Parquet columns: ``offset`` (0-based index in the transcript), ``chrom``,
``position`` (1-based genomic; null when unknown), ``strand``, ``base``
(A/C/G/T/N), ``label`` (0 neither, 1 acceptor, 2 donor), then one float32
column per base-model channel.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from meta_layer_cli import __version__
from meta_layer_cli.base_models import BaseModel, load_base_model
from meta_layer_cli.io.atomic import atomic_path, write_json_atomic
from meta_layer_cli.io.genes import GeneSequence

MANIFEST = "manifest.json"
GENES_DIR = "genes"
FIXED_COLUMNS = ("offset", "chrom", "position", "strand", "base", "label")


def _safe_name(gene_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", gene_id)


def gene_track_path(out_dir: str | os.PathLike, gene_id: str) -> Path:
    return Path(out_dir) / GENES_DIR / f"{_safe_name(gene_id)}.parquet"


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


def write_gene_track(out_dir: str | os.PathLike, gene: GeneSequence, scores: np.ndarray, channels) -> Path:
    path = gene_track_path(out_dir, gene.gene_id)
    with atomic_path(path) as tmp:
        track_frame(gene, scores, channels).write_parquet(tmp, compression="zstd")
    return path


def read_manifest(out_dir: str | os.PathLike) -> dict:
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no {MANIFEST} in {out_dir}: not a metalayer tracks directory")
    with open(path) as fh:
        return json.load(fh)


def read_gene_track(out_dir: str | os.PathLike, gene_id: str) -> pl.DataFrame:
    path = gene_track_path(out_dir, gene_id)
    if not path.is_file():
        raise FileNotFoundError(f"no track for gene {gene_id!r} in {out_dir}")
    return pl.read_parquet(path)


def iter_tracks(
    out_dir: str | os.PathLike, gene_ids: Iterable[str] | None = None
) -> Iterator[tuple[str, pl.DataFrame]]:
    """(gene_id, frame) for every finished gene of a tracks directory, in manifest order."""
    manifest = read_manifest(out_dir)
    for gene_id in gene_ids or [g["gene_id"] for g in manifest["genes"]]:
        if gene_track_path(out_dir, gene_id).is_file():
            yield gene_id, read_gene_track(out_dir, gene_id)


def _check_compatible(existing: dict, new: dict, out_dir: Path) -> None:
    for key in ("base_model", "weights_checksum"):
        if existing.get(key) != new.get(key):
            raise ValueError(
                f"{out_dir} already holds tracks from {existing.get('base_model')} "
                f"(weights {existing.get('weights_checksum')}); this run uses {new.get('base_model')} "
                f"(weights {new.get('weights_checksum')}). Use another --out directory."
            )


def predict_tracks(
    model: BaseModel | str,
    genes: Sequence[GeneSequence] | Callable[[int], Sequence[GeneSequence]],
    out_dir: str | os.PathLike,
    *,
    weights: str | os.PathLike | None = None,
    device: str = "cpu",
    genome_build: str | None = None,
    source: dict | None = None,
    progress: bool = True,
    pack_nt: int = 200_000,
) -> dict:
    """Predict every gene with a base model and write its track; return the manifest.

    A rerun skips genes whose parquet file exists (files are written atomically,
    so an interrupted run leaves only whole files). Short genes are packed into
    shared forward passes (see :meth:`NeuralBaseModel.predict_genes`) up to
    ``pack_nt`` nucleotides at a time.

    ``genes`` may be a callable taking the model's context and returning the
    genes, for sources (FASTA) whose real flanks depend on the model.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    if isinstance(model, str):
        model = load_base_model(model, weights=weights, device=device)
    out_dir = Path(out_dir)
    if callable(genes):
        genes = genes(model.context)
    genes = list(genes)
    ids = [g.gene_id for g in genes]
    if len(set(ids)) != len(ids):
        raise ValueError("gene ids must be unique")
    manifest = {
        **model.describe(),
        "genome_build": genome_build,
        "metalayer_version": __version__,
        "source": source or {},
        "columns": list(FIXED_COLUMNS) + list(model.channels),
        "genes": [
            {
                "gene_id": g.gene_id,
                "gene_name": g.gene_name,
                "chrom": g.chrom,
                "strand": g.strand,
                "length": len(g.sequence),
                "file": gene_track_path(out_dir, g.gene_id).relative_to(out_dir).as_posix(),
            }
            for g in genes
        ],
    }
    manifest_path = out_dir / MANIFEST
    if manifest_path.is_file():
        existing = read_manifest(out_dir)
        _check_compatible(existing, manifest, out_dir)
        known = {g["gene_id"] for g in manifest["genes"]}
        manifest["genes"] = [g for g in existing["genes"] if g["gene_id"] not in known] + manifest["genes"]
    write_json_atomic(manifest_path, manifest)

    todo = [g for g in genes if not gene_track_path(out_dir, g.gene_id).is_file()]
    total_nt = sum(len(g.sequence) for g in todo)
    started = time.perf_counter()
    done_nt = 0
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("genes  {task.fields[rate]}"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task(f"{model.name}", total=len(genes), completed=len(genes) - len(todo), rate="")
        pack: list[GeneSequence] = []

        def flush() -> None:
            nonlocal done_nt
            for gene, scores in zip(pack, model.predict_genes(pack)):
                write_gene_track(out_dir, gene, scores, model.channels)
                done_nt += len(gene.sequence)
                rate = done_nt / max(time.perf_counter() - started, 1e-9)
                bar.update(task, advance=1, rate=f"{rate:,.0f} nt/s")
            pack.clear()

        for gene in todo:
            pack.append(gene)
            if sum(len(g.sequence) for g in pack) >= pack_nt:
                flush()
        if pack:
            flush()
    elapsed = time.perf_counter() - started
    manifest["last_run"] = {"predicted_genes": len(todo), "predicted_nt": total_nt, "seconds": round(elapsed, 2)}
    write_json_atomic(manifest_path, manifest)
    return manifest
