"""Score tracks on disk: base-model probabilities + labels + sequence per nucleotide."""

from meta_layer_cli.artifacts.arrays import GeneArrays, common_gene_ids, load_gene_arrays, stacked_channels
from meta_layer_cli.artifacts.sources import demo_genes, fasta_gtf_genes
from meta_layer_cli.artifacts.tracks import (
    iter_tracks,
    predict_tracks,
    read_gene_track,
    read_manifest,
    track_frame,
    write_gene_track,
)

__all__ = [
    "GeneArrays",
    "common_gene_ids",
    "load_gene_arrays",
    "stacked_channels",
    "demo_genes",
    "fasta_gtf_genes",
    "iter_tracks",
    "predict_tracks",
    "read_gene_track",
    "read_manifest",
    "track_frame",
    "write_gene_track",
]
