"""score-vcf and predict --variants: flags as documented, one-line errors with their exit codes."""

from __future__ import annotations

import gzip
import re
import shlex
import shutil

import polars as pl
from typer.testing import CliRunner

from meta_layer_cli.commands.main import app
from tests.conftest import shared_path
from tests.inference.vcf_fixtures import BY_ID, REF_DIR, SKIP_REASON, score_vcf_args

runner = CliRunner()


def make_app():
    return app


def test_score_vcf_command(tmp_path, osai80):
    weights = shared_path("models", "openspliceai-mane", "80nt")
    shutil.copy(REF_DIR / "ref.fa", tmp_path / "ref.fa")
    out = tmp_path / "out.vcf.gz"
    distance = 30
    model = ["--base-model", "openspliceai", "--weights", str(weights)]
    options = [*model, "-D", str(distance), "-M", "1", "--device", "cpu", "--no-progress"]
    args = score_vcf_args(REF_DIR / "input.vcf", out, tmp_path / "ref.fa", REF_DIR / "annotation.txt", *options)
    result = runner.invoke(make_app(), args)
    assert result.exit_code == 0, result.output
    assert "29 records" in result.output and "warning: line" in result.output
    with gzip.open(out, "rt") as fh:
        body = [ln for ln in fh if not ln.startswith("#")]
    assert len(body) == 29
    # Which records get a SpliceAI= entry, from the fixture: those the official tool scores, plus those it
    # skips only because its window (5,000 nt of context + D each side) runs past the contig's end while
    # OpenSpliceAI-80nt's (40 + D) fits (the window depends on the model; no deviation from the definition)
    scored = {ln.split("\t")[2] for ln in body if "SpliceAI=" in ln}
    official = {vid for vid, r in BY_ID.items() if r["spliceai_m1"] is not None}
    assert len(official) == 20
    lengths = dict(re.findall(r"##contig=<ID=(\w+),length=(\d+)>", (REF_DIR / "input.vcf").read_text()))
    fits_here = set()
    for vid in set(BY_ID) - official:
        chrom, pos = BY_ID[vid]["line"].split("\t")[:2]
        length, pos, half = int(lengths.get(chrom, 0)), int(pos), osai80.context + distance
        if SKIP_REASON[vid] == "near_contig_end" and pos - 1 - half >= 0 and pos + half <= length:
            fits_here.add(vid)
    assert fits_here == {"near_contig_end"}  # chr3 is 4 kb long
    assert scored == official | fits_here and len(scored) == 21


def test_score_vcf_errors_are_one_line(tmp_path):
    inputs = [REF_DIR / "input.vcf", tmp_path / "o.vcf", tmp_path / "missing.fa", REF_DIR / "annotation.txt"]
    args = score_vcf_args(*inputs, "--no-progress")
    result = runner.invoke(make_app(), args)
    assert result.exit_code == 3  # bad input data
    assert result.output.strip().startswith("error:") and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "o.vcf").exists()
    result = runner.invoke(make_app(), args[:-1] + ["-D", "6000", "--no-progress"])
    assert result.exit_code == 2  # usage


def test_predict_variants_command(tmp_path):
    weights = shared_path("models", "openspliceai-mane", "80nt")
    ref = "CTTCTTATTCCTACAGCTTCTAAGACCACGAGAGAAAAAGTTGGGACTAGGTAAGTCGTG"
    table = pl.DataFrame(
        {
            "id": ["a", "b"],
            "ref_seq": [ref, ref],
            "alt_seq": [ref[:14] + "T" + ref[15:], ref[:51] + "C" + ref[52:]],
            "exon_start": [16, 16],
            "exon_end": [50, 50],
        }
    )
    table.write_csv(tmp_path / "in.csv")
    out = tmp_path / "out.parquet"
    model = ["-b", "openspliceai", "--weights", str(weights)]
    args = ["predict", "--variants", str(tmp_path / "in.csv"), "--out", str(out), *model]
    result = runner.invoke(make_app(), args)
    assert result.exit_code == 0, result.output
    scored = pl.read_parquet(out)
    assert scored.height == 2 and "delta_acceptor" in scored.columns and "max_abs_delta" in scored.columns
    bad = runner.invoke(make_app(), ["predict", "--variants", str(tmp_path / "nope.csv"), "--out", str(out)])
    assert bad.exit_code == 3 and bad.output.strip().startswith("error:")


def test_score_vcf_checkpoint_flag(tmp_path, osai80, spliceai):
    from tests.inference.test_vcf_models import meta_checkpoint

    weights = shared_path("models", "openspliceai-mane", "80nt")
    shutil.copy(REF_DIR / "ref.fa", tmp_path / "ref.fa")
    out = tmp_path / "out.vcf"
    model = ["--base-model", "openspliceai", "--weights", str(weights)]
    genome = [tmp_path / "ref.fa", REF_DIR / "annotation.txt"]
    args = score_vcf_args(REF_DIR / "input.vcf", out, *genome, *model, "--no-progress", "--checkpoint")
    result = runner.invoke(make_app(), args + [str(meta_checkpoint(tmp_path / "m", osai80))])
    assert result.exit_code == 0, result.output
    body = [ln for ln in out.read_text().splitlines() if not ln.startswith("#")]
    assert len(body) == 29 and sum("MetaLayer=" in ln for ln in body) == sum("SpliceAI=" in ln for ln in body) > 0
    result = runner.invoke(make_app(), args + [str(meta_checkpoint(tmp_path / "s", spliceai))])
    assert result.exit_code == 3 and len(result.output.strip().splitlines()) == 1
    assert "spliceai" in result.output and "openspliceai" in result.output


def osai_args(tmp_path) -> list[str]:
    weights = shared_path("models", "openspliceai-mane", "80nt")
    shutil.copy(REF_DIR / "ref.fa", tmp_path / "ref.fa")
    return [
        "-R",
        str(tmp_path / "ref.fa"),
        "-A",
        str(REF_DIR / "annotation.txt"),
        "-b",
        "openspliceai",
        "--weights",
        str(weights),
        "--device",
        "cpu",
    ]


def test_score_vcf_stdin_to_stdout_with_progress_lines(tmp_path, monkeypatch):
    """-I - (gzip) -O -: the VCF on stdout, nothing else; timestamped progress lines on stderr before the summary."""
    from meta_layer_cli.runtime import progress

    monkeypatch.setattr(progress.settings, "interval", progress.settings.interval)  # restored afterwards
    monkeypatch.chdir(tmp_path)
    data = (REF_DIR / "input.vcf").read_text().replace("\n1\t6195\t", "\n1\t12a\tbad\tG\tA\t.\t.\t.\n1\t6195\t", 1)
    args = ["--progress-interval", "0", "score-vcf", "-I", "-", "-O", "-", *osai_args(tmp_path)]
    result = runner.invoke(make_app(), args, input=gzip.compress(data.encode()))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "##fileformat=VCFv4.2" and lines.count(lines[0]) == 1
    body = [ln for ln in lines if not ln.startswith("#")]
    assert len(body) == 30 and "MetaLayerSkip=malformed" in body[1]
    assert any(ln.startswith("##metalayer_command=metalayer score-vcf --input - --output -") for ln in lines)
    err = result.stderr.splitlines()
    progress_lines = [i for i, ln in enumerate(err) if re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d score-vcf", ln)]
    summary = [i for i, ln in enumerate(err) if "30 records -> stdout" in ln]
    assert summary and len(progress_lines) >= 2 and max(progress_lines) < summary[0], result.stderr
    assert any("records/s" in err[i] for i in progress_lines)
    assert not (tmp_path / "-").exists()


def test_score_vcf_strict_and_write_index_errors(tmp_path):
    bad = (REF_DIR / "input.vcf").read_text() + "1\t100\tshort\tA\n"
    out = tmp_path / "o.vcf"
    result = runner.invoke(
        make_app(), ["score-vcf", "-I", "-", "-O", str(out), "--strict", *osai_args(tmp_path)], input=bad
    )
    assert result.exit_code == 3 and not out.exists() and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: <stdin> line {len(bad.splitlines())}: malformed record (4 tab-separated columns")
    result = runner.invoke(
        make_app(),
        ["score-vcf", "-I", str(REF_DIR / "input.vcf"), "-O", str(out), "--write-index", *osai_args(tmp_path)],
    )
    assert result.exit_code == 2 and "bgzip" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = runner.invoke(
        make_app(),
        ["score-vcf", "-I", str(REF_DIR / "input.vcf"), "-O", str(out), "--shard", "4/3", *osai_args(tmp_path)],
    )
    assert result.exit_code == 2 and result.stderr.startswith("error: --shard 4/3")


def test_score_vcf_shards_and_merge_vcf(tmp_path):
    common = ["-I", str(REF_DIR / "input.vcf"), *osai_args(tmp_path), "--no-progress"]
    whole = tmp_path / "whole.vcf.gz"
    assert runner.invoke(make_app(), ["score-vcf", "-O", str(whole), *common]).exit_code == 0
    shards = [tmp_path / f"part{k}.vcf.gz" for k in (1, 2, 3)]
    for k, shard in enumerate(shards, 1):
        result = runner.invoke(make_app(), ["score-vcf", "-O", str(shard), "--shard", f"{k}/3", *common])
        assert result.exit_code == 0, result.output
    merged = tmp_path / "merged.vcf.gz"
    result = runner.invoke(make_app(), ["merge-vcf", "-O", str(merged), *map(str, shards[::-1])])
    assert result.exit_code == 0, result.output
    assert "3 shards, 29 lines" in result.stderr
    got, want = (gzip.decompress(p.read_bytes()).decode().splitlines() for p in (merged, whole))
    assert [(a, b) for a, b in zip(got, want) if a != b] == [
        (
            f"##metalayer_command=metalayer merge-vcf {' '.join(map(str, shards[::-1]))} --output {merged}",
            next(w for w in want if w.startswith("##metalayer_command=")),
        )
    ] and len(got) == len(want)
    result = runner.invoke(make_app(), ["merge-vcf", "-O", str(tmp_path / "m2.vcf"), str(shards[0]), str(shards[2])])
    assert result.exit_code == 3 and result.stderr.strip() == "error: shard 2 of 3 missing"


def test_score_vcf_in_a_shell_pipeline(tmp_path):
    """metalayer score-vcf -I - -O - < in.vcf | bgzip, and -O /dev/stdout, as a separate process (real argv)."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    bgzip = shutil.which("bgzip")
    if bgzip is None:  # htslib's bgzip is not installed here: the same BGZF writer, through pysam
        bgzip = (
            f'{shlex.quote(sys.executable)} -c \'import sys, pysam; f = pysam.BGZFile("/dev/stdout", "wb"); '
            "f.write(sys.stdin.buffer.read()); f.close()'"
        )
    metalayer = f"{shlex.quote(sys.executable)} -c 'from meta_layer_cli.commands.main import main; main()'"
    args = shlex.join(osai_args(tmp_path) + ["--no-progress"])
    src = tmp_path / "in.vcf.gz"
    src.write_bytes(gzip.compress((REF_DIR / "input.vcf").read_bytes()))
    script = (
        f"set -o pipefail; {metalayer} score-vcf -I - -O - {args} < {src} | {bgzip} > out.vcf.gz && "
        f"{metalayer} -q score-vcf -I {src} -O /dev/stdout {args} | cat > dev_stdout.vcf"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    with gzip.open(tmp_path / "out.vcf.gz", "rt") as fh:
        lines = fh.read().splitlines()
    assert sum(not ln.startswith("#") for ln in lines) == 29 and sum("SpliceAI=" in ln for ln in lines) > 20
    assert f"##metalayer_command=metalayer score-vcf -I - -O - {args}" in lines
    assert "29 records -> stdout" in done.stderr
    plain = (tmp_path / "dev_stdout.vcf").read_text().splitlines()
    assert [ln for ln in plain if not ln.startswith("##metalayer_command")] == [
        ln for ln in lines if not ln.startswith("##metalayer_command")
    ]
    assert os.path.islink("/dev/stdout") and not (tmp_path / "-").exists()


def test_a_closed_stdout_is_one_error_line(tmp_path, monkeypatch):
    """`metalayer score-vcf -O - | head`: the broken pipe is one error line, exit 1, no traceback."""
    import meta_layer_cli.inference.vcf as vcf

    def closed(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(vcf, "score_vcf", closed)
    result = runner.invoke(make_app(), ["score-vcf", "-I", "-", "-O", "-", "-R", "r.fa", "-A", "a.txt"], input="")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: output closed early (broken pipe): the reader of stdout stopped"
