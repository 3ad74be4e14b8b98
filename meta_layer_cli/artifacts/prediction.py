"""Predict a base model on a source's genes into a tracks folder (:mod:`meta_layer_cli.artifacts.tracks`
describes the folder): the manifest is checked and updated under the folder lock, then every planned gene
that has no file yet is predicted and written.

Kept apart from :mod:`~meta_layer_cli.artifacts.tracks` so that the folder's format sits below the gene
sources (:class:`~meta_layer_cli.artifacts.sources.TracksSource` reads a folder) and this writer above both.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from meta_layer_cli import __version__
from meta_layer_cli.artifacts.sources import GeneEntry, GeneSource, as_source, parse_shard
from meta_layer_cli.artifacts.tracks import (
    FORMAT,
    FORMAT_VERSION,
    GENES_DIR,
    LOG,
    MANIFEST,
    gene_track_path,
    read_manifest,
    write_gene_track,
)
from meta_layer_cli.base_models import BaseModel, load_base_model
from meta_layer_cli.base_models.record import BaseModelRecord
from meta_layer_cli.io.atomic import write_json_atomic
from meta_layer_cli.io.genes import GeneSequence
from meta_layer_cli.runtime.errors import ChangedInputsError, InputDataError
from meta_layer_cli.runtime.fingerprint import differences
from meta_layer_cli.runtime.locks import folder_lock
from meta_layer_cli.runtime.progress import Progress


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


__all__ = ["plan_packs", "predict_tracks"]
