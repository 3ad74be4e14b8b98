"""The VCF reader/writer loses nothing: header, records, order, fields, line endings."""

from __future__ import annotations

import gzip

import pytest

from meta_layer_cli.io.vcf import VcfReader, VcfWriter, read_vcf, write_vcf

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


def test_short_line_is_an_error_naming_the_line(tmp_path):
    src = tmp_path / "in.vcf"
    write_text(src, HEADER + [COLUMNS, BODY[0], "1\t5\t.\tA\tG"])
    with pytest.raises(ValueError, match=r"line 6: 5 tab-separated columns"):
        read_vcf(src)


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
