"""A hostile user's probe round on every command: bad inputs, truncated and malformed files, lowercase and N,
unknown contigs and chr1 vs 1, reruns with changed inputs, two jobs on one folder, Ctrl-C and SIGTERM, a full
disk and a read-only one, outputs that are inputs. Each probe says what must happen (an exit code and one
``error:`` line, or exit 0 with an output that is checked) and is classified:

* ``held``: it did;
* ``traceback``: a Python traceback, or an untyped error reported as a bug (exit 1 "this is a bug");
* ``silent-wrong``: exit 0 where a refusal was due, or exit 0 with a wrong output;
* ``late abort``: a refusal after expensive work (training, scoring, predicting) or after writing outputs;
* ``data lost``: an input changed or disappeared;
* ``other``: another exit code, or more than one line.

    python scripts/probes.py [--work DIR] [--only COMMAND] [--keep]

Prints one row per probe as it runs, then the table per command (what ``scripts/RESULTS.md`` records). Exit
status 0 only when every probe held. Small real data: the genome the tests build from demo genes
(``tests/conftest.py``: 21 genes on chr1 and chr3), OpenSpliceAI 80 nt from ``../shared`` (or
``$METALAYER_SHARED``), the SpliceAI VCF reference fixture, tiny model settings: the round takes a few minutes
on 2 CPU cores. The full- and read-only-disk probes mount small tmpfs folders and are skipped where mounting is
not allowed (they need root).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import GENOME_CHR1, GENOME_CHR3, SHARED, TINY_MODEL, TINY_TRAINING  # noqa: E402

KINDS = ("traceback", "silent-wrong", "late abort", "data lost", "other")
# lines a command prints only once it does expensive work: a refusal after one of these is a late abort
WORK_MARKERS = ("epoch 1/", "predicted now", " records -> ", "training on ", "calibration fitted", "wrote ")
WEIGHTS = SHARED / "models" / "openspliceai-mane" / "80nt"
OSAI = ["-b", "openspliceai", "--weights", str(WEIGHTS)]
TINY = [f"--set=model.{k}={json.dumps(v)}" for k, v in TINY_MODEL.items()] + [
    f"--set=training.{k}={json.dumps(v)}" for k, v in {**TINY_TRAINING, "epochs": 1}.items()
]
CLI = [sys.executable, "-m", "meta_layer_cli"]


@dataclass
class Outcome:
    code: int
    output: str
    traceback: bool
    seconds: float


@dataclass
class Probe:
    command: str
    name: str
    args: list[str] | Callable[[], list[str]] = field(default_factory=list)
    expect: int | tuple[int, ...] = 0
    text: str = ""  # must appear in the error line of a refusal
    check: Callable[[Outcome], str | None] | None = None  # exit 0: a problem with the output, or None
    inputs: list[Path] = field(default_factory=list)  # must be byte-identical afterwards
    untouched: list[Path] = field(default_factory=list)  # must not exist after a refusal
    stdin: str | None = None
    run: Callable[[], Outcome] | None = None  # a probe that runs processes itself (signals, concurrency)
    late_ok: bool = False  # a full disk shows when writing: work before the refusal is no late abort
    setup: Callable[[], None] | None = None


def digest(paths: list[Path]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for path in paths:
        files = [path] if not path.is_dir() else sorted(p for p in path.rglob("*") if p.is_file())
        if not path.exists():
            out[str(path)] = None
        for f in files:
            if f.exists() and f.name != ".metalayer.lock":
                out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def cli_env() -> dict[str, str]:
    """The environment of every command a probe runs: a model cache of its own in the work folder."""
    return {**os.environ, "METALAYER_CACHE": str(WORK / "cache")}


def start(args: list[str]) -> subprocess.Popen:
    """The real entry point started in the background, stdout and stderr as one text stream."""
    return subprocess.Popen(
        [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=WORK, env=cli_env()
    )


def invoke(args: list[str], stdin: str | None = None) -> Outcome:
    """The real entry point in a subprocess (what a user runs): exit code, stdout + stderr."""
    started = time.perf_counter()
    proc = subprocess.run(
        [*CLI, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=WORK,
        env=cli_env(),
    )
    output = proc.stdout + proc.stderr
    return Outcome(
        proc.returncode, output, "Traceback (most recent call last)" in output, time.perf_counter() - started
    )


def classify(probe: Probe, outcome: Outcome, before: dict, after: dict) -> tuple[str, str]:
    expected = probe.expect if isinstance(probe.expect, tuple) else (probe.expect,)
    lines = [line for line in outcome.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    if outcome.traceback or any("this is a bug" in line for line in errors):
        return "traceback", (errors or lines or ["?"])[-1][:150]
    if before != after:
        changed = [k for k in before if before.get(k) != after.get(k)] or list(after)
        return "data lost", f"changed: {changed[:2]}"
    if outcome.code == 0:
        if 0 not in expected:
            return "silent-wrong", f"exit 0, expected {expected}"
        try:
            problem = probe.check(outcome) if probe.check else None
        except Exception as err:  # noqa: BLE001 - an output the check cannot even read is a wrong output
            problem = f"output unreadable: {type(err).__name__}: {err}"
        return ("silent-wrong", problem) if problem else ("held", "")
    if outcome.code not in expected:
        return "other", f"exit {outcome.code}, expected {expected}: {(errors or lines or ['?'])[-1][:120]}"
    worked = [m for m in WORK_MARKERS if any(m in line for line in lines if not line.startswith("error:"))]
    worked = [] if probe.late_ok else worked
    made = [str(p) for p in probe.untouched if p.exists()]
    if worked or made:
        return "late abort", f"after {worked or made}"
    if outcome.code in (130, 143):
        return "held", ""
    if outcome.code == 5 and not errors:  # "up to date" (--if-changed): an info line by design, not an error
        return "held", ""
    if outcome.code == 2 and lines and lines[0].startswith("Usage: ") and lines[-1].startswith("Error: "):
        errors = ["error: " + lines[-1].removeprefix("Error: ")]  # the parser's own usage error (click's format)
    if len(errors) != 1 or (probe.text and probe.text not in errors[0]):
        return "other", f"expected one error line with {probe.text!r}: {lines[-3:]}"
    return "held", ""


# ---------------------------------------------------------------------------------------------
# the data every probe starts from
# ---------------------------------------------------------------------------------------------
WORK = Path(tempfile.gettempdir())


def build_fixtures() -> dict:
    """Genome, prepared folder, tiny trained run, a calibrated copy, VCFs: built once per work folder."""
    from meta_layer_cli.io.demo import write_demo_genome

    fx: dict[str, Path] = {}
    fasta, gtf = write_demo_genome(WORK / "genome", GENOME_CHR1 + GENOME_CHR3, spacer=3000)
    fx["fasta"], fx["gtf"] = fasta, gtf
    fx["prepared"] = WORK / "prepared"
    if not (fx["prepared"] / "manifest.json").is_file():
        must(invoke(prepare_args(fx["prepared"], fasta=fasta, gtf=gtf)))
    fx["run"] = WORK / "run"
    if not (fx["run"] / "run.json").is_file() or "finished" not in (fx["run"] / "run.json").read_text():
        must(
            invoke(
                [
                    "train-canonical",
                    "--data",
                    str(fx["prepared"]),
                    *OSAI,
                    "--test-chroms",
                    "chr3",
                    "--out",
                    str(fx["run"]),
                    "--device",
                    "cpu",
                    "--overwrite",
                    *TINY,
                ]
            )
        )
    fx["checkpoint"] = fx["run"] / "checkpoints" / "best"
    fx["calibrated"] = WORK / "calibrated"
    if not (fx["calibrated"] / "config.json").is_file():
        must(
            invoke(
                checkpoint_args(
                    "calibrate", fx["checkpoint"], fx["prepared"], "--out", str(fx["calibrated"]), "--overwrite"
                )
            )
        )
    ref = REPO / "tests" / "fixtures" / "spliceai_vcf_reference"
    fx["vref"] = WORK / "vref"
    fx["vref"].mkdir(exist_ok=True)
    for name in ("ref.fa", "annotation.txt", "input.vcf"):
        shutil.copy(ref / name, fx["vref"] / name)
    fx["vcf"] = fx["vref"] / "input.vcf"
    fx["ref"], fx["ann"] = fx["vref"] / "ref.fa", fx["vref"] / "annotation.txt"
    lines = fx["vcf"].read_text().splitlines()
    fx["header"] = [x for x in lines if x.startswith("#")]
    fx["body"] = [x for x in lines if not x.startswith("#")]
    return fx


def must(outcome: Outcome) -> None:
    if outcome.code != 0:
        raise SystemExit(f"fixture step failed ({outcome.code}):\n{outcome.output[-2000:]}")


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def copy(src: Path, name: str) -> Path:
    dst = WORK / "scratch" / name
    if dst.exists():
        shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
    dst.parent.mkdir(parents=True, exist_ok=True)
    (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    return dst


def scratch(name: str) -> Path:
    path = WORK / "scratch" / name
    if path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def vcf_records(path: Path) -> list[str]:
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt") as fh:
        return [line.rstrip("\n") for line in fh if not line.startswith("#")]


def vcf_text(path: Path) -> str:
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt") as fh:
        return fh.read()


# ---------------------------------------------------------------------------------------------
# probes that run processes themselves
# ---------------------------------------------------------------------------------------------
def interrupted_then_rerun(
    args: list[str],
    out: Path,
    ready: Callable[[], bool],
    sig: int,
    code: int,
    compare: Callable[[], str | None],
    rerun: list[str] | None = None,
) -> Outcome:
    """Start ``args``, send ``sig`` once ``ready()``, expect ``code``; then rerun (``rerun`` or ``args``) to the end
    and ``compare()`` the result with a clean one."""
    started = time.perf_counter()
    proc = start(args)
    deadline = time.time() + 300
    while proc.poll() is None and not ready() and time.time() < deadline:
        time.sleep(0.05)
    if proc.poll() is None:
        proc.send_signal(sig)
    first, _ = proc.communicate(timeout=300)
    if proc.returncode != code:
        return Outcome(
            proc.returncode,
            first + f"\nerror: expected exit {code} after the signal",
            "Traceback" in first,
            time.perf_counter() - started,
        )
    again = invoke(rerun or args)
    problem = compare() if again.code == 0 else None
    output = first + again.output + (f"\nerror: {problem}" if problem else "")
    return Outcome(again.code if not problem else 99, output, "Traceback" in output, time.perf_counter() - started)


def two_at_once(first: list[str], second: list[str], codes: set[int]) -> Outcome:
    """Two jobs on one folder at the same time: their exit codes must be ``codes`` (e.g. {0, 4})."""
    started = time.perf_counter()
    a = start(first)
    time.sleep(0.3)
    b = start(second)
    out_a, _ = a.communicate(timeout=600)
    out_b, _ = b.communicate(timeout=600)
    got = {a.returncode, b.returncode}
    output = out_a + out_b
    if got != codes:
        return Outcome(
            98,
            output + f"\nerror: exit codes {sorted(got)}, expected {sorted(codes)}",
            "Traceback" in output,
            time.perf_counter() - started,
        )
    return Outcome(0, output, "Traceback" in output, time.perf_counter() - started)


class Mount:
    """A small tmpfs (``size``; ``ro``: read-only) for the full-disk and read-only probes, when mounting works."""

    def __init__(self, path: Path, size: str = "1m", ro: bool = False):
        self.path, self.size, self.ro, self.ok = path, size, ro, False

    def __enter__(self) -> Mount:
        self.path.mkdir(parents=True, exist_ok=True)
        options = f"size={self.size}" + (",ro" if self.ro else "")
        self.ok = (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(self.path)], capture_output=True
            ).returncode
            == 0
        )
        return self

    def __exit__(self, *exc) -> None:
        if self.ok:
            subprocess.run(["umount", str(self.path)], capture_output=True)


def on_mount(
    args: Callable[[Path], list[str]], size: str, ro: bool, code: int, text: str, leftovers: bool = True
) -> Callable[[], Outcome]:
    """Run ``args(mount point)`` with a tiny full disk (``size``) or a read-only one; expect ``code`` with ``text``
    and nothing half-written there (no temporary files; every parquet readable)."""

    def run() -> Outcome:
        with Mount(scratch(f"mnt-{int(ro)}-{size}"), size, ro) as mount:
            if not mount.ok:
                return Outcome(-1, "skipped: cannot mount a tmpfs here (needs root)", False, 0.0)
            outcome = invoke(args(mount.path))
            left = [
                p
                for p in mount.path.rglob("*")
                if p.is_file() and p.name.startswith(".") and p.name != ".metalayer.lock"
            ]
            broken = []
            for p in mount.path.rglob("*.parquet"):
                try:
                    import polars as pl

                    pl.read_parquet(p)
                except Exception:  # noqa: BLE001 - any unreadable file is a half-written one
                    broken.append(p.name)
            if leftovers and (left or broken):
                outcome.output += f"\nerror: half-written files left: {[p.name for p in left][:3]} {broken[:3]}"
                outcome.code = 97
            return outcome

    return run


# ---------------------------------------------------------------------------------------------
# the probes
# ---------------------------------------------------------------------------------------------
def prepare_args(
    out: str | Path, *extra: str, fasta: str | Path, gtf: str | Path, model: list[str] = OSAI, device: str = "cpu"
) -> list[str]:
    """``prepare`` of ``fasta`` + ``gtf`` into ``out`` with the base model ``model``; ``extra`` options before
    ``--out``."""
    return [
        "prepare",
        *model,
        "--device",
        device,
        "--no-progress",
        "--fasta",
        str(fasta),
        "--gtf",
        str(gtf),
        *extra,
        "--out",
        str(out),
    ]


def score_args(fx: dict, *extra: str, ref: str | Path | None = None, ann: str | Path | None = None) -> list[str]:
    """``score-vcf`` with OpenSpliceAI on the fixture's reference and annotation (or ``ref``, ``ann``), then
    ``extra``."""
    ref = fx["ref"] if ref is None else ref
    ann = fx["ann"] if ann is None else ann
    return ["score-vcf", *OSAI, "--no-progress", "-R", str(ref), "-A", str(ann), *extra]


def checkpoint_args(command: str, checkpoint: str | Path, data: str | Path, *extra: str) -> list[str]:
    """``command --checkpoint checkpoint --data data`` and ``extra``."""
    return [command, "--checkpoint", str(checkpoint), "--data", str(data), *extra]


def probes(fx: dict) -> list[Probe]:
    P, F, G, C = fx["prepared"], fx["fasta"], fx["gtf"], fx["checkpoint"]
    out: list[Probe] = []

    def adder(command: str) -> Callable[..., None]:
        """``add(name, args, expect, text, **fields)``: one more probe of ``command`` (the fields of ``Probe``)."""

        def add(name: str, args: list[str] | Callable[[], list[str]] | None = None, *more, **fields) -> None:
            out.append(Probe(command, name, [] if args is None else args, *more, **fields))

        return add

    def disk_probes(
        add: Callable[..., None], args: Callable[[Path], list[str]], full: str | None, read_only: bool = True
    ) -> None:
        """A full disk of ``full`` bytes (exit 1, 'no space left'), and a read-only one (exit 1, 'read-only')."""
        if full:
            run = on_mount(args, full, False, 1, "no space left")
            add("full disk", run=run, expect=1, text="no space left", late_ok=True)
        if read_only:
            add("read-only output", run=on_mount(args, "1m", True, 1, "read-only"), expect=1, text="read-only")

    # ---- prepare ------------------------------------------------------------------------------------------------
    add = adder("prepare")
    prep = partial(prepare_args, fasta=F, gtf=G)
    prep_head = ["prepare", *OSAI, "--device", "cpu", "--no-progress"]
    add("missing FASTA", prep("s/p1", fasta="nope.fa"), 3, "FASTA not found", untouched=[WORK / "s/p1/genes"])
    garbage = write(WORK / "in" / "garbage.fa", "this is not a fasta\n\x00\x01binary\n")
    add("FASTA that is not one", prep("s/p2", fasta=garbage), 3, inputs=[garbage])
    truncated = write(WORK / "in" / "truncated.fa.gz", gzip.compress(F.read_bytes())[:5000])
    add("truncated gzip FASTA", prep("s/p3", fasta=truncated), 3, inputs=[truncated])
    bad_gtf = write(WORK / "in" / "bad.gtf", 'chr1\tx\texon\tabc\t50\t.\t+\t.\tgene_id "G";\nnot a gtf line\n')
    add("malformed GTF", prep("s/p4", gtf=bad_gtf), 3, inputs=[bad_gtf])
    other_contigs = write(WORK / "in" / "contigs.gtf", re.sub(r"^chr", "scaffold_", G.read_text(), flags=re.M))
    add("GTF of other contigs", prep("s/p5", gtf=other_contigs), 3, "contigs")
    no_chr = write(WORK / "in" / "nochr.fa", re.sub(r"^>chr", ">", F.read_text(), flags=re.M))

    def same_as_prepared(folder: str, genes: list[str]) -> Callable[[Outcome], str | None]:
        def check(_: Outcome) -> str | None:
            from meta_layer_cli.artifacts.tracks import read_gene_track

            for g in genes:
                a, b = read_gene_track(P, g), read_gene_track(WORK / folder, g)
                if a["acceptor"].to_list() != b["acceptor"].to_list() or a["base"].to_list() != b["base"].to_list():
                    return f"gene {g}: tracks differ from the chr-named, uppercase genome's"
            return None

        return check

    matched = same_as_prepared("s/p6", ["148", "713"])
    add("FASTA '1', GTF 'chr1' (matched)", prep("s/p6", "--genes", "148,713", fasta=no_chr), check=matched)
    lower = write(
        WORK / "in" / "lower.fa", "".join(x if x.startswith(">") else x.lower() for x in F.read_text().splitlines(True))
    )
    unmasked = same_as_prepared("s/p7", ["148", "713"])
    add("soft-masked (lowercase) FASTA", prep("s/p7", "--genes", "148,713", fasta=lower), check=unmasked)
    add("unknown gene", prep("s/p8", "--genes", "148,NOPE"), 3, "NOPE", untouched=[WORK / "s/p8/genes"])
    add("empty --genes-file", prep("s/p9", "--genes-file", "-"), 2, "names no gene", stdin="")
    add("--genes ,", prep("s/p9", "--genes", ","), 2, "empty list")
    add("bad --region", prep("s/p10", "--region", "chr1:9-3"), 2, "--region")
    add("--shard 3/2", prep("s/p11", "--shard", "3/2"), 2, "--shard")
    add("--dtype float8", prep("s/p12", "--dtype", "float8"), 2, "dtype")
    add("--device cuda without a GPU", prep("s/p13", device="cuda"), (1, 0), "CUDA")
    genome = ["--fasta", str(F), "--gtf", str(G)]
    add(
        "weights path missing",
        ["prepare", "-b", "openspliceai", "--weights", "nope/", *genome, "--out", "s/p14"],
        3,
        "weights",
    )
    bad_weights = write(WORK / "in" / "w" / "model_80nt_rs10.pt", b"PK\x03\x04 not torch")
    garbage_weights = ["prepare", "-b", "openspliceai", "--weights", str(bad_weights.parent), *genome, "--out", "s/p15"]
    add("weights file garbage", garbage_weights, 3, inputs=[bad_weights])
    changed_gtf = write(WORK / "in" / "changed.gtf", G.read_text().replace("Ensembl_canonical", "basic"))
    add("rerun with a changed GTF", lambda: prep(copy(P, "p16"), gtf=changed_gtf), 3, "other inputs", inputs=[P])
    add(
        "--out is its own --data",
        lambda: [*prep_head, "--data", str(copy(P, "p17")), "--out", str(WORK / "scratch/p17"), "--overwrite"],
        2,
        "would destroy",
        inputs=[],
    )
    add("--out is a file", prep(F), (2, 3), inputs=[F])
    add(
        "--out holds its FASTA",
        lambda: [*prep(WORK / "s/p18", fasta=write(WORK / "s/p18/g.fa", F.read_text())), "--overwrite"],
        2,
        "would destroy",
    )
    exon0 = write(
        WORK / "in" / "exon0.gtf", 'chr1\tx\texon\t0\t50\t.\t+\t.\tgene_id "Z"; transcript_id "Z1";\n' + G.read_text()
    )
    add("GTF exon starting at 0", prep("s/p19", "--genes", "Z", gtf=exon0), 3, "Z")
    dup_fa = write(WORK / "in" / "dup.fa", F.read_text() + ">chr1\nACGT\n")
    add("FASTA with a contig twice", prep("s/p20", fasta=dup_fa), 3, "chr1", inputs=[dup_fa])
    masked = write(
        WORK / "in" / "masked.fa",
        re.sub(r"[ACGT]", "N", F.read_text().split(">chr3")[0]) + ">chr3" + F.read_text().split(">chr3")[1],
    )
    add(
        "genes in N-masked sequence",
        prep("s/p21", "--genes", "148,713", fasta=masked),
        check=lambda o: None if (WORK / "s/p21/manifest.json").is_file() else "no manifest",
    )
    disk_probes(add, lambda m: prep(m / "p"), full="300k")

    def prepared_like_clean(folder: Path) -> Callable[[], str | None]:
        def compare() -> str | None:
            if (folder / "manifest.json").read_bytes() != (P / "manifest.json").read_bytes():
                return "manifest differs from a clean run's"
            a = sorted(p.name for p in (P / "genes").iterdir())
            b = sorted(p.name for p in (folder / "genes").iterdir())
            if a != b or any((P / "genes" / n).read_bytes() != (folder / "genes" / n).read_bytes() for n in a):
                return "gene files differ from a clean run's"
            return None

        return compare

    def interrupted_prepare(name: str, sig: int, code: int, folder: str) -> None:
        """``sig`` once a gene file is written (exit ``code``), then a rerun that must equal a clean run."""
        target = WORK / "scratch" / folder
        args = prep(target)
        add(
            name,
            args,
            0,
            setup=lambda: scratch(folder),
            run=lambda: interrupted_then_rerun(
                args, target, lambda: any((target / "genes").glob("*.parquet")), sig, code, prepared_like_clean(target)
            ),
        )

    interrupted_prepare("SIGTERM mid-run, rerun", signal.SIGTERM, 143, "p-sig")
    interrupted_prepare("Ctrl-C mid-run, rerun", signal.SIGINT, 130, "p-int")
    both = WORK / "scratch" / "p-two"
    pangolin = ["-b", "pangolin", "--weights", str(SHARED / "models" / "pangolin")]
    add(
        "two models into one folder at once",
        [],
        0,
        setup=lambda: scratch("p-two"),
        run=lambda: two_at_once(prep(both), prep(both, "--genes", "148", model=pangolin), {0, 3}),
    )

    # ---- train-canonical ----------------------------------------------------------------------------------------
    add = adder("train-canonical")
    train = ["train-canonical", "--device", "cpu", "--test-chroms", "chr3", *TINY]

    def train_on(data: str | Path, out: str | Path, *extra: str) -> list[str]:
        return [*train, "--data", str(data), *extra, "--out", str(out)]

    add("--data missing", train_on("nope", "s/t1"), 3, "nope", untouched=[WORK / "s/t1/checkpoints"])
    add("--data not a prepared folder", train_on(WORK / "in", "s/t2"), 3, "not a metalayer tracks folder")
    add("corrupt manifest", lambda: train_on(_corrupt_manifest(P), "s/t3"), 3, "manifest.json")
    add(  # no interrupted run left to --resume
        "corrupt gene parquet",
        lambda: train_on(_corrupt_gene(P), "s/t4"),
        3,
        "cannot read it",
        untouched=[WORK / "s/t4/run.json"],
    )
    add("--set training.epochs=0", train_on(P, "s/t5", "--set", "training.epochs=0"), 2, "epochs")
    add("kernel: 4", train_on(P, "s/t6", "--set", "model.kernel=4"), 2, "kernel must be odd")
    add("--set base_model=nope", train_on(P, "s/t7", "--set", "base_model=nope"), 2, "unknown base model")
    dup = write(WORK / "in" / "dup.yaml", "training:\n  epochs: 1\ntraining:\n  lr: 0.1\n")
    add("config with a key twice", train_on(P, "s/t8", "--config", str(dup)), 2, "appears twice")
    add("missing --config", train_on(P, "s/t9", "--config", "nope.yaml"), (2, 3), "nope.yaml")
    chr9 = ["train-canonical", "--device", "cpu", *TINY, "--data", str(P), "--test-chroms", "chr9", "--out", "s/t10"]
    add("test chromosome without genes", chr9, 3, "chr9")
    add("rerun of a finished run", train_on(P, fx["run"]), 3, "finished", inputs=[fx["run"]])
    unchanged = [*train, *OSAI, "--data", str(P), "--out", str(fx["run"]), "--if-changed"]
    add("rerun --if-changed, nothing changed", unchanged, 5, inputs=[fx["run"] / "checkpoints"])
    add(
        "--out is its --data",
        lambda: [*train_on(copy(P, "t11"), WORK / "scratch/t11"), "--overwrite"],
        2,
        "would destroy",
    )
    add("unfinished --data", lambda: train_on(_unfinished(P), "s/t12"), 3, "incomplete")
    add(
        "--if-changed sees bfloat16 tracks",
        lambda: [*train_on(_bf16(P), copy(fx["run"], "t13")), "--if-changed"],
        check=lambda o: None if "tracks dtype: float32 -> bfloat16" in o.output else "not retrained",
    )
    add(
        "rerun with changed tracks, no flag",
        lambda: train_on(_bf16(P), copy(fx["run"], "t14")),
        3,
        "other inputs",
        inputs=[WORK / "scratch/t14/checkpoints"],
    )
    disk_probes(add, lambda m: train_on(P, m / "r"), full="200k", read_only=False)
    res_out = WORK / "scratch" / "t-resume"
    res_args = [*train_on(P, res_out), "--set", "training.epochs=3"]
    add(
        "Ctrl-C mid-training, --resume",
        res_args,
        0,
        setup=lambda: scratch("t-resume"),
        run=lambda: interrupted_then_rerun(
            res_args,
            res_out,
            lambda: (res_out / "checkpoints" / "last").is_dir(),
            signal.SIGINT,
            130,
            lambda: _finished(res_out),
            [*res_args, "--resume"],
        ),
    )
    two_out = WORK / "scratch" / "t-two"
    add(
        "two trainings into one folder",
        [],
        0,
        setup=lambda: scratch("t-two"),
        run=lambda: two_at_once([*train_on(P, two_out), "--set", "training.epochs=2"], train_on(P, two_out), {0, 4}),
    )

    # ---- evaluate -----------------------------------------------------------------------------------------------
    add = adder("evaluate")

    def on_checkpoint(checkpoint: str | Path, *extra: str, data: str | Path = P) -> list[str]:
        return checkpoint_args("evaluate", checkpoint, data, *extra)

    add("--tracks missing", ["evaluate", "--tracks", "nope"], 3, "not a metalayer tracks folder")
    add("--tracks unfinished", lambda: ["evaluate", "--tracks", str(_unfinished(P))], 3, "incomplete")
    add("--threshold 7", ["evaluate", "--tracks", str(P), "--threshold", "7"], 2, "--threshold")
    add("--threshold nan", ["evaluate", "--tracks", str(P), "--threshold", "nan"], 2, "--threshold")
    add(
        "table shows the base model",
        ["evaluate", "--tracks", str(P)],
        check=lambda o: (
            None if "base (openspliceai)" in o.output and "fp_acceptor" in o.output else "no base column / FP rows"
        ),
    )
    add("checkpoint config not JSON", lambda: on_checkpoint(_edit_config(C, None)), 3, "not valid JSON")
    add(
        "NaN threshold in checkpoint",
        lambda: on_checkpoint(_edit_config(C, ("run", "thresholds", "meta", "1"), float("nan"))),
        3,
        "thresholds",
    )
    add(
        "negative decoder size in checkpoint",
        lambda: on_checkpoint(_edit_config(C, ("structure", "min_intron"), -5)),
        3,
        "min_intron",
    )
    add("damaged weights", lambda: on_checkpoint(_damaged_weights(C)), 3, "safetensors")
    add("--genes ,", on_checkpoint(C, "--genes", ","), 2)
    add("--genes unknown", on_checkpoint(C, "--genes", "NOPE"), 3, "NOPE")
    add(
        "another annotation: held out by locus",
        lambda: on_checkpoint(C, "--json", data=_renamed(fx)),
        check=lambda o: _n_genes(o, len(GENOME_CHR3)),
    )
    add(
        "--json is JSON, errors not on stdout",
        ["evaluate", "--tracks", str(P), "--json"],
        check=lambda o: (
            None
            if json.loads(o.output[o.output.index("{") : o.output.rindex("}") + 1])["n_genes"]
            == len(GENOME_CHR1) + len(GENOME_CHR3)
            else "wrong gene count"
        ),
    )

    # ---- predict ------------------------------------------------------------------------------------------------
    add = adder("predict")
    pred = ["predict", "--checkpoint", str(C), "--no-progress"]
    add("--out .txt for genes", [*pred, "--data", str(P), "--out", "s/x.txt"], 2, ".parquet")
    folder = WORK / "in" / "folder.parquet"
    folder.mkdir(parents=True, exist_ok=True)
    add("--out is a folder", [*pred, "--data", str(P), "--out", str(folder)], 2, "folder")
    inside = [*pred, "--data", str(P), "--out", str(C / "p.parquet")]
    add("--out inside the checkpoint", inside, 2, "would destroy", untouched=[C / "p.parquet"])
    add(
        "unfinished --data",
        lambda: [*pred, "--data", str(_unfinished(P)), "--out", "s/x1.parquet"],
        3,
        "incomplete",
        untouched=[WORK / "s/x1.parquet"],
    )
    add(
        "--allow-partial",
        lambda: [*pred, "--data", str(_unfinished(P)), "--out", str(scratch("x2.parquet")), "--allow-partial"],
        check=lambda o: _gene_count(WORK / "scratch/x2.parquet", len(GENOME_CHR1) + len(GENOME_CHR3) - 1),
    )
    no_genes = [*pred, "--data", str(P), "--out", "s/x3.parquet", "--genes-file", "-"]
    add("--genes-file from /dev/null", no_genes, 2, "names no gene", stdin="")
    add("--shard 0/3", [*pred, "--data", str(P), "--out", "s/x4.parquet", "--shard", "0/3"], 2)
    add(
        "from FASTA = from prepared folder",
        lambda: [*pred, *genome, "--genes", "148,713", "--out", str(scratch("x5.parquet"))],
        check=lambda o: _same_predictions(fx, WORK / "scratch/x5.parquet", ["148", "713"]),
    )
    disk_probes(add, lambda m: [*pred, "--data", str(P), "--out", str(m / "p.parquet")], full="64k")
    variants = ["predict", *OSAI, "--out", "s/v.parquet", "--variants"]
    ref = "CAGGTAAGTACTTACCTTTCAGGAGCTGCAGGTGAGTACGTAGCTAGCTAACAGG"
    for name, row, text in [
        ("allele XYZ", f"v1,XYZ,{ref},5,20", "invalid character"),
        ("exon start after end", f"v1,{ref},{ref[:-1]}T,30,20", "not before exon_end"),
        ("text in exon_start", f"v1,{ref},{ref[:-1]}T,abc,20", "not an integer"),
        ("empty alt", f"v1,{ref},,5,20", "empty"),
    ]:
        table = write(WORK / "in" / f"{name.replace(' ', '_')}.csv", f"id,ref_seq,alt_seq,exon_start,exon_end\n{row}\n")
        add(
            f"variant table: {name}", [*variants, str(table)], 3, text, inputs=[table], untouched=[WORK / "s/v.parquet"]
        )
    target = write(
        WORK / "in" / "target.csv", f"id,ref_seq,alt_seq,exon_start,exon_end,target\nv1,{ref},{ref[:-1]}T,5,20,high\n"
    )
    add("variant table: text target", [*variants, str(target)], 3, "not a number")
    missing_col = write(WORK / "in" / "nocol.csv", f"id,ref_seq,alt_seq\nv1,{ref},{ref}\n")
    add("variant table: missing column", [*variants, str(missing_col)], 3, "lacks column")
    corrupt = write(WORK / "in" / "corrupt.parquet", b"PAR1" + os.urandom(300))
    add("corrupt parquet", [*variants, str(corrupt)], 3, "cannot read it")
    good = write(WORK / "in" / "good.csv", f"id,ref_seq,alt_seq,exon_start,exon_end\nv1,{ref},{ref[:-1]}T,5,20\n")
    add(
        "--out is the variant table",
        ["predict", *OSAI, "--variants", str(good), "--out", str(good)],
        2,
        "would destroy",
        inputs=[good],
    )
    add(
        "variant table scored",
        lambda: ["predict", *OSAI, "--variants", str(good), "--out", str(scratch("v2.tsv"))],
        check=lambda o: None if len((WORK / "scratch/v2.tsv").read_text().splitlines()) == 2 else "rows lost",
    )

    # ---- calibrate ----------------------------------------------------------------------------------------------
    add = adder("calibrate")
    for what in ("run folder", "checkpoint", "data"):

        def args(what=what):
            run, data = copy(fx["run"], "c-run"), copy(P, "c-data")
            target = {"run folder": run, "checkpoint": run / "checkpoints" / "best", "data": data}[what]
            best = str(run / "checkpoints" / "best")
            return ["calibrate", "--checkpoint", best, "--data", str(data), "--out", str(target), "--overwrite"]

        copies = [WORK / "scratch/c-run", WORK / "scratch/c-data"]
        add(f"--out is its own {what}", args, 2, "would destroy", inputs=copies)
    add(
        "base only, --out is its data",
        lambda: [
            "calibrate",
            "--data",
            str(copy(P, "c-d2")),
            "--out",
            str(WORK / "scratch/c-d2"),
            "--overwrite",
            "--test-chroms",
            "chr3",
        ],
        2,
        "would destroy",
        inputs=[WORK / "scratch/c-d2"],
    )
    not_empty = ["calibrate", "--checkpoint", str(C), "--data", str(P), "--out", str(WORK / "in")]
    add("--out not empty (checked first)", not_empty, 3, "not empty")
    add(
        "base only, unfinished data",
        lambda: ["calibrate", "--data", str(_unfinished(P)), "--out", "s/c1", "--test-chroms", "chr3"],
        3,
        "incomplete",
        untouched=[WORK / "s/c1"],
    )
    bogus = ["calibrate", "--checkpoint", str(C), "--data", str(P), "--out", "s/c2", "--method", "bogus"]
    add("--method bogus", bogus, 2, "bogus")
    twice = ["calibrate", "--checkpoint", str(fx["calibrated"]), "--data", str(P), "--out", "s/c3"]
    add("already calibrated", twice, 3, "already calibrated")
    calibrated = on_checkpoint(fx["calibrated"], "--json")
    add("calibrated checkpoint evaluates", calibrated, check=lambda o: _n_genes(o, len(GENOME_CHR3)))

    # ---- score-vcf ----------------------------------------------------------------------------------------------
    add = adder("score-vcf")
    V, R = fx["vcf"], fx["ref"]
    score = score_args(fx)
    add("-O a folder (before scoring)", [*score, "-I", str(V), "-O", str(WORK / "in")], 2, "folder")
    add("-O is -I", [*score, "-I", str(V), "-O", str(V)], 2, "would destroy", inputs=[V])
    add("-O is -R", [*score, "-I", str(V), "-O", str(R)], 2, "would destroy", inputs=[R])
    add("-I missing", [*score, "-I", "nope.vcf", "-O", "s/o1.vcf"], 3, "nope.vcf", untouched=[WORK / "s/o1.vcf"])
    notvcf = write(WORK / "in" / "not.vcf", "hello\nworld\n")
    add("-I not a VCF", [*score, "-I", str(notvcf), "-O", "s/o2.vcf"], 3, "#CHROM", untouched=[WORK / "s/o2.vcf"])
    cut = write(WORK / "in" / "cut.vcf.gz", gzip.compress(V.read_bytes())[:-40])
    add("truncated gzip VCF", [*score, "-I", str(cut), "-O", "s/o3.vcf"], 3, untouched=[WORK / "s/o3.vcf"])
    bad_lines = write(
        WORK / "in" / "badlines.vcf",
        "\n".join(
            fx["header"]
            + fx["body"][:5]
            + ["1\t6448\tshort\tG\tA", "1\tabc\tpos\tG\tA\t.\t.\t.", "just text"]
            + fx["body"][5:]
        )
        + "\n",
    )
    add(
        "malformed lines pass through",
        lambda: [*score, "-I", str(bad_lines), "-O", str(scratch("o4.vcf"))],
        check=lambda o: _records_kept(bad_lines, WORK / "scratch/o4.vcf", "MetaLayerSkip=malformed"),
    )
    strict = [*score, "-I", str(bad_lines), "-O", "s/o5.vcf", "--strict"]
    add("--strict on malformed lines", strict, 3, "malformed", untouched=[WORK / "s/o5.vcf"])
    chr_vcf = write(WORK / "in" / "chr.vcf", "\n".join(fx["header"] + ["chr" + b for b in fx["body"]]) + "\n")
    add(
        "VCF 'chr1', FASTA '1'",
        lambda: [*score, "-I", str(chr_vcf), "-O", str(scratch("o6.vcf"))],
        check=lambda o: _same_scores(fx, WORK / "scratch/o6.vcf"),
    )
    old = write(
        WORK / "in" / "old.vcf",
        "\n".join(
            fx["header"][:-1]
            + [
                '##INFO=<ID=MetaSpliceSkip,Number=1,Type=String,Description="old">',
                "##metasplice_score_vcf=<x>",
                fx["header"][-1],
            ]
            + [b.replace("\tPASS\t.", "\tPASS\tMetaSpliceSkip=old") for b in fx["body"]]
        )
        + "\n",
    )
    add(
        "fields of the former name dropped",
        lambda: [*score, "-I", str(old), "-O", str(scratch("o7.vcf"))],
        check=lambda o: (
            "former-name fields kept"
            if "etaSplice" in vcf_text(WORK / "scratch/o7.vcf") or "metasplice" in vcf_text(WORK / "scratch/o7.vcf")
            else None
        ),
    )
    add("--batch-size 0", [*score, "-I", str(V), "-O", "s/o8.vcf", "--batch-size", "0"], 2)
    add("--batch-size -3", [*score, "-I", str(V), "-O", "s/o8.vcf", "--batch-size", "-3"], 2)
    add("-D 6000", [*score, "-I", str(V), "-O", "s/o9.vcf", "-D", "6000"], 2)
    add("annotation missing", score_args(fx, "-I", str(V), "-O", "s/o10.vcf", ann="nope.txt"), 3, "nope.txt")
    add("reference missing", score_args(fx, "-I", str(V), "-O", "s/o11.vcf", ref="nope.fa"), 3, "nope.fa")
    add(
        "stdin to stdout",
        [*score, "-I", "-", "-O", "-"],
        0,
        stdin=V.read_text(),
        check=lambda o: (
            None
            if sum(1 for x in o.output.splitlines() if x.startswith(("1\t", "2\t", "3\t", "9\t", "5\t")))
            == len(fx["body"])
            else "records lost on stdout"
        ),
    )
    add("shards merged = one run", [], 0, run=lambda: _shards_equal_one_run(fx))
    add(
        "with --checkpoint (MetaLayer=)",
        lambda: [*score, "-I", str(V), "-O", str(scratch("o12.vcf")), "--checkpoint", str(C)],
        check=lambda o: _records_kept(V, WORK / "scratch/o12.vcf", "MetaLayer="),
    )
    disk_probes(add, lambda m: [*score, "-I", str(V), "-O", str(m / "o.vcf")], full="4k")
    sig_vcf = write(WORK / "in" / "big.vcf", "\n".join(fx["header"] + fx["body"] * 60) + "\n")
    term_out = WORK / "scratch" / "o-term.vcf"
    add(
        "SIGTERM mid-run leaves no output",
        [],
        143,
        setup=lambda: scratch("o-term.vcf"),
        run=lambda: _killed(score_args(fx, "-I", str(sig_vcf), "-O", str(term_out)), term_out),
    )

    # ---- merge-vcf ----------------------------------------------------------------------------------------------
    add = adder("merge-vcf")
    add("shards of two inputs", [], 3, run=lambda: _merge_case(fx, "other input"), text="another input")
    add("a shard missing", [], 3, run=lambda: _merge_case(fx, "missing"), text="missing")
    add("a shard given twice", [], 3, run=lambda: _merge_case(fx, "twice"), text="twice")
    add("a truncated shard", [], 3, run=lambda: _merge_case(fx, "truncated"), text="lines")
    add("not a shard", ["merge-vcf", "-O", "s/m.vcf", str(V)], 3, "shard")
    add("read-only output", [], 1, "read-only", run=lambda: _merge_case(fx, "read-only"))
    add("-O is a shard", [], 2, run=lambda: _merge_case(fx, "output is input"), text="would destroy")

    # ---- train-delta --------------------------------------------------------------------------------------------
    add = adder("train-delta")
    delta = ["train-delta", "--set", "hardware.device=cpu", "--out", "s/d"]
    add("--set base_model=nope", [*delta, "--set", "base_model=nope"], 2, "unknown base model")
    add("--set folds=1", [*delta, "--set", "folds=1"], 2, "folds")
    add("table missing", [*delta, "--set", 'train=[{"loader": "table", "path": "nope.csv"}]'], 3, "nope.csv")
    model = ["--set", "base_model=openspliceai", "--set", f"base_weights={WEIGHTS}"]
    text_target = [*delta, *model, "--set", f'train=[{{"loader": "table", "path": "{target}"}}]']
    add("table with a text target", text_target, 3, "not a number")

    def delta_into_its_table() -> list[str]:
        inside = write(WORK / "s/d2/metrics.json", good.read_text())  # a table where the run writes metrics.json
        train = f'train=[{{"loader": "table", "path": "{inside}"}}]'
        return ["train-delta", "--set", "hardware.device=cpu", "--set", train, "--out", str(WORK / "s/d2")]

    add("--out holds its table", delta_into_its_table, 2, "would destroy")

    # ---- demo, pipeline, init-config, global options -----------------------------------------------------------
    add = adder("demo")
    add("unknown demo gene", ["demo", "--genes", "99999", "--out", "s/demo"], 3, "99999")
    add("--epochs 0", ["demo", "--epochs", "0", "--out", "s/demo"], 2)
    add("--out is a file", ["demo", "--genes", "4,5", "--out", str(F), "--device", "cpu"], (2, 3), inputs=[F])
    add = adder("pipeline")
    for name, changes, code, text in [
        ("missing VCF", {"vcf": "missing.vcf"}, 3, "missing.vcf"),
        ("missing train_config", {"train_config": "missing.yaml"}, 3, "missing.yaml"),
        ("unknown predict_genes entry", {"predict_genes": ["NO_SUCH_GENE"]}, 3, "NO_SUCH_GENE"),
        ("kernel: 4 in train_set", {"train_set": {"model.kernel": 4}}, 2, "kernel"),
        ("unknown key", {"out_dir": "x"}, 2, "unknown key"),
        ("its VCF is its output", {"vcf": str(WORK / "scratch" / "pipe" / "scored.vcf.gz")}, 2, "would destroy"),
    ]:
        add(
            name,
            lambda changes=changes: ["pipeline", "--config", str(_pipeline(fx, **changes)), "--no-progress"],
            code,
            text,
            untouched=[WORK / "scratch" / "pipe" / "prepared"],
            setup=lambda: _pipe_vcf(fx),
        )

    def pipe_args():
        return ["pipeline", "--config", str(_pipeline(fx, train_set={"training.epochs": 3})), "--no-progress"]

    pipe = WORK / "scratch/pipe"
    add(
        "Ctrl-C in training, rerun resumes",
        [],
        0,
        setup=lambda: scratch("pipe"),
        run=lambda: interrupted_then_rerun(
            pipe_args(),
            pipe,
            lambda: (pipe / "run/checkpoints/last").is_dir(),
            signal.SIGINT,
            130,
            lambda: _finished(pipe / "run"),
        ),
    )
    add = adder("init-config")
    add(
        "-o - is stdout",
        ["init-config", "cpu", "-o", "-"],
        check=lambda o: "stdout not written" if "device" not in o.output or (WORK / "-").exists() else None,
    )
    add("-o an existing file", ["init-config", "cpu", "-o", str(F)], 2, "exists", inputs=[F])
    add("-o a folder", ["init-config", "cpu", "-o", str(WORK / "in")], 2, "folder")
    add("unknown kind", ["init-config", "nope"], 2, "nope")
    add = adder("global options")
    for log in (str(WORK / "in"), "/proc/no/such/x.log", str(F / "below.log")):
        for command in (["evaluate", "--tracks", str(P), "--json"], ["init-config", "cpu"]):
            add(f"--log-file {log[-18:]} / {command[0]}", ["--log-file", log, *command], 2, "--log-file")
    read_only_log = on_mount(
        lambda m: ["--log-file", str(m / "x.log"), "init-config", "cpu"], "1m", True, 2, "--log-file", False
    )
    add("--log-file on a read-only disk", run=read_only_log, expect=2, text="--log-file")
    add("--profile nope", ["prepare", "--profile", "nope", "--dataset", "demo", "--out", "s/g"], 2, "--profile")
    add("--device tpu", ["prepare", "--device", "tpu", "--dataset", "demo", "--out", "s/g"], 2, "tpu")
    add("-O - | head (broken pipe)", [], 1, run=lambda: _broken_pipe(fx), text="broken pipe")
    return out


# ---------------------------------------------------------------------------------------------
# helpers of the probes
# ---------------------------------------------------------------------------------------------
def _corrupt_manifest(prepared: Path) -> Path:
    folder = copy(prepared, "corrupt-manifest")
    (folder / "manifest.json").write_text('{"format": "metalayer-tracks", "format_version": 2, "genes": [')
    return folder


def _corrupt_gene(prepared: Path) -> Path:
    folder = copy(prepared, "corrupt-gene")
    victim = sorted((folder / "genes").iterdir())[3]
    victim.write_bytes(victim.read_bytes()[:200])
    return folder


def _unfinished(prepared: Path) -> Path:
    folder = copy(prepared, "unfinished")
    sorted((folder / "genes").iterdir())[0].unlink()
    return folder


def _bf16(prepared: Path) -> Path:
    folder = copy(prepared, "bf16")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["dtype"] = manifest["fingerprint"]["dtype"] = "bfloat16"
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


def _edit_config(checkpoint: Path, where: tuple | None, value=None) -> Path:
    folder = copy(checkpoint, "edited-checkpoint")
    if where is None:
        (folder / "config.json").write_text("{not json")
        return folder
    config = json.loads((folder / "config.json").read_text())
    node = config
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _damaged_weights(checkpoint: Path) -> Path:
    folder = copy(checkpoint, "damaged-checkpoint")
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:100])
    return folder


def _renamed(fx: dict) -> Path:
    folder = WORK / "renamed"
    if not (folder / "manifest.json").is_file():
        gtf = write(
            WORK / "in" / "renamed.gtf", re.sub(r'(gene_id|transcript_id) "', r'\1 "other_', fx["gtf"].read_text())
        )
        must(invoke(prepare_args(folder, fasta=fx["fasta"], gtf=gtf)))
    return folder


def _n_genes(outcome: Outcome, n: int) -> str | None:
    text = outcome.output
    data = json.loads(text[text.index("{") : text.rindex("}") + 1])
    got = data["meta"]["n_genes"]
    return None if got == n else f"{got} genes evaluated as held out, expected {n}"


def _gene_count(table: Path, n: int) -> str | None:
    import polars as pl

    got = pl.read_parquet(table)["gene_id"].n_unique()
    return None if got == n else f"{got} genes written, expected {n}"


def _same_predictions(fx: dict, table: Path, genes: list[str]) -> str | None:
    import polars as pl

    reference = scratch("x-ref.parquet")
    options = ["--genes", ",".join(genes), "--out", str(reference), "--no-progress"]
    must(invoke(checkpoint_args("predict", fx["checkpoint"], fx["prepared"], *options)))
    a, b = pl.read_parquet(table), pl.read_parquet(reference)
    if a.select("gene_id", "meta_acceptor").rows() != b.select("gene_id", "meta_acceptor").rows():
        return "predictions from the FASTA differ from those of the prepared folder"
    return None


def _records_kept(source: Path, out: Path, marker: str) -> str | None:
    records_in = vcf_records(source)
    records_out = vcf_records(out)
    if len(records_in) != len(records_out):
        return f"{len(records_in)} records in, {len(records_out)} out"
    if not any(marker in r for r in records_out):
        return f"no {marker} in the output"
    return None


def _same_scores(fx: dict, out: Path) -> str | None:
    reference = scratch("o-ref.vcf")
    must(invoke(score_args(fx, "-I", str(fx["vcf"]), "-O", str(reference))))
    a = [r.split("\t")[7] for r in vcf_records(reference)]
    b = [r.split("\t")[7] for r in vcf_records(out)]
    return None if a == b else "scores differ between 'chr1' and '1' contig names"


def _shards_equal_one_run(fx: dict) -> Outcome:
    started = time.perf_counter()
    base = score_args(fx, "-I", str(fx["vcf"]))
    one, merged = scratch("sh-one.vcf"), scratch("sh-merged.vcf")
    outputs = [invoke([*base, "-O", str(one)])]
    shards = [scratch(f"sh-{k}.vcf") for k in (1, 2, 3)]
    outputs += [invoke([*base, "-O", str(s), "--shard", f"{k}/3"]) for k, s in enumerate(shards, 1)]
    outputs.append(invoke(["merge-vcf", "-O", str(merged), *map(str, shards)]))
    text = "".join(o.output for o in outputs)
    if any(o.code for o in outputs):
        return Outcome(max(o.code for o in outputs), text, "Traceback" in text, time.perf_counter() - started)
    same = vcf_records(one) == vcf_records(merged)
    return Outcome(
        0 if same else 96,
        text + ("" if same else "\nerror: merged shards differ from one run"),
        "Traceback" in text,
        time.perf_counter() - started,
    )


def _merge_case(fx: dict, case: str) -> Outcome:
    base = score_args(fx)
    reversed_vcf = write(WORK / "in" / "reversed.vcf", "\n".join(fx["header"] + fx["body"][::-1]) + "\n")
    shards = [WORK / "scratch" / f"mc-{k}.vcf" for k in (1, 2)]
    if not all(s.is_file() for s in shards):
        for k, s in enumerate(shards, 1):
            must(invoke([*base, "-I", str(fx["vcf"]), "-O", str(s), "--shard", f"{k}/2"]))
    other = WORK / "scratch" / "mc-other-2.vcf"
    if not other.is_file():
        must(invoke([*base, "-I", str(reversed_vcf), "-O", str(other), "--shard", "2/2"]))
    out = str(scratch("mc-out.vcf"))
    if case == "other input":
        args = [str(shards[0]), str(other)]
    elif case == "missing":
        args = [str(shards[0])]
    elif case == "twice":
        args = [str(shards[0]), str(shards[0]), str(shards[1])]
    elif case == "read-only":
        with Mount(scratch("mc-ro"), "1m", True) as mount:
            if not mount.ok:
                return Outcome(-1, "skipped: cannot mount a tmpfs here (needs root)", False, 0.0)
            return invoke(["merge-vcf", "-O", str(mount.path / "m.vcf"), str(shards[0]), str(shards[1])])
    elif case == "truncated":
        cut = write(WORK / "scratch" / "mc-cut.vcf", "\n".join(shards[1].read_text().splitlines()[:-2]) + "\n")
        args = [str(shards[0]), str(cut)]
    else:
        args, out = [str(shards[0]), str(shards[1])], str(shards[1])
    before = digest(shards)
    outcome = invoke(["merge-vcf", "-O", out, *args])
    if digest(shards) != before:
        outcome.output += "\nerror: a shard was changed"
        outcome.code = 95
    if case != "output is input" and Path(out).exists():
        outcome.output += "\nerror: a merged output was written"
        outcome.code = 0
    return outcome


def _killed(args: list[str], out: Path) -> Outcome:
    """SIGTERM once scoring runs: exit 143 and no output file (a regular file appears only when complete)."""
    started = time.perf_counter()
    proc = start(args)
    deadline = time.time() + 120
    while proc.poll() is None and not list(out.parent.glob(f".{out.name}.*")) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    text, _ = proc.communicate(timeout=120)
    left = list(out.parent.glob(f".{out.name}.*"))
    if out.exists() or left:
        text += f"\nerror: output left behind after SIGTERM: {[p.name for p in left]} {out.exists()}"
        return Outcome(0, text, False, time.perf_counter() - started)
    return Outcome(proc.returncode, text, "Traceback" in text, time.perf_counter() - started)


def _broken_pipe(fx: dict) -> Outcome:
    started = time.perf_counter()
    big = write(WORK / "in" / "big2.vcf", "\n".join(fx["header"] + fx["body"] * 40) + "\n")
    command = " ".join(
        [
            *map(str, CLI),
            *score_args(fx, "-I", str(big), "-O", "-"),
            "| head -c 100 > /dev/null",
        ]
    )
    proc = subprocess.run(
        ["bash", "-c", f'set -o pipefail; {command}; echo "rc=${{PIPESTATUS[0]}}" >&2'],
        capture_output=True,
        text=True,
        cwd=WORK,
        env=cli_env(),
    )
    code = int(re.search(r"rc=(\d+)", proc.stderr).group(1))
    text = re.sub(r"rc=\d+\n?", "", proc.stderr)
    return Outcome(code, text, "Traceback" in text, time.perf_counter() - started)


def _pipe_vcf(fx: dict) -> None:
    """A fresh pipeline folder holding only a VCF at the path the pipeline writes its scored VCF to."""
    folder = scratch("pipe")
    write(folder / "scored.vcf.gz", gzip.compress(fx["vcf"].read_bytes()))


def _finished(run: Path) -> str | None:
    state = json.loads((run / "run.json").read_text())
    return None if state.get("status") == "finished" else f"run not finished: {state.get('status')}"


def _pipeline(fx: dict, **changes) -> Path:
    import yaml

    config = {
        "fasta": str(fx["fasta"]),
        "annotation": str(fx["gtf"]),
        "base_model": "openspliceai",
        "weights": str(WEIGHTS),
        "out": str(WORK / "scratch" / "pipe"),
        "test_chromosomes": ["chr3"],
        "device": "cpu",
        "train_set": {
            **{f"model.{k}": v for k, v in TINY_MODEL.items()},
            **{f"training.{k}": v for k, v in {**TINY_TRAINING, "epochs": 1}.items()},
        },
    }
    for key, value in changes.items():
        if key == "train_set":
            config["train_set"].update(value)
        else:
            config[key] = value
    return write(
        WORK / "in" / f"pipeline-{abs(hash(json.dumps(changes, sort_keys=True)))}.yaml", yaml.safe_dump(config)
    )


# ---------------------------------------------------------------------------------------------
def main() -> int:
    global WORK
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a new temporary one)")
    parser.add_argument("--only", default=None, help="run only the probes of this command")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args()
    if not WEIGHTS.is_dir():
        raise SystemExit(f"{WEIGHTS} not found: set METALAYER_SHARED to the shared data folder")
    WORK = (args.work or Path(tempfile.mkdtemp(prefix="metalayer-probes-"))).resolve()
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "s").mkdir(exist_ok=True)
    started = time.perf_counter()
    fx = build_fixtures()
    print(f"fixtures ready in {time.perf_counter() - started:.0f} s ({WORK})", flush=True)
    table: dict[str, Counter] = defaultdict(Counter)
    failures = []
    for probe in probes(fx):
        if args.only and probe.command != args.only:
            continue
        if probe.setup:
            probe.setup()
        shutil.rmtree(WORK / "s", ignore_errors=True)
        (WORK / "s").mkdir()
        given = probe.args() if callable(probe.args) else probe.args
        before = digest(probe.inputs)
        outcome = probe.run() if probe.run else invoke(given, probe.stdin)
        if outcome.code == -1:
            print(f"  skip  {probe.command:16} {probe.name}: {outcome.output}", flush=True)
            table[probe.command]["skipped"] += 1
            continue
        kind, why = classify(probe, outcome, before, digest(probe.inputs))
        table[probe.command]["probes"] += 1
        table[probe.command][kind] += 1
        if kind != "held":
            failures.append((probe, kind, why, outcome))
        print(
            f"  {'ok' if kind == 'held' else 'FAIL':5} {probe.command:16} {probe.name} ({outcome.seconds:.1f} s)"
            + ("" if kind == "held" else f"  [{kind}] {why}"),
            flush=True,
        )
    print(f"\n{sum(c['probes'] for c in table.values())} probes in {time.perf_counter() - started:.0f} s\n")
    print("| command | probes | held | " + " | ".join(KINDS) + " |")
    print("|---|---:|---:|" + "---:|" * len(KINDS))
    total = Counter()
    for command, counts in table.items():
        total.update(counts)
        print(
            f"| {command} | {counts['probes']} | {counts['held']} | " + " | ".join(str(counts[k]) for k in KINDS) + " |"
        )
    print(f"| **all** | {total['probes']} | {total['held']} | " + " | ".join(str(total[k]) for k in KINDS) + " |")
    if total["skipped"]:
        print(f"\n{total['skipped']} probe(s) skipped (mounting a tmpfs needs root)")
    for probe, kind, why, outcome in failures:
        print(f"\n--- {probe.command}: {probe.name} [{kind}] {why}\n{outcome.output[-1500:]}")
    if not args.keep and args.work is None:
        shutil.rmtree(WORK, ignore_errors=True)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
