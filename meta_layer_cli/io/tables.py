"""Tables in and out: polars DataFrames from CSV / TSV / parquet, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from meta_layer_cli.io.atomic import atomic_path


def read_table(table) -> pl.DataFrame:
    """A DataFrame as is, or a CSV / TSV / parquet file read into one (clear error if missing)."""
    if isinstance(table, pl.DataFrame):
        return table
    path = Path(table)
    if not path.is_file():
        raise FileNotFoundError(f"table not found: {path}")
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    sep = "\t" if path.suffix in (".tsv", ".txt") or path.name.endswith(".tsv.gz") else ","
    return pl.read_csv(path, separator=sep, infer_schema_length=10_000)


def write_table(frame: pl.DataFrame, path: str | os.PathLike) -> None:
    """Write a table atomically as parquet, TSV or CSV (by suffix)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            frame.write_parquet(tmp)
        elif path.suffix in (".tsv", ".txt"):
            frame.write_csv(tmp, separator="\t")
        elif path.suffix == ".csv":
            frame.write_csv(tmp)
        else:
            raise ValueError(f"{path.name}: output table must end in .parquet, .tsv or .csv")
