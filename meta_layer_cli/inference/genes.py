"""Recalibrated probabilities for every nucleotide of whole genes: the genes half of ``metalayer predict``.

:func:`recalibrate_tracks` reads base-model tracks folders (one per base model the checkpoint was
trained on, checked against its records), runs the checkpoint (model, gene-structure decoder,
calibration) gene by gene and writes one parquet table, streaming, atomically; optionally
strand-specific bigWig files of the acceptor and donor probabilities.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from meta_layer_cli.artifacts import common_gene_ids, gene_lengths, load_gene_arrays, read_gene_track, read_manifest
from meta_layer_cli.artifacts.tracks import manifest_genes, manifest_record, require_complete
from meta_layer_cli.io.atomic import atomic_path
from meta_layer_cli.models.apply import CanonicalPredictor
from meta_layer_cli.models.checkpoint import CanonicalCheckpoint
from meta_layer_cli.runtime.errors import InputDataError, RuntimeFailure, UsageError
from meta_layer_cli.runtime.progress import Progress

if TYPE_CHECKING:
    from meta_layer_cli.runtime.device import DeviceLike

META_COLUMNS = ("meta_neither", "meta_acceptor", "meta_donor")
ROW_GROUP = 1_000_000  # rows per parquet row group of the predictions


def recalibrate_tracks(
    checkpoint: str | os.PathLike,
    tracks_dirs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    genes: Sequence[str] | None = None,
    bigwig_prefix: str | None = None,
    device: DeviceLike = None,
    progress: bool = True,
    allow_partial: bool = False,
) -> Path:
    """Write base and meta probabilities for every nucleotide of ``genes`` (default: every finished gene)
    to ``out`` (parquet): ``gene_id``, ``gene_name``, the track columns (stacked folders' channels get a ``_1``, ``_2``
    suffix), then ``meta_neither, meta_acceptor, meta_donor``. With ``bigwig_prefix`` also
    ``PREFIX.{acceptor,donor}.{plus,minus}.bw`` (needs genomic coordinates). An unfinished tracks folder is
    refused unless ``allow_partial`` (:func:`~meta_layer_cli.artifacts.tracks.require_complete`).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    predictor = CanonicalPredictor.load(checkpoint, device)
    records = CanonicalCheckpoint.read(checkpoint, predictor.config).base_records
    dirs = [Path(d) for d in tracks_dirs]
    if len(dirs) != len(records):
        raise UsageError(f"{checkpoint} was trained on {len(records)} base model(s); got {len(dirs)} tracks folder(s)")
    manifests = [read_manifest(d) for d in dirs]  # read once: genes are loaded one at a time below
    for record, manifest, d in zip(records, manifests, dirs):
        record.require(manifest_record(manifest), f"the checkpoint {checkpoint}")
        require_complete(d, manifest, allow_partial)
    common = common_gene_ids(dirs, manifests)
    if genes is not None:
        available = set(common)
        missing = [g for g in genes if g not in available]
        del available
        if missing:
            raise InputDataError(f"gene(s) without tracks: {', '.join(missing[:10])}")
        gene_ids = list(genes)
    else:
        gene_ids = common
    if not gene_ids:
        raise InputDataError("no genes to predict")
    # each gene's name, in the order of gene_ids, as one column (a dict of id -> name held ~150 bytes a gene)
    planned = manifest_genes(manifests[0])
    names = planned.values_for("gene_name", gene_ids)
    channels, genes_arrays = load_gene_arrays(dirs, gene_ids, manifests, progress=progress)
    # what the gene loop needs of the folders is above: their manifests' rows go now, not after the longest phase
    sizes = contig_lengths(manifests[0]) if bigwig_prefix else {}
    del manifests, planned, common
    if channels != predictor.model.config.channels:
        raise InputDataError(f"tracks have channels {channels}, the model expects {predictor.model.config.channels}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    # bigWig needs each chromosome's positions sorted: rows go to a temporary parquet file as genes are
    # predicted, and are read back one chromosome and strand at a time (memory: the largest of those)
    spill = tempfile.TemporaryDirectory(prefix=".metalayer-bigwig-", dir=out.parent) if bigwig_prefix else None
    spill_writer = None
    total = int(gene_lengths(genes_arrays).sum())
    # small genes are written together, in row groups of about ROW_GROUP rows: a row group per gene would make
    # the file's footer, which the writer holds until it closes, grow with the number of genes
    pending: list = []
    spilled: list = []
    pending_rows = 0
    with atomic_path(out) as tmp, Progress("predict: genes", total=total, unit="nt", enabled=progress) as bar:
        try:
            for n, (gene_id, arrays) in enumerate(zip(gene_ids, genes_arrays), 1):
                probs = predictor(arrays.codes, arrays.tracks)
                frame = _gene_frame(dirs, gene_id, probs, names[n - 1])
                table = frame.to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(str(tmp), table.schema, compression="zstd")
                pending.append(table.cast(writer.schema))
                pending_rows += len(table)
                if spill is not None:
                    rows = frame.select("chrom", "strand", "position", "meta_acceptor", "meta_donor").to_arrow()
                    if spill_writer is None:
                        spill_writer = pq.ParquetWriter(str(Path(spill.name) / "rows.parquet"), rows.schema)
                    spilled.append(rows.cast(spill_writer.schema))
                if pending_rows >= ROW_GROUP or n == len(gene_ids):
                    writer.write_table(pa.concat_tables(pending))
                    if spill_writer is not None:
                        spill_writer.write_table(pa.concat_tables(spilled))
                    pending, spilled, pending_rows = [], [], 0
                bar.update(len(probs), genes=f"{n:,}/{len(gene_ids):,}")
        finally:
            if writer is not None:
                writer.close()
            if spill_writer is not None:
                spill_writer.close()
    if spill is not None:
        with spill:
            write_bigwigs(Path(spill.name) / "rows.parquet", bigwig_prefix, sizes)
    return out


def contig_lengths(manifest: dict) -> dict[str, int]:
    """``{contig: length}`` of the genome a tracks folder was prepared from, by the names its tracks use:
    recorded by ``prepare``; for a format-2 folder prepared before that, read from the FASTA whose path it
    recorded, if it is still there (formats 3 and 4 record no paths, and always the lengths)."""
    source = manifest.get("source", {})
    if source.get("contig_lengths"):
        return {str(k): int(v) for k, v in source["contig_lengths"].items()}
    fasta = source.get("fasta") if manifest.get("format_version") == 2 else None
    if fasta and Path(fasta).is_file():
        from meta_layer_cli.io.fasta import Fasta

        reference = Fasta(fasta)
        try:
            chroms = {g["chrom"] for g in manifest.get("genes", []) if g.get("chrom")}
            names = {c: reference.contigs.resolve(c) for c in chroms}
            return {c: reference.lengths[n] for c, n in names.items() if n is not None}
        finally:
            reference.close()
    return {}


def _gene_frame(dirs: Sequence[Path], gene_id: str, probs: np.ndarray, gene_name: str | None = None) -> pl.DataFrame:
    first = read_gene_track(dirs[0], gene_id)
    frames = [
        first.with_columns(pl.col("chrom").cast(pl.Utf8), pl.col("strand").cast(pl.Utf8), pl.col("base").cast(pl.Utf8))
    ]
    for i, d in enumerate(dirs[1:], 1):
        extra = read_gene_track(d, gene_id)
        channels = [c for c in extra.columns if c not in first.columns[:6]]
        frames.append(extra.select({c: pl.col(c).alias(f"{c}_{i}") for c in channels}.values()))
    meta = pl.DataFrame({name: probs[:, i] for i, name in enumerate(META_COLUMNS)})
    names = pl.DataFrame({"gene_id": [gene_id] * len(first), "gene_name": [gene_name or gene_id] * len(first)})
    return pl.concat([names, *frames, meta], how="horizontal")


def write_bigwigs(rows: str | os.PathLike, prefix: str, chrom_sizes: dict[str, int]) -> list[Path]:
    """``PREFIX.{acceptor,donor}.{plus,minus}.bw`` from a parquet table of ``chrom, strand, position`` (1-based)
    and ``meta_acceptor, meta_donor``; overlapping genes keep the max. Read one chromosome and strand at a time.

    ``chrom_sizes``: each contig's length (:func:`contig_lengths`), the bigWig header genome browsers and
    ``bigWigToBedGraph`` check positions against (never the last gene's end)."""
    try:
        import pyBigWig
    except ImportError:
        raise RuntimeFailure("writing bigWig needs pyBigWig (pip install pybigwig)") from None
    table = pl.scan_parquet(rows)
    spans = [pl.col("position").max().alias("end"), pl.col("position").null_count().alias("unknown")]
    keys = table.group_by("chrom", "strand").agg(spans).collect()
    if keys["unknown"].sum():
        raise InputDataError("bigWig output needs genomic coordinates (genes from --fasta/--gtf)")
    unknown = sorted(c for c in keys["chrom"].to_list() if c not in chrom_sizes)
    if unknown:
        raise InputDataError(
            f"bigWig output needs the length of contig {unknown[0]}, which the prepared "
            "folder does not record (prepared by an older metalayer, its FASTA gone): "
            "run `metalayer prepare` again, or predict with --fasta/--gtf"
        )
    written = []
    for kind in ("acceptor", "donor"):
        for strand, label in (("+", "plus"), ("-", "minus")):
            here = keys.filter(pl.col("strand") == strand).sort("chrom")
            if not len(here):
                continue
            path = Path(f"{prefix}.{kind}.{label}.bw")
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                bw = pyBigWig.open(str(tmp), "w")
                chroms = here["chrom"].to_list()
                bw.addHeader([(c, int(chrom_sizes[c])) for c in chroms])
                for chrom in chroms:
                    here_rows = table.filter((pl.col("chrom") == chrom) & (pl.col("strand") == strand))
                    track = here_rows.group_by("position").agg(pl.col(f"meta_{kind}").max()).sort("position").collect()
                    starts = (track["position"].to_numpy() - 1).astype(np.int64).tolist()
                    bw.addEntries(
                        [chrom] * len(starts),
                        starts,
                        ends=[s + 1 for s in starts],
                        values=track[f"meta_{kind}"].cast(pl.Float64).to_list(),
                    )
                bw.close()
            written.append(path)
    return written
