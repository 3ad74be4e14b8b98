"""Score tracks on disk: base-model probabilities + labels + sequence per nucleotide, and where genes come from."""

from meta_layer_cli.artifacts.arrays import (
    GeneArrays,
    common_gene_ids,
    gene_lengths,
    load_gene_arrays,
    stacked_channels,
)
from meta_layer_cli.artifacts.prediction import predict_tracks
from meta_layer_cli.artifacts.sources import (
    DemoSource,
    FastaSource,
    GeneEntry,
    GeneSource,
    SequenceSource,
    TracksSource,
    open_source,
)
from meta_layer_cli.artifacts.tracks import (
    finished_gene_ids,
    iter_tracks,
    read_gene_track,
    read_manifest,
    track_frame,
    write_gene_track,
)

__all__ = [
    "DemoSource",
    "FastaSource",
    "GeneArrays",
    "GeneEntry",
    "GeneSource",
    "SequenceSource",
    "TracksSource",
    "common_gene_ids",
    "finished_gene_ids",
    "gene_lengths",
    "iter_tracks",
    "load_gene_arrays",
    "open_source",
    "predict_tracks",
    "read_gene_track",
    "read_manifest",
    "stacked_channels",
    "track_frame",
    "write_gene_track",
]
