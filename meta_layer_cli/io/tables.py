"""Tables in and out: polars DataFrames from CSV / TSV / parquet, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from meta_layer_cli.io.atomic import atomic_path
from meta_layer_cli.runtime.errors import InputDataError, UsageError, reading


def read_table(table) -> pl.DataFrame:
    """A DataFrame as is, or a CSV / TSV / parquet file read into one (clear error if missing)."""
    if isinstance(table, pl.DataFrame):
        return table
    path = Path(table)
    if not path.is_file():
        raise FileNotFoundError(f"table not found: {path}")
    with reading(str(path)):
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
            raise UsageError(f"{path.name}: output table must end in .parquet, .tsv or .csv")


VARIANT_COLUMNS = ("id", "ref_seq", "alt_seq", "exon_start", "exon_end")
_NUMERIC = ("target", "ref_psi")


def _as_numbers(frame: pl.DataFrame, column: str, dtype, what: str) -> pl.Series:
    """``column`` as ``dtype``, or an :class:`InputDataError` naming the first value that is not a number."""
    series = frame[column]
    if series.dtype == pl.Null:
        return series.cast(dtype)
    cast = series.cast(dtype, strict=False)
    bad = cast.is_null() & series.is_not_null()
    if dtype == pl.Int64 and series.dtype.is_float():  # 12.5 is no coordinate; 12.0 is
        bad = bad | (series.is_not_null() & (series != series.floor()))
    if bad.any():
        i = int(bad.arg_max())
        raise InputDataError(
            f"{what} row {i} ({frame['id'][i]}): {column} {series[i]!r} is not "
            f"{'an integer' if dtype == pl.Int64 else 'a number'}"
        )
    return cast


def check_variant_table(frame: pl.DataFrame, what: str = "variant table") -> pl.DataFrame:
    """A ref/alt sequence table (``id, ref_seq, alt_seq, exon_start, exon_end`` [, ``target``, ``ref_psi``]) checked
    before anything is scored: the columns exist, sequences are non-empty nucleotide strings (A/C/G/T/N and IUPAC
    codes, any case), exon bounds are integers with ``exon_start < exon_end`` where both are given, and targets are
    finite numbers. Returns the frame with those columns cast (``Int64`` bounds, ``Float64`` numbers); any problem
    is one :class:`InputDataError` naming the row."""
    from meta_layer_cli.io.sequence import validate_sequence

    missing = [c for c in VARIANT_COLUMNS if c not in frame.columns]
    if missing:
        raise InputDataError(f"{what} lacks column(s) {', '.join(missing)} (needs {', '.join(VARIANT_COLUMNS)})")
    if frame["id"].null_count():
        raise InputDataError(f"{what} row {int(frame['id'].is_null().arg_max())}: empty id")
    for column in ("ref_seq", "alt_seq"):
        values = frame[column]
        if values.dtype != pl.Utf8:
            raise InputDataError(f"{what}: column {column} holds {values.dtype}, not sequences")
        for i, seq in enumerate(values.to_list()):
            if not seq:
                raise InputDataError(f"{what} row {i} ({frame['id'][i]}): empty {column}")
            validate_sequence(seq, f"{what} row {i} ({frame['id'][i]}) {column}")
    start = _as_numbers(frame, "exon_start", pl.Int64, what)
    end = _as_numbers(frame, "exon_end", pl.Int64, what)
    reversed_ = (start >= end).fill_null(False)
    if reversed_.any():
        i = int(reversed_.arg_max())
        raise InputDataError(
            f"{what} row {i} ({frame['id'][i]}): exon_start {start[i]} is not before exon_end {end[i]}"
        )
    columns = [start.alias("exon_start"), end.alias("exon_end")]
    for column in _NUMERIC:
        if column in frame.columns:
            numbers = _as_numbers(frame, column, pl.Float64, what)
            infinite = numbers.is_infinite().fill_null(False) | numbers.is_nan().fill_null(False)
            if infinite.any():
                i = int(infinite.arg_max())
                raise InputDataError(
                    f"{what} row {i} ({frame['id'][i]}): {column} {numbers[i]} is not a finite "
                    "number (leave it empty for none)"
                )
            columns.append(numbers.alias(column))
    return frame.with_columns(columns)
