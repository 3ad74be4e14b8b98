"""A small, lossless VCF reader and writer (plain, gzip or bgzip in; plain or bgzip out).

Nothing is lost on the way through: every header line is kept in order, new
``##INFO`` lines are added just before the ``#CHROM`` line, and every body line
comes out as it went in, in order, with only its INFO column extended. Lines
are kept as text (undecodable bytes survive via ``surrogateescape``), line
endings included.

A record line with at least 8 tab-separated columns whose fields cannot be
understood (POS not a positive integer, empty REF/ALT, REF with characters
other than A/C/G/T/N) is *malformed*: it is passed through, flagged by the
caller, and reported with its line number. A line with fewer than 8 columns
cannot be passed through as a VCF record and raises ``ValueError`` naming the
line.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from meta_layer_cli.io.atomic import atomic_path

_ENCODING = "utf-8"
_ERRORS = "surrogateescape"
_REF_CHARS = re.compile(r"^[ACGTNacgtn]+$")
_INFO_ID = re.compile(r"^##INFO=<ID=([^,>]+)")


@dataclass
class VcfRecord:
    """One body line of a VCF.

    ``columns`` holds the raw tab-separated fields (``None`` for a blank or
    comment line in the body, which is passed through verbatim as ``raw``).
    ``error`` says why a record is malformed (``None`` when it is well formed).
    """

    line_number: int
    raw: str
    ending: str = "\n"
    columns: list[str] | None = None
    error: str | None = None

    @property
    def is_record(self) -> bool:
        return self.columns is not None

    @property
    def chrom(self) -> str:
        return self.columns[0]

    @property
    def pos(self) -> int:
        """1-based position (only valid when ``error`` is None)."""
        return int(self.columns[1])

    @property
    def ref(self) -> str:
        return self.columns[3]

    @property
    def alts(self) -> list[str]:
        """ALT alleles; ``[]`` for a ``.`` (no alternative allele)."""
        alt = self.columns[4]
        return [] if alt == "." else alt.split(",")

    def info_entries(self) -> list[str]:
        info = self.columns[7]
        return [] if info in (".", "") else info.split(";")

    def render(self, info: dict[str, str | None] | None = None, remove: Sequence[str] = ()) -> str:
        """The line (with its original ending) with INFO keys added, replaced or removed.

        ``info`` maps key -> value (``None`` for a flag). Existing keys are
        replaced in place; new ones are appended in the given order. Keys in
        ``remove`` (and not in ``info``) are dropped.
        """
        if self.columns is None or not (info or remove):
            return self.raw + self.ending
        info = info or {}
        entries = [e for e in self.info_entries() if e.split("=", 1)[0] not in set(remove) - set(info)]
        keys = [e.split("=", 1)[0] for e in entries]
        for key, value in info.items():
            entry = key if value is None else f"{key}={value}"
            if key in keys:
                entries[keys.index(key)] = entry
            else:
                entries.append(entry)
                keys.append(key)
        columns = list(self.columns)
        columns[7] = ";".join(entries) if entries else "."
        return "\t".join(columns) + self.ending


@dataclass
class VcfHeader:
    """Meta lines (``##...``, without line endings) and the ``#CHROM`` column line."""

    meta: list[str] = field(default_factory=list)
    columns_line: str = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"
    ending: str = "\n"

    def info_ids(self) -> set[str]:
        return {m.group(1) for line in self.meta if (m := _INFO_ID.match(line))}

    def with_info(self, lines: Sequence[str]) -> VcfHeader:
        """A copy with ``##INFO`` lines added (those whose ID is already defined are skipped)."""
        have = self.info_ids()
        extra = [line for line in lines if (m := _INFO_ID.match(line)) and m.group(1) not in have]
        return VcfHeader(self.meta + extra, self.columns_line, self.ending)


def _open_binary(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def _split_ending(line: str) -> tuple[str, str]:
    if line.endswith("\r\n"):
        return line[:-2], "\r\n"
    if line.endswith("\n"):
        return line[:-1], "\n"
    return line, "\n"


def _check_record(columns: list[str]) -> str | None:
    chrom, pos, _, ref, alt = columns[:5]
    if not chrom:
        return "empty CHROM"
    if not pos.isdigit() or int(pos) < 1:
        return f"POS {pos!r} is not a positive integer"
    if not _REF_CHARS.match(ref):
        return f"REF {ref!r} is not a nucleotide sequence"
    if not alt or any(not a for a in alt.split(",")):
        return f"ALT {alt!r} has an empty allele"
    return None


class VcfReader:
    """Iterate over a VCF: ``reader.header`` first, then :class:`VcfRecord` per body line.

    Usable as a context manager. Gzip and bgzip input are detected from the
    file's magic bytes, not its name.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"VCF not found: {self.path}")
        self._fh = _open_binary(self.path)
        self._line_number = 0
        self._pending: str | None = None
        self.header = self._read_header()

    def _next_line(self) -> str | None:
        raw = self._fh.readline()
        if not raw:
            return None
        self._line_number += 1
        return raw.decode(_ENCODING, _ERRORS)

    def _read_header(self) -> VcfHeader:
        meta: list[str] = []
        while True:
            try:
                line = self._next_line()
            except (OSError, EOFError) as err:
                raise ValueError(f"{self.path.name}: cannot read VCF ({err})") from None
            if line is None:
                raise ValueError(f"{self.path.name}: no '#CHROM' header line (is this a VCF?)")
            text, ending = _split_ending(line)
            if text.startswith("##"):
                meta.append(text)
            elif text.startswith("#CHROM"):
                return VcfHeader(meta, text, ending)
            elif not text.strip():
                meta.append(text)  # a stray blank header line is kept as it is
            else:
                raise ValueError(f"{self.path.name} line {self._line_number}: record before the '#CHROM' header line")

    def __iter__(self) -> Iterator[VcfRecord]:
        while True:
            try:
                line = self._next_line()
            except (OSError, EOFError) as err:
                raise ValueError(f"{self.path.name} line {self._line_number + 1}: cannot read ({err})") from None
            if line is None:
                return
            text, ending = _split_ending(line)
            if not text.strip() or text.startswith("#"):
                yield VcfRecord(self._line_number, text, ending)
                continue
            columns = text.split("\t")
            if len(columns) < 8:
                raise ValueError(
                    f"{self.path.name} line {self._line_number}: {len(columns)} tab-separated columns, "
                    "a VCF record needs at least 8 (CHROM POS ID REF ALT QUAL FILTER INFO)"
                )
            yield VcfRecord(self._line_number, text, ending, columns, _check_record(columns))

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> VcfReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_vcf(path: str | os.PathLike) -> tuple[VcfHeader, list[VcfRecord]]:
    """Whole VCF in memory: the header and every body line as a :class:`VcfRecord`."""
    with VcfReader(path) as reader:
        return reader.header, list(reader)


def _is_compressed_name(path: Path) -> bool:
    return path.suffix in (".gz", ".bgz")


class VcfWriter:
    """Write a VCF atomically: to a temporary file beside ``path``, renamed on success.

    Output is bgzip-compressed when ``path`` ends in ``.gz`` or ``.bgz`` (so
    ``tabix`` can index it), plain text otherwise. On an exception inside the
    ``with`` block the target is left untouched.
    """

    def __init__(self, path: str | os.PathLike, header: VcfHeader):
        self.path = Path(path)
        self.header = header
        self._ctx = None
        self._fh = None

    def __enter__(self) -> VcfWriter:
        self._ctx = atomic_path(self.path)
        tmp = self._ctx.__enter__()
        if _is_compressed_name(self.path):
            import pysam

            self._fh = pysam.BGZFile(str(tmp), "wb")
        else:
            self._fh = open(tmp, "wb")
        ending = self.header.ending
        for line in self.header.meta:
            self._write(line + ending)
        self._write(self.header.columns_line + ending)
        return self

    def _write(self, text: str) -> None:
        self._fh.write(text.encode(_ENCODING, _ERRORS))

    def write(self, record: VcfRecord, info: dict[str, str | None] | None = None, remove: Sequence[str] = ()) -> None:
        """Write one body line, with INFO keys added/replaced/removed (see :meth:`VcfRecord.render`)."""
        self._write(record.render(info, remove))

    def __exit__(self, exc_type, exc, tb) -> None:
        self._fh.close()
        self._ctx.__exit__(exc_type, exc, tb)


def write_vcf(
    path: str | os.PathLike,
    header: VcfHeader,
    records: Sequence[VcfRecord],
    info: Sequence[dict[str, str | None] | None] | None = None,
) -> None:
    """Write ``records`` (with optional per-record INFO additions) atomically."""
    with VcfWriter(path, header) as out:
        for i, record in enumerate(records):
            out.write(record, info[i] if info is not None else None)
