"""Scores produced by any other tool, read from a table, behind the same interface."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import polars as pl

from meta_layer_cli.base_models.base import BaseModel
from meta_layer_cli.io.contigs import strip_chr
from meta_layer_cli.io.genes import GeneSequence
from meta_layer_cli.runtime.fingerprint import file_checksum

_KEYS = ("chrom", "pos", "strand")


class PrecomputedScores(BaseModel):
    """Per-nucleotide scores from a parquet or TSV table.

    Columns: ``chrom``, ``pos`` (1-based), ``strand`` (+/-), then one float column
    per channel (all other columns, in file order). Genes are looked up by their
    genomic positions, so they must come with coordinates (FASTA + GTF input).
    Positions the table lacks score NaN, with one warning per gene.
    """

    name = "precomputed"
    context = 0

    def __init__(self, path: str | os.PathLike, channels: list[str] | None = None):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"precomputed scores not found: {path} (expected .parquet or .tsv)")
        if path.suffix == ".parquet":
            table = pl.read_parquet(path)
        else:
            table = pl.read_csv(path, separator="\t", comment_prefix="#", infer_schema_length=10_000)
        missing = [k for k in _KEYS if k not in table.columns]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)} (need chrom, pos, strand + channels)")
        self.channels = tuple(channels or [c for c in table.columns if c not in _KEYS])
        if not self.channels:
            raise ValueError(f"{path}: no score columns besides chrom, pos, strand")
        self.weights_paths = (str(path),)
        self.weights_checksum = file_checksum([path])
        table = table.with_columns(
            pl.col("chrom").cast(pl.Utf8).map_elements(strip_chr, return_dtype=pl.Utf8),
            pl.col("pos").cast(pl.Int64),
            *(pl.col(c).cast(pl.Float32) for c in self.channels),
        )
        self._by_contig = {
            (chrom, strand): part.sort("pos") for (chrom, strand), part in table.group_by(["chrom", "strand"])
        }

    def predict_gene(self, gene: GeneSequence) -> np.ndarray:
        if gene.positions is None:
            raise ValueError(f"gene {gene.gene_id}: precomputed scores need genomic coordinates (use --fasta/--gtf)")
        out = np.full((len(gene.positions), len(self.channels)), np.nan, dtype=np.float32)
        part = self._by_contig.get((strip_chr(gene.chrom), gene.strand))
        if part is not None:
            pos = part["pos"].to_numpy()
            idx = np.searchsorted(pos, gene.positions)
            idx_clipped = np.minimum(idx, len(pos) - 1)
            found = pos[idx_clipped] == gene.positions
            values = part.select(self.channels).to_numpy()
            out[found] = values[idx_clipped[found]]
        n_missing = int(np.isnan(out[:, 0]).sum())
        if n_missing:
            warnings.warn(
                f"precomputed scores: {n_missing} of {len(out)} positions of gene {gene.gene_name or gene.gene_id} "
                f"({gene.chrom}, {gene.strand}) are not in the table; they score NaN",
                stacklevel=2,
            )
        return out
