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
from meta_layer_cli.runtime.errors import InputDataError, reading
from meta_layer_cli.runtime.fingerprint import file_checksum

_KEYS = ("chrom", "pos", "strand")


def _checked(table: pl.DataFrame, channels: tuple[str, ...], path: Path) -> pl.DataFrame:
    """The table with typed columns, or one :class:`InputDataError` line: every score a probability in [0, 1]
    (no NaN: a missing position is a missing row), positions integers >= 1, strands + or -, and no position given
    twice on one strand (which score would be meant?)."""
    with reading(str(path)):
        typed = table.with_columns(
            pl.col("chrom").cast(pl.Utf8).map_elements(strip_chr, return_dtype=pl.Utf8),
            pl.col("pos").cast(pl.Int64, strict=False).alias("_pos"),
            pl.col("strand").cast(pl.Utf8),
            *(pl.col(c).cast(pl.Float64, strict=False).alias(f"_{c}") for c in channels),
        )
    checks = [("pos", typed["_pos"], "is not an integer >= 1", lambda s: s.is_null() | (s < 1))]
    checks += [
        (c, typed[f"_{c}"], "is not a probability in [0, 1]", lambda s: s.is_null() | s.is_nan() | (s < 0) | (s > 1))
        for c in channels
    ]
    for column, values, problem, is_bad in checks:
        bad = is_bad(values)
        if bad.any():
            i = int(bad.arg_max())
            raise InputDataError(f"{path.name} row {i + 1}: {column} {table[column][i]!r} {problem}")
    strands = ~typed["strand"].is_in(["+", "-"])
    if strands.any():
        i = int(strands.arg_max())
        raise InputDataError(f"{path.name} row {i + 1}: strand {table['strand'][i]!r} is not + or -")
    repeated = typed.select("chrom", "_pos", "strand").is_duplicated()
    if repeated.any():
        i = int(repeated.arg_max())
        raise InputDataError(
            f"{path.name} row {i + 1}: position {typed['chrom'][i]}:{typed['_pos'][i]} "
            f"({typed['strand'][i]}) appears more than once"
        )
    return typed.select(
        "chrom", pl.col("_pos").alias("pos"), "strand", *(pl.col(f"_{c}").cast(pl.Float32).alias(c) for c in channels)
    )


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
        with reading(str(path)):
            if path.suffix == ".parquet":
                table = pl.read_parquet(path)
            else:
                table = pl.read_csv(path, separator="\t", comment_prefix="#", infer_schema_length=10_000)
        missing = [k for k in _KEYS if k not in table.columns]
        if missing:
            raise InputDataError(f"{path}: missing column(s) {', '.join(missing)} (need chrom, pos, strand + channels)")
        self.channels = tuple(channels or [c for c in table.columns if c not in _KEYS])
        if not self.channels:
            raise InputDataError(f"{path}: no score columns besides chrom, pos, strand")
        self.weights_paths = (str(path),)
        self.weights_checksum = file_checksum([path])
        table = _checked(table, self.channels, path)
        self._by_contig = {
            (chrom, strand): part.sort("pos") for (chrom, strand), part in table.group_by(["chrom", "strand"])
        }

    def predict_gene(self, gene: GeneSequence) -> np.ndarray:
        if gene.positions is None:
            raise InputDataError(f"gene {gene.gene_id}: precomputed scores need genomic coordinates (--fasta/--gtf)")
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
