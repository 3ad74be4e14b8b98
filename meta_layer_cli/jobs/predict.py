"""``metalayer predict``: a trained checkpoint applied to new data.

Genes (from a prepared folder, a FASTA + annotation, or the demo set) get recalibrated per-nucleotide
probabilities (parquet, optionally bigWig); measured or hypothetical variant tables (``id, ref_seq,
alt_seq, exon_start, exon_end``) get base-model deltas and, with variant-model checkpoints, their
outputs. Base-model tracks for genes not yet prepared are predicted beside the output
(``OUT.base/``, resumable), with the base model the checkpoint was trained on; those of demo genes in the
track cache that ``metalayer demo`` and ``train-canonical`` fill (``cache``), so they are predicted once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from meta_layer_cli.artifacts import open_source, predict_tracks
from meta_layer_cli.artifacts.sources import read_genes_file
from meta_layer_cli.inference.genes import recalibrate_tracks
from meta_layer_cli.io.atomic import check_output_file, refuse_overwriting_inputs
from meta_layer_cli.jobs.canonical import demo_tracks
from meta_layer_cli.models.checkpoint import CanonicalCheckpoint
from meta_layer_cli.runtime.config import hardware_settings
from meta_layer_cli.runtime.device import resolve_device
from meta_layer_cli.runtime.errors import UsageError
from meta_layer_cli.runtime.progress import phase


@phase("predict")
def predict_genes(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    *,
    data: Sequence[str | os.PathLike] | str | os.PathLike | None = None,
    dataset: str | None = None,
    fasta: str | os.PathLike | None = None,
    gtf: str | os.PathLike | None = None,
    transcripts: str = "canonical",
    genes: Sequence[str] | None = None,
    genes_file: str | os.PathLike | None = None,
    region: str | None = None,
    shard: str | None = None,
    bigwig: str | None = None,
    models_dir: str | os.PathLike | None = None,
    profile: str | os.PathLike | None = None,
    device: str | None = None,
    progress: bool = True,
    allow_partial: bool = False,
    cache: str | os.PathLike | None = None,
) -> Path:
    """Recalibrated probabilities of genes to ``out`` (parquet); see the module docstring. An unfinished ``data``
    folder is refused unless ``allow_partial``.

    ``genes`` / ``genes_file``: gene names or ids (also unversioned ids and transcript ids), as
    ``prepare --genes`` takes them; a name that is not in the source is an error naming it.

    ``shard`` ("K/N"): only every N-th gene of the selection, starting with the K-th (so N jobs write N
    parquet files that together hold every gene once; ``polars.scan_parquet("dir/*.parquet")`` reads them
    as one table).

    ``cache``: the track cache of ``dataset`` genes (default ``$METALAYER_CACHE`` or ``~/.cache/metalayer``;
    ``metalayer demo``'s is ``OUT/cache``), keyed by base model and weights checksum.
    """
    if Path(out).suffix != ".parquet":
        raise UsageError(f"--out {out}: gene predictions are written as a .parquet table")
    check_output_file(out, "--out")
    bigwigs = [f"{bigwig}.{kind}.{strand}.bw" for kind in ("acceptor", "donor") for strand in ("plus", "minus")]
    refuse_overwriting_inputs(
        {"--out": [out, f"{out}.base"], "--bigwig": bigwigs if bigwig else None},
        {"--checkpoint": checkpoint, "--data": data, "--fasta": fasta, "--gtf": gtf, "--genes-file": genes_file},
    )
    hardware = hardware_settings(profile, device=device)
    wanted = list(genes or []) + (read_genes_file(genes_file) if genes_file else [])
    if data is not None:
        if fasta is not None or dataset is not None:
            raise UsageError("give one gene source: --data, --fasta with --gtf, or --dataset demo")
        dirs = [data] if isinstance(data, (str, os.PathLike)) else list(data)
        if wanted or region is not None or shard is not None:
            # names, ids, unversioned ids or transcript ids, resolved as `prepare --genes` resolves them
            source = open_source(tracks=dirs[0], allow_partial=allow_partial).select(wanted or None, region)
            wanted = _shard_ids(source, shard)
        return recalibrate_tracks(
            checkpoint, dirs, out, wanted or None, bigwig, hardware.device, progress, allow_partial
        )
    source = open_source(dataset, fasta, gtf, None, transcripts).select(wanted or None, region)
    if shard is not None:
        source = source.select(_shard_ids(source, shard))
    records = CanonicalCheckpoint.read(checkpoint).base_records
    ids = [e.gene_id for e in source.entries]
    dirs = []
    for record in records:
        model = record.load(device=hardware.device, models_dir=models_dir)
        if dataset is not None:  # the built-in genes' tracks live in the track cache, shared by every command
            dirs.append(demo_tracks(model, ids, cache, progress))
            continue
        directory = Path(f"{out}.base") / f"{record.name}-{record.weights_checksum}"
        predict_tracks(model, source, directory, progress=progress)
        dirs.append(directory)
    return recalibrate_tracks(checkpoint, dirs, out, ids, bigwig, hardware.device, progress)


def _shard_ids(source, shard: str | None) -> list[str]:
    from meta_layer_cli.runtime.shards import every_nth, parse_shard

    ids = [e.gene_id for e in source.entries]
    if shard is None:
        return ids
    k, n = parse_shard(shard)
    mine = every_nth(ids, (k, n))
    if not mine:
        raise UsageError(f"--shard {shard}: no genes in this shard ({len(ids)} genes for {n} shards)")
    return mine


def predict_variant_table(
    table: str | os.PathLike,
    out: str | os.PathLike,
    checkpoints: Sequence[str | os.PathLike] | None = None,
    base_model: str | None = None,
    weights: str | os.PathLike | None = None,
    window: int = 50,
    cache: str | os.PathLike | None = None,
    device: str | None = None,
    profile: str | os.PathLike | None = None,
):
    """Base-model deltas (and variant-model outputs with ``checkpoints``) for a ref/alt sequence table,
    written to ``out`` (.parquet, .tsv or .csv). Returns the table."""
    from meta_layer_cli.artifacts.sequences import score_sequences
    from meta_layer_cli.io.tables import write_table

    if Path(out).suffix not in (".parquet", ".tsv", ".csv", ".txt"):
        raise UsageError(f"--out {Path(out).name}: use a .parquet, .tsv or .csv file name")
    check_output_file(out, "--out")
    refuse_overwriting_inputs({"--out": out}, {"--variants": table, "--checkpoint": checkpoints, "--weights": weights})
    hardware = hardware_settings(profile, device=device)
    device = str(resolve_device(hardware.device))
    if checkpoints:
        from meta_layer_cli.inference.variant_models import score_sequences_with_models

        result = score_sequences_with_models(
            table, checkpoints, base_model=base_model, weights=weights, device=device, window=window, cache=cache
        )
    else:
        result = score_sequences(
            table, base_model=base_model or "spliceai", weights=weights, device=device, window=window, cache=cache
        )
    write_table(result, out)
    return result
