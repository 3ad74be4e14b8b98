"""score-vcf and predict --variants: flags as documented, one-line errors with their exit codes."""

from __future__ import annotations

import gzip
import re
import shutil

import polars as pl
from typer.testing import CliRunner

from meta_layer_cli.commands.main import app
from tests.conftest import shared_path
from tests.inference.vcf_fixtures import BY_ID, REF_DIR, SKIP_REASON

runner = CliRunner()


def make_app():
    return app


def test_score_vcf_command(tmp_path, osai80):
    weights = shared_path("models", "openspliceai-mane", "80nt")
    shutil.copy(REF_DIR / "ref.fa", tmp_path / "ref.fa")
    out = tmp_path / "out.vcf.gz"
    distance = 30
    args = ["score-vcf", "-I", str(REF_DIR / "input.vcf"), "-O", str(out), "-R", str(tmp_path / "ref.fa"),
            "-A", str(REF_DIR / "annotation.txt"), "--base-model", "openspliceai", "--weights", str(weights),
            "-D", str(distance), "-M", "1", "--device", "cpu", "--no-progress"]  # fmt: skip
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
    args = ["score-vcf", "-I", str(REF_DIR / "input.vcf"), "-O", str(tmp_path / "o.vcf"), "-R",
            str(tmp_path / "missing.fa"), "-A", str(REF_DIR / "annotation.txt"), "--no-progress"]  # fmt: skip
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
        }  # fmt: skip
    )
    table.write_csv(tmp_path / "in.csv")
    out = tmp_path / "out.parquet"
    args = ["predict", "--variants", str(tmp_path / "in.csv"), "--out", str(out), "-b", "openspliceai",
            "--weights", str(weights)]  # fmt: skip
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
    args = ["score-vcf", "-I", str(REF_DIR / "input.vcf"), "-O", str(out), "-R", str(tmp_path / "ref.fa"),
            "-A", str(REF_DIR / "annotation.txt"), "--base-model", "openspliceai", "--weights", str(weights),
            "--no-progress", "--checkpoint"]  # fmt: skip
    result = runner.invoke(make_app(), args + [str(meta_checkpoint(tmp_path / "m", osai80))])
    assert result.exit_code == 0, result.output
    body = [ln for ln in out.read_text().splitlines() if not ln.startswith("#")]
    assert len(body) == 29 and sum("MetaLayer=" in ln for ln in body) == sum("SpliceAI=" in ln for ln in body) > 0
    result = runner.invoke(make_app(), args + [str(meta_checkpoint(tmp_path / "s", spliceai))])
    assert result.exit_code == 3 and len(result.output.strip().splitlines()) == 1
    assert "spliceai" in result.output and "openspliceai" in result.output
