"""Without the ``demo`` extra (spliceai, frame-alignment-checks), asking for SpliceAI's built-in weights, the
demo genes or a built-in annotation is one line naming the extra, exit 3; other base models still work."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.conftest import shared_path

ROOT = Path(__file__).resolve().parents[2]

# Runs each command line (a JSON list of argument lists) in one fresh process in which the two distributions
# look uninstalled; prints [exit code, stderr] per command as JSON.
WITHOUT_DEMO_EXTRA = """
import contextlib, importlib.metadata as metadata, io, json, sys
installed = metadata.distribution
def distribution(name):
    if name in ("spliceai", "frame-alignment-checks"):
        raise metadata.PackageNotFoundError(name)
    return installed(name)
metadata.distribution = distribution
from meta_layer_cli.commands.main import main
results = []
for args in json.loads(sys.argv[1]):
    err = io.StringIO()
    sys.argv = ["metalayer", *args]
    with contextlib.redirect_stderr(err):
        try:
            main()
            code = 0
        except SystemExit as stop:
            code = stop.code or 0
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""

NEEDS_THE_EXTRA = {
    "demo": ["demo", "--out", "d", "--genes", "4", "--epochs", "1", "--device", "cpu"],
    "demo genes": ["prepare", "--dataset", "demo", "--base-model", "openspliceai", "--out", "p"],
    "SpliceAI weights": ["predict", "--variants", "rows.csv", "--out", "a.tsv", "--device", "cpu"],  # the default
    "built-in annotation": [
        "score-vcf",
        "-I",
        "in.vcf",
        "-O",
        "out.vcf",
        "-R",
        "ref.fa",
        "-A",
        "grch38",
        "--base-model",
        "openspliceai",
        "--weights",
        "WEIGHTS",
    ],
}


def test_without_the_demo_extra(tmp_path):
    rng = np.random.default_rng(0)
    ref = "".join(rng.choice(list("ACGT"), 200))
    alt = ref[:90] + ("A" if ref[90] != "A" else "C") + ref[91:]
    (tmp_path / "rows.csv").write_text(f"id,ref_seq,alt_seq,exon_start,exon_end\nv1,{ref},{alt},80,120\n")
    (tmp_path / "in.vcf").write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    (tmp_path / "ref.fa").write_text(">1\nACGTACGTACGT\n")
    weights = str(shared_path("models", "openspliceai-mane", "80nt"))
    other = [
        "predict",
        "--variants",
        "rows.csv",
        "--out",
        "b.tsv",
        "--base-model",
        "openspliceai",
        "--weights",
        weights,
        "--device",
        "cpu",
    ]
    commands = [[weights if a == "WEIGHTS" else a for a in args] for args in NEEDS_THE_EXTRA.values()] + [other]
    run = subprocess.run(
        [sys.executable, "-c", WITHOUT_DEMO_EXTRA, json.dumps(commands)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout.strip().splitlines()[-1])
    for what, (code, stderr) in zip(NEEDS_THE_EXTRA, results):
        lines = stderr.strip().splitlines()
        assert code == 3 and len(lines) == 1 and lines[0].startswith("error: "), (what, stderr)
        assert "pip install 'metalayer[demo]'" in lines[0] and "not installed" in lines[0], (what, stderr)
    code, stderr = results[-1]  # another base model on the user's own table needs neither package
    assert code == 0, stderr
    assert (tmp_path / "b.tsv").read_text().startswith("id\t")
