"""A small, lossless VCF reader and writer (plain, gzip or bgzip in; plain or bgzip out; ``-`` for
standard input / output).

Nothing is lost on the way through: every header line is kept in order, new
``##INFO`` lines are added just before the ``#CHROM`` line, and every body line
comes out as it went in, in order, with only its INFO column extended. Lines
are kept as text (undecodable bytes survive via ``surrogateescape``), line
endings included.

A record line whose fields cannot be understood is *malformed*
(:attr:`VcfRecord.error` says why): fewer than 8 tab-separated columns, POS not
a positive integer written in ASCII digits (``12a``, ``1e5``, ``²``), an empty
CHROM, REF with characters other than A/C/G/T/N, an empty ALT allele, or an ALT
with a non-ASCII (or undecodable) character or white space. It is still a
record: it is passed through, flagged by the caller and reported with its line
number. A line with fewer than 8 columns keeps its columns and gets the missing
ones, up to INFO, filled with ``.``, so that an INFO flag can be added to it
(``1 100 . A G``, separated by spaces, comes out as that text in CHROM and
``.`` in POS..FILTER, then INFO).

Input is read in one pass and may be a stream (``-``, a FIFO, ``/dev/stdin``);
:func:`rereadable` spools a stream to a temporary file when it has to be read
twice. Output goes through :mod:`meta_layer_cli.io.atomic`: atomic for regular
files, written through for ``-``, links and devices.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from meta_layer_cli.io.atomic import atomic_path, is_stdout, output_path, writes_through
from meta_layer_cli.runtime.errors import InputDataError, UsageError

STDIN = "-"
_ENCODING = "utf-8"
_ERRORS = "surrogateescape"
_REF_CHARS = re.compile(r"^[ACGTNacgtn]+$")
_POS = re.compile(r"^[0-9]+$")
_ALT_CHARS = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no white space
_INFO_ID = re.compile(r"^##INFO=<ID=([^,>]+)")
MIN_COLUMNS = 8


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

    def replacing_info(self, lines: Sequence[str], drop: Sequence[str] = ()) -> VcfHeader:
        """A copy where each of ``lines`` replaces the ``##INFO`` line of its ID (in place; appended when the
        ID is new; further lines of that ID dropped), and the ``##INFO`` lines of the IDs in ``drop`` are
        removed."""
        new = {m.group(1): line for line in lines if (m := _INFO_ID.match(line))}
        meta, placed = [], set()
        for line in self.meta:
            m = _INFO_ID.match(line)
            if m and m.group(1) in new:
                if m.group(1) not in placed:
                    meta.append(new[m.group(1)])
                    placed.add(m.group(1))
            elif not (m and m.group(1) in drop):
                meta.append(line)
        meta += [line for key, line in new.items() if key not in placed]
        return VcfHeader(meta, self.columns_line, self.ending)

    def without(self, prefixes: Sequence[str]) -> VcfHeader:
        """A copy without the meta lines that start with any of ``prefixes``."""
        return VcfHeader([m for m in self.meta if not m.startswith(tuple(prefixes))], self.columns_line, self.ending)

    def lines(self) -> list[str]:
        """Every header line, ``#CHROM`` line last (without line endings)."""
        return [*self.meta, self.columns_line]


class _Prefixed(io.RawIOBase):
    """A stream that could not seek back: the bytes already read (``head``), then the rest of ``stream``."""

    def __init__(self, head: bytes, stream):
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        read = getattr(self._stream, "read1", self._stream.read)
        data = read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _open_binary(path: str | os.PathLike):
    """A binary stream of ``path`` (``-``: standard input), decompressed when it starts with gzip's magic bytes
    (gzip or bgzip). The file is opened once, so FIFOs and process substitutions work."""
    raw = sys.stdin.buffer if os.fspath(path) == STDIN else open(path, "rb")
    start = raw.tell() if raw.seekable() else None
    magic = raw.read(2)
    if start is not None:
        raw.seek(start)
        stream = raw
    else:
        stream = io.BufferedReader(_Prefixed(magic, raw), buffer_size=1 << 16)
    return gzip.GzipFile(fileobj=stream, mode="rb") if magic == b"\x1f\x8b" else stream, raw


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
    if not _POS.match(pos) or int(pos) < 1:
        return f"POS {pos!r} is not a positive integer"
    if not _REF_CHARS.match(ref):
        return f"REF {ref!r} is not a nucleotide sequence"
    if not alt or any(not a for a in alt.split(",")):
        return f"ALT {alt!r} has an empty allele"
    if not _ALT_CHARS.match(alt):
        return f"ALT {alt!r} has a non-ASCII or white-space character"
    return None


def _parse_record(text: str) -> tuple[list[str], str | None]:
    """Columns (a short line filled with ``.`` up to INFO) and why the record is malformed (or None)."""
    columns = text.split("\t")
    if len(columns) < MIN_COLUMNS:
        error = (
            f"{len(columns)} tab-separated columns, a VCF record needs at least {MIN_COLUMNS} "
            "(CHROM POS ID REF ALT QUAL FILTER INFO)"
        )
        return columns + ["."] * (MIN_COLUMNS - len(columns)), error
    return columns, _check_record(columns)


class VcfReader:
    """Iterate over a VCF: ``reader.header`` first, then :class:`VcfRecord` per body line.

    Usable as a context manager. Gzip and bgzip input are detected from the
    file's magic bytes, not its name. ``path`` may be ``-`` (standard input),
    a FIFO or a device: it is read once, front to back. ``name``: what messages
    call it (default: the file name, ``<stdin>`` for ``-``).
    """

    def __init__(self, path: str | os.PathLike, name: str | None = None):
        self.path = Path(path)
        self.name = name or ("<stdin>" if os.fspath(path) == STDIN else self.path.name)
        if os.fspath(path) != STDIN and (not self.path.exists() or self.path.is_dir()):
            raise FileNotFoundError(f"VCF not found: {self.path}")
        self._fh, self._raw = _open_binary(path)
        self._line_number = 0
        try:
            self.header = self._read_header()
        except BaseException:
            self.close()
            raise

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
                raise InputDataError(f"{self.name}: cannot read VCF ({err})") from None
            if line is None:
                raise InputDataError(f"{self.name}: no '#CHROM' header line (is this a VCF?)")
            text, ending = _split_ending(line)
            if text.startswith("##"):
                meta.append(text)
            elif text.startswith("#CHROM"):
                return VcfHeader(meta, text, ending)
            elif not text.strip():
                meta.append(text)  # a stray blank header line is kept as it is
            else:
                raise InputDataError(f"{self.name} line {self._line_number}: record before the '#CHROM' header line")

    def __iter__(self) -> Iterator[VcfRecord]:
        while True:
            try:
                line = self._next_line()
            except (OSError, EOFError) as err:
                raise InputDataError(f"{self.name} line {self._line_number + 1}: cannot read ({err})") from None
            if line is None:
                return
            text, ending = _split_ending(line)
            if not text.strip() or text.startswith("#"):
                yield VcfRecord(self._line_number, text, ending)
                continue
            columns, error = _parse_record(text)
            yield VcfRecord(self._line_number, text, ending, columns, error)

    def close(self) -> None:
        if self._raw is sys.stdin.buffer:
            return  # never close standard input
        self._fh.close()
        self._raw.close()

    def __enter__(self) -> VcfReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_vcf(path: str | os.PathLike) -> tuple[VcfHeader, list[VcfRecord]]:
    """Whole VCF in memory: the header and every body line as a :class:`VcfRecord`."""
    with VcfReader(path) as reader:
        return reader.header, list(reader)


def is_seekable_file(path: str | os.PathLike) -> bool:
    """A regular file (it can be read twice); not ``-``, a FIFO or a device."""
    if os.fspath(path) == STDIN:
        return False
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


@contextlib.contextmanager
def rereadable(path: str | os.PathLike) -> Iterator[str | os.PathLike]:
    """``path`` itself when it is a regular file; otherwise (``-``, a FIFO, a device) its bytes spooled to a
    temporary file (in ``$TMPDIR``), removed afterwards, so that it can be read more than once."""
    if is_seekable_file(path):
        yield path
        return
    if os.fspath(path) != STDIN and not Path(path).exists():
        raise FileNotFoundError(f"VCF not found: {path}")
    fd, tmp = tempfile.mkstemp(prefix="metalayer-input.", suffix=".vcf")
    try:
        with os.fdopen(fd, "wb") as out:
            if os.fspath(path) == STDIN:
                shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
            else:
                with open(path, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        yield tmp
    finally:
        os.unlink(tmp)


class IndexCheck:
    """Whether records can be tabix-indexed: a numeric POS on every record, sorted by POS within a contig,
    each contig in one block. :meth:`add` raises :class:`InputDataError` naming the first line that cannot."""

    def __init__(self, name: str):
        self.name = name
        self._chrom: str | None = None
        self._pos = 0
        self._done: set[str] = set()

    def add(self, record: VcfRecord) -> None:
        if not record.is_record:
            return
        chrom, pos = record.columns[0], record.columns[1]
        where = f"{self.name} line {record.line_number}: cannot be tabix-indexed (--write-index)"
        if not _POS.match(pos):
            raise InputDataError(f"{where}: POS {pos!r} is not a number")
        if chrom != self._chrom:
            if chrom in self._done:
                raise InputDataError(f"{where}: contig {chrom!r} appears again after {self._chrom!r} (sort the VCF)")
            if self._chrom is not None:
                self._done.add(self._chrom)
            self._chrom, self._pos = chrom, 0
        if int(pos) < self._pos:
            raise InputDataError(f"{where}: POS {pos} after {self._pos} on {chrom!r} (sort the VCF)")
        self._pos = int(pos)


def is_compressed_name(path: str | os.PathLike) -> bool:
    """Output named ``*.gz`` / ``*.bgz`` is written bgzip-compressed."""
    return not is_stdout(path) and Path(path).suffix in (".gz", ".bgz")


def check_index_target(path: str | os.PathLike) -> None:
    """Raise :class:`UsageError` unless a tabix index can be written for ``path``: bgzip output to a file."""
    if is_stdout(path) or not is_compressed_name(path):
        raise UsageError(
            f"--write-index needs bgzip output (-O ending in .gz or .bgz), not {os.fspath(path)!r}; "
            "for a stream, pipe it to bgzip and run tabix"
        )
    if writes_through(path):
        raise UsageError(f"--write-index needs a regular output file; {os.fspath(path)} is a link, device or FIFO")


class VcfWriter:
    """Write a VCF to ``path`` (see :mod:`meta_layer_cli.io.atomic`): ``-`` is standard output, links and
    devices are written through, regular files atomically (a temporary file beside ``path``, renamed on
    success; on an exception inside the ``with`` block the target is left untouched).

    Output is bgzip-compressed when ``path`` ends in ``.gz`` or ``.bgz`` (so
    ``tabix`` can index it), plain text otherwise (always for ``-``). ``index``:
    also write a tabix index, ``path.tbi`` (bgzip output to a file only; see
    :func:`check_index_target`), which appears after the VCF.
    """

    def __init__(self, path: str | os.PathLike, header: VcfHeader, index: bool = False):
        self.path = Path(path)
        self._target = path
        self.header = header
        self.index = index
        if index:
            check_index_target(path)
        self._stack: contextlib.ExitStack | None = None
        self._tmp: Path | None = None
        self._fh = None

    def __enter__(self) -> VcfWriter:
        self._stack = contextlib.ExitStack()
        if is_stdout(self._target):
            self._fh = sys.stdout.buffer
            self._stack.callback(self._fh.flush)
        else:
            self._tmp = self._stack.enter_context(output_path(self._target))
            if is_compressed_name(self._target):
                import pysam

                self._fh = pysam.BGZFile(str(self._tmp), "wb")
            else:
                self._fh = open(self._tmp, "wb")
            self._stack.callback(self._fh.close)
        try:
            for line in self.header.lines():
                self._write(line + self.header.ending)
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        return self

    def _write(self, text: str) -> None:
        self._fh.write(text.encode(_ENCODING, _ERRORS))

    def write(self, record: VcfRecord, info: dict[str, str | None] | None = None, remove: Sequence[str] = ()) -> None:
        """Write one body line, with INFO keys added/replaced/removed (see :meth:`VcfRecord.render`)."""
        self._write(record.render(info, remove))

    def __exit__(self, exc_type, exc, tb) -> None:
        stack = self._stack
        if exc_type is not None or not self.index:
            stack.__exit__(exc_type, exc, tb)
            return
        with contextlib.ExitStack() as index_stack:
            # the index file is renamed into place after the VCF (an index older than its data is stale)
            tmp_index = index_stack.enter_context(atomic_path(f"{os.fspath(self._target)}.tbi"))
            try:
                self._fh.close()
                import pysam

                try:
                    pysam.tabix_index(str(self._tmp), preset="vcf", index=str(tmp_index), force=True)
                except OSError as err:
                    raise InputDataError(f"cannot tabix-index {self.path.name} ({err}); is it sorted?") from None
            except BaseException:
                stack.__exit__(*sys.exc_info())
                raise
            stack.__exit__(None, None, None)


def write_vcf(
    path: str | os.PathLike,
    header: VcfHeader,
    records: Sequence[VcfRecord],
    info: Sequence[dict[str, str | None] | None] | None = None,
    index: bool = False,
) -> None:
    """Write ``records`` (with optional per-record INFO additions) atomically (see :class:`VcfWriter`)."""
    with VcfWriter(path, header, index) as out:
        for i, record in enumerate(records):
            out.write(record, info[i] if info is not None else None)
