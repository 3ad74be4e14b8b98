"""Score tracks on disk: base-model probabilities + labels + sequence per nucleotide."""

from metasplice.artifacts.sources import demo_genes, fasta_gtf_genes
from metasplice.artifacts.tracks import (
    iter_tracks,
    predict_tracks,
    read_gene_track,
    read_manifest,
    track_frame,
    write_gene_track,
)

__all__ = [
    "demo_genes",
    "fasta_gtf_genes",
    "iter_tracks",
    "predict_tracks",
    "read_gene_track",
    "read_manifest",
    "track_frame",
    "write_gene_track",
]
