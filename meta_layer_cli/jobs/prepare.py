"""``metalayer prepare``: a genome + annotation (or the demo genes, or a prepared folder) and a base model
-> a prepared tracks folder that training, evaluation and prediction read.

Streaming (one gene in memory at a time), resumable (finished genes are skipped), safe for several
jobs at once (``--shard K/N`` into one folder), and refusing to mix inputs: see
:mod:`meta_layer_cli.artifacts.tracks`. Every gene dropped from the annotation is named in a
warning and listed, with its reason, in the manifest.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from meta_layer_cli.artifacts import open_source, predict_tracks
from meta_layer_cli.artifacts.sources import GeneSource, read_genes_file
from meta_layer_cli.base_models import load_base_model
from meta_layer_cli.io.atomic import refuse_overwriting_inputs
from meta_layer_cli.runtime.config import hardware_settings
from meta_layer_cli.runtime.progress import Progress, phase

logger = logging.getLogger(__name__)
SHOWN_DROPS = 10


def report_dropped(dropped: Sequence[dict], where: str) -> None:
    """One warning naming the dropped genes (the first :data:`SHOWN_DROPS`) and their reasons."""
    if not dropped:
        return
    shown = "; ".join(f"{d['gene_id']}: {d['reason']}" for d in dropped[:SHOWN_DROPS])
    more = f"; and {len(dropped) - SHOWN_DROPS} more" if len(dropped) > SHOWN_DROPS else ""
    logger.warning(f"{len(dropped)} gene(s) dropped from the annotation ({shown}{more}); all are listed in {where}")


@phase("prepare")
def prepare(
    out: str | os.PathLike,
    base_model: str = "spliceai",
    weights: str | os.PathLike | None = None,
    *,
    flank: int | None = None,
    models_dir: str | os.PathLike | None = None,
    dataset: str | None = None,
    fasta: str | os.PathLike | None = None,
    gtf: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    transcripts: str = "canonical",
    biotype: Sequence[str] | None = None,
    genes: Sequence[str] | None = None,
    genes_file: str | os.PathLike | None = None,
    region: str | None = None,
    shard: str | None = None,
    genome_build: str | None = None,
    profile: str | os.PathLike | None = None,
    device: str | None = None,
    dtype: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    source: GeneSource | None = None,
    allow_partial: bool = False,
) -> dict:
    """Prepare ``out``: the base model's tracks of every selected gene (module docstring).

    Sources: ``dataset="demo"``, ``fasta`` + ``gtf`` (a GTF/GFF3, an annotation table, ``grch37`` or
    ``grch38``), or ``data`` (another prepared folder: the same genes, e.g. for a second base model; an
    unfinished one is refused unless ``allow_partial``); ``source``: one already opened from those
    (:func:`~meta_layer_cli.artifacts.open_source`), so a caller that looked at its genes first does not read the
    FASTA and annotation twice.
    Returns the manifest, with this run's counts under ``last_run``.
    """
    refuse_overwriting_inputs(
        {"--out": out},
        {"--fasta": fasta, "--gtf": gtf, "--data": data, "--weights": weights, "--genes-file": genes_file},
    )
    hardware = hardware_settings(profile, device=device, dtype=dtype)
    # checksumming a genome's FASTA and parsing its annotation take minutes: a phase of their own
    with Progress("reading genes (FASTA, annotation)", bar=False, enabled=progress):
        if source is None:
            source = open_source(dataset, fasta, gtf, data, transcripts, biotype, genome_build, allow_partial)
        wanted = list(genes or []) + (read_genes_file(genes_file) if genes_file else [])
        source = source.select(wanted or None, region)
    report_dropped(source.dropped, f"{out}/manifest.json")
    sizes = {k: v for k, v in (("block_size", hardware.base_block), ("batch_size", hardware.base_batch)) if v}
    model = load_base_model(
        base_model,
        weights=weights,
        device=hardware.device,
        dtype=hardware.dtype,
        flank=flank,
        models_dir=models_dir,
        **sizes,
    )
    return predict_tracks(
        model, source, out, genome_build=genome_build, shard=shard, overwrite=overwrite, progress=progress
    )
