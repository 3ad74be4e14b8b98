"""score_vcf in pipelines: malformed records pass through (or --strict stops first), no stale fields or header
lines, stdin/stdout, shards merged back, tabix index, provenance header lines."""

from __future__ import annotations

import gzip
import io
import logging
import sys

import pytest

from meta_layer_cli import __version__
from meta_layer_cli.inference.vcf import score_vcf
from meta_layer_cli.inference.vcf_shards import merge_vcf
from meta_layer_cli.io.vcf import read_vcf
from meta_layer_cli.runtime.errors import InputDataError, UsageError
from tests.inference.stub_models import StubModel
from tests.inference.vcf_fixtures import REF_DIR, info_of, without_command

GOOD = [ln for ln in (REF_DIR / "input.vcf").read_text().splitlines() if not ln.startswith("#")]
HEADER = [ln for ln in (REF_DIR / "input.vcf").read_text().splitlines() if ln.startswith("#")]
# every kind of line score_vcf cannot parse; each with a stale SpliceAI= of an earlier run where it has an INFO
BAD = [
    "1\t6448\tshort\tG\tA",  # 5 columns
    "1\t\u00b2\tsuperscript_pos\tG\tA\t.\t.\tSpliceAI=A|OLD|0.9|0|0|0|1|1|1|1",
    "1\t1e5\tfloat_pos\tG\tA\t.\t.\tDP=1;SpliceAI=A|OLD|0.9|0|0|0|1|1|1|1",
    "1\t12a\tletter_pos\tG\tA\t.\t.\t.",
    "1\t6448\tnon_ascii_alt\tG\t\u00c4\t.\t.\tMetaLayerSkip=no_alt",
    "1\t6448\tnon_ascii_ref\t\u00c9\tA\t.\t.\t.",
    "1\t6448\tempty_ref\t\tA\t.\t.\t.",
    "1\t6448\tempty_alt\tG\t\t.\t.\t.",
    "just some text",
]


def run(tmp_path, body, out_name="out.vcf", model=None, header=HEADER, **kwargs):
    src = tmp_path / "in.vcf"
    src.write_text("\n".join(header + body) + "\n")
    out = tmp_path / out_name
    model = model or StubModel(context=5)
    summary = score_vcf(
        src, out, tmp_path / "ref.fa", tmp_path / "annotation.txt", base_model=model, progress=False, **kwargs
    )
    return out, summary


def mixed_body() -> list[str]:
    """Good records with a bad line of each kind between them, one at the very end."""
    body = []
    for i, good in enumerate(GOOD):
        body.append(good)
        if i < len(BAD):
            body.append(BAD[i])
    return body + [BAD[0]]


def test_malformed_records_pass_through_flagged_in_order(genome, tmp_path, caplog):
    body = mixed_body()
    caplog.set_level(logging.WARNING)
    out, summary = run(genome, body)
    _, records = read_vcf(out)
    assert len(records) == len(body) == summary["records"], "every input record is an output record"
    bad_lines = [i + len(HEADER) + 1 for i, ln in enumerate(body) if ln in BAD]
    clean, _ = run(genome, GOOD, "clean.vcf")
    good_out = iter(read_vcf(clean)[1])
    for line, record in zip(body, records):
        if line in BAD:
            info = info_of(record.columns)
            assert info.get("MetaLayerSkip") == "malformed", line
            assert "SpliceAI" not in info, "a stale SpliceAI= on a record this run skips is removed"
            given = line.split("\t")
            assert record.columns[:7] == (given + ["."] * 7)[:7] and record.columns[8:] == given[8:]
            continue
        assert record.render() == next(good_out).render(), "good records score as in a clean file"
    short = [r for r in records if r.columns[2] == "short"]
    assert short[0].render().rstrip("\n").split("\t") == [
        "1",
        "6448",
        "short",
        "G",
        "A",
        ".",
        ".",
        "MetaLayerSkip=malformed",
    ]
    assert out.read_text().splitlines()[-1] == "1\t6448\tshort\tG\tA\t.\t.\tMetaLayerSkip=malformed"
    assert "just some text\t.\t.\t.\t.\t.\t.\tMetaLayerSkip=malformed" in out.read_text()
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert len(bad_lines) == len(BAD) + 1
    for line_number in bad_lines:
        assert f"line {line_number}:" in warned
    assert summary["skipped"]["malformed"] == len(BAD) + 1


def test_strict_stops_at_the_first_malformed_record_before_scoring(genome, tmp_path):
    model = StubModel(context=5)
    body = GOOD[:3] + [BAD[2]] + GOOD[3:] + [BAD[0]]
    with pytest.raises(InputDataError, match=rf"in.vcf line {len(HEADER) + 4}: malformed record \(POS '1e5'"):
        run(genome, body, model=model, strict=True)
    assert model.calls == 0, "nothing is scored"
    assert not (genome / "out.vcf").exists()
    out, summary = run(genome, GOOD, strict=True)
    assert summary["records"] == len(GOOD)


def test_strict_on_standard_input_checks_a_spooled_copy_first(genome, tmp_path, monkeypatch):
    model = StubModel(context=5)
    data = gzip.compress(("\n".join(HEADER + GOOD + [BAD[4]]) + "\n").encode())
    stdout = io.BytesIO()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(stdout))
    with pytest.raises(InputDataError, match=rf"<stdin> line {len(HEADER) + len(GOOD) + 1}: malformed"):
        score_vcf("-", "-", genome / "ref.fa", genome / "annotation.txt", base_model=model, progress=False, strict=True)
    assert model.calls == 0 and stdout.getvalue() == b""


STALE_HEADER = HEADER[:-1] + [
    '##INFO=<ID=SpliceAI,Number=.,Type=String,Description="SpliceAIv1.3.1 variant annotation (an old run)">',
    '##INFO=<ID=MetaLayer,Number=.,Type=String,Description="old">',
    '##INFO=<ID=MetaLayerSkip,Number=1,Type=String,Description="old">',
    "##metalayer_score_vcf=<base_model=spliceai,old>",
    "##metalayer_version=0.0.1",
    "##metalayer_command=metalayer score-vcf -I old.vcf",
    "##metalayer_shard=<shard=1/2,lines=3,of=6>",
    HEADER[-1],
]


def test_header_lines_of_an_earlier_run_are_replaced(genome, tmp_path):
    stale = [
        GOOD[0] + ";SpliceAI=A|OLD|0.9|0|0|0|1|1|1|1;MetaLayer=A|OLD|.|.|.|.|.|.|.|.|.|.|.",
        GOOD[12].replace("DP=", "SpliceAI=C|OLD|0.9|0|0|0|1|1|1|1;DP="),
    ]
    assert "outside_genes" in stale[1]
    out, _ = run(genome, stale, model=StubModel(context=5, name="openspliceai"), header=STALE_HEADER)
    header, records = read_vcf(out)
    meta = header.meta

    def lines(prefix):
        return [m for m in meta if m.startswith(prefix)]

    (spliceai,) = lines("##INFO=<ID=SpliceAI,")
    assert "from openspliceai" in spliceai and "old run" not in spliceai
    assert lines("##INFO=<ID=MetaLayer,") == [], "no MetaLayer= written, so no MetaLayer header line"
    assert lines("##INFO=<ID=MetaLayerSkip,")[0] != '##INFO=<ID=MetaLayerSkip,Number=1,Type=String,Description="old">'
    assert len(lines("##INFO=<ID=MetaLayerSkip,")) == 1
    assert len(lines("##metalayer_score_vcf=")) == 1 and "old" not in lines("##metalayer_score_vcf=")[0]
    assert lines("##metalayer_version=") == [f"##metalayer_version={__version__}"]
    (command,) = lines("##metalayer_command=")
    assert command.startswith("##metalayer_command=score_vcf(input=") and "old.vcf" not in command
    assert lines("##metalayer_shard=") == []
    scored, skipped = (info_of(r.columns) for r in records)
    assert "OLD" not in scored["SpliceAI"] and "MetaLayer" not in scored
    assert skipped.get("MetaLayerSkip") == "outside_genes"
    assert "SpliceAI" not in skipped, "a skipped record loses its old SpliceAI="


def test_standard_input_and_output(genome, tmp_path, monkeypatch):
    """-I - (bgzip, detected by magic bytes) and -O - give the file run's output, byte for byte (bar the command)."""
    body = mixed_body()
    reference, _ = run(genome, body)
    import pysam

    bgz = tmp_path / "in.vcf.gz"
    with pysam.BGZFile(str(bgz), "wb") as fh:
        fh.write((genome / "in.vcf").read_bytes())
    stdout = io.BytesIO()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(open(bgz, "rb")))
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(stdout))
    monkeypatch.chdir(tmp_path)
    summary = score_vcf(
        "-", "-", genome / "ref.fa", genome / "annotation.txt", base_model=StubModel(context=5), progress=False
    )
    assert summary["records"] == len(body)
    (tmp_path / "stdout.vcf").write_bytes(stdout.getvalue())
    assert without_command(tmp_path / "stdout.vcf") == without_command(reference)
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("n", [1, 3, 7, 60])
def test_shards_merged_equal_one_run(genome, tmp_path, n):
    body = mixed_body()
    whole, _ = run(genome, body, "whole.vcf.gz")
    shards = []
    for k in range(1, n + 1):
        out, summary = run(genome, body, f"shard{k}.vcf.gz", shard=f"{k}/{n}")
        shards.append(out)
    merged = tmp_path / "merged.vcf.gz"
    summary = merge_vcf(list(reversed(shards)), merged, command="merge")  # any order
    assert summary == {"shards": n, "lines": len(body)}
    got = gzip.decompress(merged.read_bytes()).decode().splitlines()
    want = gzip.decompress(whole.read_bytes()).decode().splitlines()
    differ = [(a, b) for a, b in zip(got, want) if a != b]
    assert len(got) == len(want) and len(differ) == 1
    assert differ[0] == ("##metalayer_command=merge", next(w for w in want if w.startswith("##metalayer_command=")))


def test_merge_refuses_a_missing_duplicated_or_foreign_shard(genome, tmp_path):
    body = mixed_body()
    shards = [run(genome, body, f"s{k}.vcf", shard=f"{k}/3")[0] for k in (1, 2, 3)]
    out = tmp_path / "merged.vcf"
    with pytest.raises(InputDataError, match="shard 2 of 3 missing"):
        merge_vcf([shards[0], shards[2]], out)
    with pytest.raises(InputDataError, match="shard 1/3 given twice"):
        merge_vcf([shards[0], shards[1], shards[2], shards[0]], out)
    other = run(genome, body, "d.vcf", shard="2/3", distance=10)[0]
    with pytest.raises(InputDataError, match="header differs"):
        merge_vcf([shards[0], other, shards[2]], out)
    other = run(genome, body, "n2.vcf", shard="2/2")[0]
    with pytest.raises(InputDataError, match="not the same split"):
        merge_vcf([shards[0], other, shards[2]], out)
    whole = run(genome, body, "whole.vcf")[0]
    with pytest.raises(InputDataError, match="no ##metalayer_shard= line"):
        merge_vcf([whole], out)
    lines = shards[1].read_text().splitlines()
    shards[1].write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(InputDataError, match="truncated"):
        merge_vcf(shards, out)
    assert not out.exists()
    with pytest.raises(UsageError, match="K must be in 1..N"):
        run(genome, body, shard="0/3")
    with pytest.raises(UsageError, match="K/N"):
        run(genome, body, shard="3")


def test_write_index(genome, tmp_path):
    import pysam

    sorted_body = sorted(GOOD[:-3], key=lambda ln: (ln.split("\t")[0], int(ln.split("\t")[1])))
    out, _ = run(genome, sorted_body, "out.vcf.gz", write_index=True)
    assert (genome / "out.vcf.gz.tbi").is_file()
    with pysam.TabixFile(str(out)) as tbx:
        assert [ln.split("\t")[2] for ln in tbx.fetch("2", 6600, 6750)] == ["minus_donor", "minus_acceptor"]
    with pytest.raises(UsageError, match="bgzip"):
        run(genome, sorted_body, "out.vcf", write_index=True)
    model = StubModel(context=5)
    with pytest.raises(InputDataError, match=r"line \d+: cannot be tabix-indexed.*sort the VCF"):
        run(genome, GOOD, "unsorted.vcf.gz", model=model, write_index=True)
    assert model.calls == 0 and not (genome / "unsorted.vcf.gz").exists()


def test_progress_line_at_every_chunk(genome, tmp_path, monkeypatch, caplog):
    """With a 0 s interval, Progress logs a line (records done of the total, records/s) after every chunk."""
    from meta_layer_cli.runtime import progress

    monkeypatch.setattr(progress.settings, "interval", 0.0)
    caplog.set_level(logging.INFO, logger="meta_layer_cli.progress")
    src = genome / "in.vcf"
    src.write_text("\n".join(HEADER + GOOD) + "\n")
    score_vcf(
        src,
        genome / "out.vcf",
        genome / "ref.fa",
        genome / "annotation.txt",
        base_model=StubModel(context=5),
        chunk_size=10,
    )
    lines = [r.getMessage() for r in caplog.records if r.name == "meta_layer_cli.progress"]
    counts = [line.split(": ", 1)[1].split(" records")[0] for line in lines]
    assert counts == ["started, 0/29", "10/29", "20/29", "29/29", "done, 29/29"], lines
    assert all("records/s" in line for line in lines[1:])
