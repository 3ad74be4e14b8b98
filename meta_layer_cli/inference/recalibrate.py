"""``metalayer recalibrate``: full-coverage meta-layer tracks for every nucleotide of some genes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from meta_layer_cli.artifacts import (
    common_gene_ids,
    demo_genes,
    fasta_gtf_genes,
    load_gene_arrays,
    predict_tracks,
    read_gene_track,
    read_manifest,
)
from meta_layer_cli.base_models import load_base_model
from meta_layer_cli.io.atomic import atomic_path
from meta_layer_cli.models.apply import recalibrate_arrays
from meta_layer_cli.models.checkpoint import load_model
from meta_layer_cli.models.structure import structure_from_config

META_COLUMNS = ("meta_neither", "meta_acceptor", "meta_donor")


def _base_models(config: dict) -> list[dict]:
    run = config.get("run")
    if not run:
        raise ValueError("checkpoint has no run information (was it written by `metalayer train`?)")
    return run["base_models"]


def _tracks_for(
    config: dict, out: Path, dataset: str | None, genes: Sequence[str] | None, fasta, gtf, device: str, progress: bool
) -> tuple[list[Path], list[str]]:
    dirs, gene_ids = [], []
    for base in _base_models(config):
        model = load_base_model(base["name"], weights=base["weights"], device=device)
        if model.weights_checksum != base["weights_checksum"]:
            raise ValueError(
                f"base model {base['name']} weights differ from training ({model.weights_checksum} vs "
                f"{base['weights_checksum']}); the meta model would see different inputs"
            )
        directory = Path(f"{out}.base") / f"{model.name}-{model.weights_checksum}"
        if dataset is not None:
            if dataset != "demo":
                raise ValueError(f"unknown dataset {dataset!r} (built in: demo)")
            source = demo_genes(list(genes) if genes else None)
        else:
            if fasta is None or gtf is None:
                raise ValueError("give --dataset demo, --fasta with --gtf, or --artifacts")
            source = fasta_gtf_genes(fasta, gtf, list(genes) if genes else None)(model.context)
        predict_tracks(model, source, directory, progress=progress)
        dirs.append(directory)
        gene_ids = [g.gene_id for g in source]
    return dirs, gene_ids


def recalibrate(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    *,
    dataset: str | None = None,
    genes: Sequence[str] | None = None,
    fasta: str | os.PathLike | None = None,
    gtf: str | os.PathLike | None = None,
    artifacts: Sequence[str | os.PathLike] | None = None,
    bigwig_prefix: str | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> Path:
    """Write base and meta probabilities for every nucleotide of the requested genes to ``out`` (parquet).

    Base tracks come from ``artifacts`` (directories written by ``metalayer predict``,
    one per base model the checkpoint was trained on, in the same order) or are
    predicted here and kept beside the output (``OUT.base/``, resumable). Rows:
    ``gene_id`` plus the track columns, then ``meta_neither, meta_acceptor,
    meta_donor``. With ``bigwig_prefix``, also writes strand-specific bigWig files
    of the meta acceptor and donor scores (needs genomic coordinates).
    """
    import pyarrow.parquet as pq

    model, config = load_model(checkpoint, device)
    structure = structure_from_config(config)  # genes here are whole transcripts
    out = Path(out)
    if artifacts:
        dirs = [Path(a) for a in artifacts]
        expected = _base_models(config)
        if len(dirs) != len(expected):
            raise ValueError(f"checkpoint was trained on {len(expected)} base model(s); got {len(dirs)} --artifacts")
        for d, base in zip(dirs, expected):
            manifest = read_manifest(d)
            if manifest["weights_checksum"] != base["weights_checksum"]:
                raise ValueError(f"{d} holds {manifest['base_model']} tracks from other weights than training used")
        available = common_gene_ids(dirs)
        missing = sorted(set(genes or []) - set(available))
        if missing:
            raise KeyError(f"gene(s) not in the artifacts: {', '.join(missing[:5])}")
        gene_ids = [g for g in available if not genes or g in set(genes)]
    else:
        dirs, gene_ids = _tracks_for(config, out, dataset, genes, fasta, gtf, device, progress)
    channels, _ = load_gene_arrays(dirs, gene_ids[:1])
    if channels != model.config.channels:
        raise ValueError(f"tracks have channels {channels}, the model expects {model.config.channels}")
    writer = None
    per_strand: dict[tuple[str, str], list[pl.DataFrame]] = {}
    with atomic_path(out) as tmp:
        try:
            for gene_id in gene_ids:
                _, (arrays,) = load_gene_arrays(dirs, [gene_id])
                probs = recalibrate_arrays(model, arrays.codes, arrays.tracks, device=device, structure=structure)
                frame = _gene_frame(dirs, gene_id, probs)
                table = frame.to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(str(tmp), table.schema, compression="zstd")
                writer.write_table(table.cast(writer.schema))
                if bigwig_prefix is not None:
                    per_strand.setdefault((str(frame["chrom"][0]), str(frame["strand"][0])), []).append(
                        frame.select("position", "meta_acceptor", "meta_donor")
                    )
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise ValueError("no genes to recalibrate")
    if bigwig_prefix is not None:
        write_bigwigs(per_strand, bigwig_prefix)
    return out


def _gene_frame(dirs: Sequence[Path], gene_id: str, probs: np.ndarray) -> pl.DataFrame:
    first = read_gene_track(dirs[0], gene_id)
    frames = [first.with_columns(pl.col("chrom").cast(pl.Utf8), pl.col("strand").cast(pl.Utf8),
                                 pl.col("base").cast(pl.Utf8))]  # fmt: skip
    if len(dirs) > 1:
        for i, d in enumerate(dirs[1:], 1):
            extra = read_gene_track(d, gene_id)
            channels = [c for c in extra.columns if c not in first.columns[:6]]
            frames.append(extra.select({c: pl.col(c).alias(f"{c}_{i}") for c in channels}.values()))
    meta = pl.DataFrame({name: probs[:, i] for i, name in enumerate(META_COLUMNS)})
    return pl.concat([pl.DataFrame({"gene_id": [gene_id] * len(first)}), *frames, meta], how="horizontal")


def write_bigwigs(per_strand: dict[tuple[str, str], list[pl.DataFrame]], prefix: str) -> list[Path]:
    """``PREFIX.{acceptor,donor}.{plus,minus}.bw`` from 1-based positions; overlapping genes keep the max."""
    try:
        import pyBigWig
    except ImportError:
        raise RuntimeError("writing bigWig needs pyBigWig (pip install pybigwig)") from None
    written = []
    for kind in ("acceptor", "donor"):
        for strand, label in (("+", "plus"), ("-", "minus")):
            parts = {chrom: pl.concat(frames) for (chrom, s), frames in per_strand.items() if s == strand}
            if not parts:
                continue
            if any(p["position"].null_count() for p in parts.values()):
                raise ValueError("bigWig output needs genomic coordinates (use --fasta/--gtf input)")
            path = Path(f"{prefix}.{kind}.{label}.bw")
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                bw = pyBigWig.open(str(tmp), "w")
                chroms = sorted(parts)
                bw.addHeader([(c, int(parts[c]["position"].max()) + 1) for c in chroms])
                for chrom in chroms:
                    track = parts[chrom].group_by("position").agg(pl.col(f"meta_{kind}").max()).sort("position")
                    starts = (track["position"].to_numpy() - 1).astype(np.int64).tolist()
                    bw.addEntries([chrom] * len(starts), starts, ends=[s + 1 for s in starts],
                                  values=track[f"meta_{kind}"].cast(pl.Float64).to_list())  # fmt: skip
                bw.close()
            written.append(path)
    return written
