"""The built-in demo dataset: 610 real human genes (chr1 and chr3, SpliceAI's held-out test
chromosomes) with canonical GENCODE splice-site labels, shipped in ``frame-alignment-checks``.

Sequences run from transcript start to end in transcript orientation, with no
flanking DNA (so predictions are N-padded). Gene ids are the npz indices as
strings (``x605`` -> ``"605"``).
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np

from meta_layer_cli.io.genes import GeneSequence
from meta_layer_cli.io.resources import package_file
from meta_layer_cli.io.sequence import one_hot_to_sequence

_DIST = "frame-alignment-checks"
_NPZ = "frame_alignment_checks/data/relevant_validation_genes.npz"
_COORDS = "frame_alignment_checks/data/relevant_validation_genes_transcript_coords.json"


@lru_cache(maxsize=1)
def _archive():
    return np.load(package_file(_DIST, _NPZ))


@lru_cache(maxsize=1)
def demo_gene_info() -> dict[str, dict]:
    """Per-gene metadata (gene name, transcript, chrom, strand, hg19/hg38 span) where known."""
    with open(package_file(_DIST, _COORDS)) as fh:
        return json.load(fh)


def demo_gene_ids() -> list[str]:
    """All 610 gene ids, in numeric order."""
    return sorted({name[1:] for name in _archive().files}, key=int)


def load_demo_gene(gene_id: str) -> GeneSequence:
    """One demo gene with its sequence and labels (0 neither, 1 acceptor, 2 donor)."""
    gene_id = str(gene_id)
    archive = _archive()
    if f"x{gene_id}" not in archive.files:
        raise KeyError(f"demo gene {gene_id!r} does not exist (ids run from 1 to 825 with gaps)")
    x = archive[f"x{gene_id}"]
    y = archive[f"y{gene_id}"]
    seq = one_hot_to_sequence(x.T)
    info = demo_gene_info().get(gene_id, {})
    return GeneSequence(
        gene_id=gene_id,
        gene_name=info.get("gene", ""),
        chrom=info.get("chrom", ""),
        strand=info.get("strand", "+"),
        sequence=seq,
        labels=y.argmax(1).astype(np.int8),
    )


def demo_gene_length(gene_id: str) -> int:
    return int(_archive()[f"x{gene_id}"].shape[0])
