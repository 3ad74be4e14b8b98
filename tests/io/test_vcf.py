"""The VCF reader/writer loses nothing: header, records, order, fields, line endings."""

from __future__ import annotations

import gzip
import io
import os
import stat
import sys
import threading
from pathlib import Path

import pytest

from meta_layer_cli.io.atomic import writes_through
from meta_layer_cli.io.vcf import IndexCheck, VcfHeader, VcfReader, VcfWriter, read_vcf, rereadable, write_vcf
from meta_layer_cli.runtime.errors import InputDataError, UsageError

HEADER = [
    "##fileformat=VCFv4.2",
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">',
    "##contig=<ID=1>",
]
COLUMNS = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1"
BODY = [
    "1\t100\trs1\tA\tG\t50\tPASS\tDP=3\tGT\t0/1",
    "1\t200\t.\tAC\tA,ACT\t.\t.\t.\tGT\t1/2",
    "1\t300\t.\tG\t<DEL>\t.\t.\tDP=1;FLAG\tGT\t0/1",
    "1\tabc\t.\tG\tT\t.\t.\t.\tGT\t0/1",
    "# a comment in the body",
    "1\t400\t.\tN\tA\t.\t.\tSpliceAI=old\tGT\t./.",
]
NEW_INFO = ['##INFO=<ID=New,Number=1,Type=String,Description="x">']


def write_text(path, lines, ending="\n", compress=False):
    data = ending.join(lines) + ending
    if compress:
        with gzip.open(path, "wt", newline="") as fh:
            fh.write(data)
    else:
        path.write_bytes(data.encode())


def test_round_trip_is_byte_identical(tmp_path):
    src = tmp_path / "in.vcf"
    write_text(src, HEADER + [COLUMNS] + BODY)
    header, records = read_vcf(src)
    write_vcf(tmp_path / "out.vcf", header, records)
    assert (tmp_path / "out.vcf").read_bytes() == src.read_bytes()


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_info_added_replaced_and_headers_inserted(tmp_path, ending):
    src = tmp_path / "in.vcf.gz"
    write_text(src, HEADER + [COLUMNS] + BODY, ending=ending, compress=True)  # gzip in, detected by magic
    out = tmp_path / "out.vcf.gz"
    with VcfReader(src) as reader:
        header = reader.header.with_info(NEW_INFO + ['##INFO=<ID=DP,Number=1,Type=Integer,Description="dup">'])
        with VcfWriter(out, header) as writer:
            for record in reader:
                writer.write(record, {"New": "v", "SpliceAI": "x|y"} if record.is_record else None)
    with gzip.open(out, "rb") as fh:  # bgzip output reads as gzip
        lines = fh.read().decode().split(ending)[:-1]
    assert lines[: len(HEADER)] == HEADER
    assert lines[len(HEADER)] == NEW_INFO[0]  # new INFO line before #CHROM; an existing ID is not duplicated
    assert lines[len(HEADER) + 1] == COLUMNS
    body = lines[len(HEADER) + 2 :]
    assert len(body) == len(BODY)
    assert body[0] == "1\t100\trs1\tA\tG\t50\tPASS\tDP=3;New=v;SpliceAI=x|y\tGT\t0/1"
    assert body[1].split("\t")[7] == "New=v;SpliceAI=x|y"  # '.' INFO replaced
    assert body[2].split("\t")[7] == "DP=1;FLAG;New=v;SpliceAI=x|y"
    assert body[4] == BODY[4]  # comment passed through
    assert body[5].split("\t")[7] == "SpliceAI=x|y;New=v"  # existing key replaced in place
    for got, original in zip(body, BODY):
        if not original.startswith("#"):
            assert got.split("\t")[:7] + got.split("\t")[8:] == original.split("\t")[:7] + original.split("\t")[8:]


def test_record_fields_and_malformed_detection(tmp_path):
    src = tmp_path / "in.vcf"
    write_text(src, HEADER + [COLUMNS] + BODY)
    _, records = read_vcf(src)
    assert [r.line_number for r in records] == list(range(5, 5 + len(BODY)))
    r0, r1, r2, r3, comment, r5 = records
    assert (r0.chrom, r0.pos, r0.ref, r0.alts, r0.error) == ("1", 100, "A", ["G"], None)
    assert r1.alts == ["A", "ACT"]
    assert r2.alts == ["<DEL>"] and r2.error is None
    assert "POS" in r3.error
    assert not comment.is_record
    assert r5.ref == "N" and r5.error is None


MALFORMED = {  # line -> what the error names
    "1\t5\t.\tA\tG": "5 tab-separated columns",
    "1 6 . A G": "1 tab-separated columns",
    "1\t\u00b2\t.\tA\tG\t.\t.\t.": "POS",  # str.isdigit() is True for a superscript two
    "1\t1e5\t.\tA\tG\t.\t.\t.": "POS",
    "1\t12a\t.\tA\tG\t.\t.\t.": "POS",
    "1\t0\t.\tA\tG\t.\t.\t.": "POS",
    "1\t7\t.\tA\t\u00c4\t.\t.\t.": "non-ASCII",
    "1\t7\t.\tA\tG,T\u00e9\t.\t.\t.": "non-ASCII",
    "1\t7\t.\t\u00c5\tG\t.\t.\t.": "REF",
    "1\t7\t.\t\tG\t.\t.\t.": "REF",
    "1\t7\t.\tA\t\t.\t.\t.": "empty allele",
    "1\t7\t.\tA\tG,\t.\t.\t.": "empty allele",
    "\t7\t.\tA\tG\t.\t.\t.": "CHROM",
}


def test_every_kind_of_malformed_record_is_a_record_passed_through(tmp_path):
    """Short lines, bad POS, non-ASCII or empty alleles: records with an error naming the problem, in order,
    between good records; a short line keeps its columns and gets '.' up to INFO so a flag can be added."""
    src = tmp_path / "in.vcf"
    lines = [BODY[0]]
    for bad in MALFORMED:
        lines += [bad, BODY[0]]
    src.write_bytes(("\n".join(HEADER + [COLUMNS] + lines) + "\n").encode() + b"1\t8\t.\tA\tG\xff\t.\t.\t.\n")
    _, records = read_vcf(src)
    assert len(records) == len(lines) + 1 and all(r.is_record for r in records)
    assert [r.error is None for r in records[:-1]] == [ln == BODY[0] for ln in lines]
    for record, (bad, what) in zip(records[1::2], MALFORMED.items()):
        assert record.raw == bad and what in record.error, (bad, record.error)
        assert len(record.columns) >= 8
    assert "non-ASCII" in records[-1].error  # undecodable bytes count as non-ASCII
    short = records[1]
    assert short.render({"MetaLayerSkip": "malformed"}) == "1\t5\t.\tA\tG\t.\t.\tMetaLayerSkip=malformed\n"
    spaces = records[3]
    assert spaces.render({"X": None}) == "1 6 . A G\t.\t.\t.\t.\t.\t.\tX\n"
    write_vcf(tmp_path / "out.vcf", *read_vcf(src))  # nothing to add: byte-identical, short lines included
    assert (tmp_path / "out.vcf").read_bytes() == src.read_bytes()


def test_missing_header_and_missing_file(tmp_path):
    src = tmp_path / "in.vcf"
    write_text(src, HEADER)
    with pytest.raises(ValueError, match="#CHROM"):
        read_vcf(src)
    with pytest.raises(FileNotFoundError):
        read_vcf(tmp_path / "nope.vcf")


def test_failed_write_leaves_no_output(tmp_path):
    src = tmp_path / "in.vcf"
    write_text(src, HEADER + [COLUMNS] + BODY)
    header, records = read_vcf(src)
    out = tmp_path / "out.vcf"
    with pytest.raises(RuntimeError):
        with VcfWriter(out, header) as writer:
            writer.write(records[0])
            raise RuntimeError("interrupted")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [src]


def test_render_removes_keys_unless_set(tmp_path):
    src = tmp_path / "in.vcf"
    write_text(src, HEADER + [COLUMNS, "1\t5\t.\tA\tG\t.\t.\tDP=1;Old=x;Flag\tGT\t0/1"])
    _, (record,) = read_vcf(src)
    assert record.render(None, remove=("Old",)).split("\t")[7] == "DP=1;Flag"
    assert record.render({"Old": "y"}, remove=("Old",)).split("\t")[7] == "DP=1;Old=y;Flag"
    assert record.render(None, remove=("DP", "Old", "Flag")).split("\t")[7] == "."


def test_replacing_info_lines_in_place_and_dropping_ids():
    header = VcfHeader(
        [
            "##fileformat=VCFv4.2",
            '##INFO=<ID=A,Number=1,Type=String,Description="old">',
            "##contig=<ID=1>",
            '##INFO=<ID=A,Number=1,Type=String,Description="dup">',
            '##INFO=<ID=B,Number=1,Type=String,Description="b">',
        ]
    )
    new_a = '##INFO=<ID=A,Number=1,Type=String,Description="new">'
    new_c = '##INFO=<ID=C,Number=1,Type=String,Description="c">'
    out = header.replacing_info([new_a, new_c], drop=["B"])
    assert out.meta == ["##fileformat=VCFv4.2", new_a, "##contig=<ID=1>", new_c]


class _Pipe(io.RawIOBase):
    """A non-seekable byte stream, delivered in small pieces (as a pipe delivers)."""

    def __init__(self, data: bytes, piece: int = 1):
        self.data, self.piece = data, piece

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.piece, len(self.data))
        buffer[:n], self.data = self.data[:n], self.data[n:]
        return n


@pytest.mark.parametrize("compress", [False, True])
def test_standard_input_plain_or_gzip_by_magic_bytes(tmp_path, monkeypatch, compress):
    src = tmp_path / "in.vcf"
    write_text(src, HEADER + [COLUMNS] + BODY, compress=compress)
    stdin = io.TextIOWrapper(io.BufferedReader(_Pipe(src.read_bytes(), piece=1)))
    monkeypatch.setattr(sys, "stdin", stdin)
    header, records = read_vcf("-")
    write_text(tmp_path / "plain.vcf", HEADER + [COLUMNS] + BODY)
    assert (header, records) == read_vcf(tmp_path / "plain.vcf")
    assert not stdin.closed


def test_rereadable_spools_a_stream_once(tmp_path, monkeypatch):
    src = tmp_path / "in.vcf"
    write_text(src, HEADER + [COLUMNS] + BODY, compress=True)
    assert rereadable_path(src) == [src]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(_Pipe(src.read_bytes(), piece=4096))))
    with rereadable("-") as path:
        assert os.fspath(path) != "-" and read_vcf(path) == read_vcf(path) == read_vcf(src)
    assert not Path(path).exists()


def rereadable_path(path):
    with rereadable(path) as p:
        return [p]


def test_fifo_input_and_output_are_read_and_written_through(tmp_path):
    """A FIFO (process substitution, a named pipe) is read once and written in place, never replaced."""
    src = tmp_path / "in.vcf"
    write_text(src, HEADER + [COLUMNS] + BODY)
    fifo_in, fifo_out = tmp_path / "in.fifo", tmp_path / "out.fifo"
    os.mkfifo(fifo_in)
    os.mkfifo(fifo_out)
    got = {}
    feeder = threading.Thread(target=lambda: fifo_in.write_bytes(src.read_bytes()), daemon=True)
    drain = threading.Thread(target=lambda: got.setdefault("out", fifo_out.read_bytes()), daemon=True)
    feeder.start()
    drain.start()
    write_vcf(fifo_out, *read_vcf(fifo_in))
    feeder.join(5)
    drain.join(5)
    assert got["out"] == src.read_bytes()
    assert stat.S_ISFIFO(os.lstat(fifo_out).st_mode), "the FIFO was replaced by a file"


def test_symlink_output_is_written_through(tmp_path):
    src = tmp_path / "in.vcf"
    write_text(src, HEADER + [COLUMNS] + BODY)
    target, link = tmp_path / "target.vcf", tmp_path / "link.vcf"
    target.write_text("old\n")
    link.symlink_to(target)
    write_vcf(link, *read_vcf(src))
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == src.read_bytes()


def test_what_is_written_through():
    assert writes_through("-") and writes_through("/dev/null") and writes_through("/dev/stdout")
    assert not writes_through(Path(__file__)) and not writes_through("/nonexistent/new.vcf")


def test_standard_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "in.vcf"
    write_text(src, HEADER + [COLUMNS] + BODY)
    out = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out))
    write_vcf("-", *read_vcf(src))
    assert out.getvalue() == src.read_bytes()
    assert not (tmp_path / "-").exists()


def test_tabix_index_for_bgzip_output(tmp_path):
    import pysam

    src = tmp_path / "in.vcf"
    sorted_body = [BODY[0], BODY[1], BODY[2], BODY[5]]
    write_text(src, HEADER + [COLUMNS] + sorted_body)
    out = tmp_path / "out.vcf.gz"
    write_vcf(out, *read_vcf(src), index=True)
    assert (tmp_path / "out.vcf.gz.tbi").is_file()
    with pysam.TabixFile(str(out)) as tbx:
        assert [ln.split("\t")[1] for ln in tbx.fetch("1", 150, 350)] == ["200", "300"]
    with pytest.raises(UsageError, match="bgzip"):
        write_vcf(tmp_path / "out.vcf", *read_vcf(src), index=True)
    assert not (tmp_path / "out.vcf").exists()


def test_index_check_names_the_first_line_tabix_cannot_index(tmp_path):
    src = tmp_path / "in.vcf"
    for body, message in (
        ([BODY[1], BODY[0]], "line 6: .*POS 100 after 200"),
        ([BODY[0], BODY[3]], "line 6: .*POS 'abc'"),
        ([BODY[0], "2\t5\t.\tA\tG\t.\t.\t.", BODY[1]], "line 7: .*contig '1' appears again"),
    ):
        write_text(src, HEADER + [COLUMNS] + body)
        check = IndexCheck("in.vcf")
        with pytest.raises(InputDataError, match=message):
            for record in read_vcf(src)[1]:
                check.add(record)
