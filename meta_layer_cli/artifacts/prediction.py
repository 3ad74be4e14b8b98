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
from typing import TYPE_CHECKING

from meta_layer_cli import __version__
from meta_layer_cli.artifacts.sources import GeneEntry, GeneSource, as_source
from meta_layer_cli.artifacts.tracks import (
    FORMAT,
    FORMAT_VERSION,
    GENES_DIR,
    LOG,
    MANIFEST,
    GeneTable,
    gene_track_path,
    read_manifest,
    write_gene_track,
    write_manifest,
)
from meta_layer_cli.base_models import BaseModel, load_base_model
from meta_layer_cli.base_models.base import NeuralBaseModel, pack_genes
from meta_layer_cli.base_models.record import BaseModelRecord
from meta_layer_cli.io.genes import GeneSequence
from meta_layer_cli.runtime.errors import ChangedInputsError, InputDataError
from meta_layer_cli.runtime.fingerprint import differences
from meta_layer_cli.runtime.locks import folder_lock
from meta_layer_cli.runtime.progress import Progress
from meta_layer_cli.runtime.shards import every_nth, parse_shard

if TYPE_CHECKING:
    from meta_layer_cli.runtime.device import DeviceLike


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


def _register(
    out_dir: Path,
    record: BaseModelRecord,
    dtype: str,
    source: GeneSource,
    flank: int,
    overwrite: bool,
    genome_build: str | None,
) -> dict:
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
                raise ChangedInputsError(
                    f"{out_dir} was made from other inputs ({changed}); use another folder, "
                    "or --overwrite to start over"
                )
            existing = None
        if existing is None and overwrite and (out_dir / GENES_DIR).is_dir():
            shutil.rmtree(out_dir / GENES_DIR)
        dropped = {d["gene_id"]: d for d in (existing or {}).get("dropped", [])}
        dropped.update({d["gene_id"]: d for d in source.dropped})
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "metalayer_version": __version__,
            "base_model": record.portable(),
            "channels": list(record.channels),
            "dtype": dtype,
            "source": {**source.info, "flank": flank, "genome_build": genome_build or source.info.get("genome_build")},
            "fingerprint": fingerprint,
            "genes": GeneTable(_merge_entries((existing or {}).get("genes", []), planned)),
            "dropped": [dropped[k] for k in sorted(dropped)],
        }
        if manifest != existing:  # the genes compare as tables
            write_manifest(out_dir, manifest)
    return manifest


def window_clusters(entries: Sequence[GeneEntry], context: int) -> list[list[int]]:
    """Indices of ``entries`` grouped into clusters of genes on one contig and strand whose context windows
    (gene +- ``context``) overlap, directly or through other genes; each cluster in entry order, clusters
    by their first gene. Genes without coordinates are clusters of their own."""
    by_strand: dict[tuple[str, str], list[int]] = {}
    clusters: list[list[int]] = []
    for i, e in enumerate(entries):
        if e.start is None or e.end is None:
            clusters.append([i])
        else:
            by_strand.setdefault((e.chrom, e.strand), []).append(i)
    for members in by_strand.values():
        members.sort(key=lambda i: (entries[i].start, entries[i].end, i))
        current: list[int] = []
        reach = 0
        for i in members:
            e = entries[i]
            if current and e.start - context < reach + context:
                current.append(i)
            else:
                if current:
                    clusters.append(sorted(current))
                current = [i]
                reach = e.end
            reach = max(reach, e.end)
        if current:
            clusters.append(sorted(current))
    clusters.sort(key=lambda c: c[0])
    return clusters


def plan_packs(entries: Sequence[GeneEntry], pack_nt: int, context: int = 0) -> list[list[GeneEntry]]:
    """Genes grouped into forward passes of about ``pack_nt`` nt.

    Genes on one strand whose context windows overlap (:func:`window_clusters`) go into one pack, so
    they share one pass (:func:`~meta_layer_cli.base_models.base.pack_genes`) and no position is computed
    twice; a cluster longer than ``pack_nt`` (a compact genome seen with a long context) is cut between
    genes in genomic order, each cut computing at most ``2 * context`` positions twice. Otherwise
    consecutive genes fill a pack, as they come.

    The grouping depends only on the planned genes, never on which are already done or on the
    shard, so every run computes each gene in the same pack and writes the same bytes (a
    convolution's last bits depend on the shape of the block it runs in).
    """
    units: list[list[GeneEntry]] = []
    for cluster in window_clusters(entries, context):
        if len(cluster) == 1 or sum(entries[i].length for i in cluster) <= pack_nt:
            units.append([entries[i] for i in cluster])
            continue
        piece: list[GeneEntry] = []
        for i in sorted(cluster, key=lambda i: (entries[i].start, i)):
            if piece and sum(e.length for e in piece) >= pack_nt:
                units.append(piece)
                piece = []
            piece.append(entries[i])
        units.append(piece)
    packs: list[list[GeneEntry]] = []
    size = 0
    for unit in units:
        if not packs or size >= pack_nt:
            packs.append([])
            size = 0
        packs[-1].extend(unit)
        size += sum(e.length for e in unit)
    return packs


def predict_tracks(
    model: BaseModel | str,
    genes: GeneSource | Sequence[GeneSequence],
    out_dir: str | os.PathLike,
    *,
    weights: str | os.PathLike | None = None,
    device: DeviceLike = None,
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

    packs = plan_packs(source.entries, pack_nt, model.context)
    parsed = parse_shard(shard) if shard is not None else None
    if parsed is not None:
        packs = every_nth(packs, parsed)
    todo = [p for p in packs if any(not gene_track_path(out_dir, e.gene_id).is_file() for e in p)]
    mine = sum(len(p) for p in packs)
    total_nt = sum(e.length for p in packs for e in p)
    done_before = total_nt - sum(e.length for p in todo for e in p)
    started = time.perf_counter()
    written = written_nt = computed_nt = gene_nt = 0
    # ETA from nucleotides, advanced as the network's blocks finish (a pack can take many minutes)
    with Progress(f"prepare {record.name}", total=total_nt, unit="nt", enabled=progress, completed=done_before) as bar:
        genes_done = mine - sum(len(p) for p in todo)
        bar.update(0, genes=f"{genes_done:,}/{mine:,}")
        for pack in todo:
            genes = list(source.genes(model.context, pack))
            pack_nt_here = sum(len(g.sequence) for g in genes)
            if isinstance(model, NeuralBaseModel):
                layout = pack_genes(genes, model.context)
                shown = [0.0, 0]  # gene nt credited so far (fractional, shown)

                def advanced(n: int, layout=layout, pack_nt_here=pack_nt_here, shown=shown) -> None:
                    shown[0] += n * pack_nt_here / max(layout.computed_nt, 1)
                    step = min(int(shown[0]), pack_nt_here) - shown[1]
                    if step > 0:
                        shown[1] += step
                        bar.update(step)

                scores_all = model.predict_pack(layout, advanced)
                computed_nt += layout.computed_nt
                bar.update(pack_nt_here - shown[1])
            else:
                scores_all = model.predict_genes(genes)
                computed_nt += pack_nt_here
                bar.update(pack_nt_here)
            for gene, scores in zip(genes, scores_all):
                if not gene_track_path(out_dir, gene.gene_id).is_file():  # a resumed pack keeps its finished files
                    write_gene_track(out_dir, gene, scores, model.channels, flank)
                    written += 1
                    written_nt += len(gene.sequence)
            gene_nt += pack_nt_here
            genes_done += len(genes)
            bar.update(0, genes=f"{genes_done:,}/{mine:,}")
    elapsed = time.perf_counter() - started
    run = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "shard": None if parsed is None else f"{parsed[0]}/{parsed[1]}",
        "predicted_genes": written,
        "predicted_nt": written_nt,
        "computed_nt": computed_nt,
        "seconds": round(elapsed, 2),
        "version": __version__,
    }
    with open(out_dir / LOG, "a") as fh:
        fh.write(json.dumps(run) + "\n")
    return {**manifest, "last_run": run}


__all__ = ["plan_packs", "predict_tracks"]
