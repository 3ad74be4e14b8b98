"""Peak memory of train-canonical, evaluate, calibrate and predict at 1x, 4x and 16x the genes of a real genome,
and a projection of time and memory per step for GRCh38 + GENCODE.

    python scripts/memory_scaling.py --source /work/exp/arenosa/osai80 --work /tmp/memory-scaling

``--source`` is a prepared folder (``metalayer prepare``; here Arabidopsis arenosa chromosomes 1 and 2 with
OpenSpliceAI 80 nt: 5,991 genes, 18.4 Mnt). The 4x and 16x folders *replicate its genes under new ids and
contigs* (``GENE_r1``, ``LR999451.1_r1``, ...): their parquet files and gene-store arrays are symbolic links
to the 1x folder's, so the data are real but repeated. Chromosome 2 and its replicas are held out.

Each step runs in a fresh process; the table gives its peak RSS (``ru_maxrss``, which includes the pages of
memory-mapped gene arrays a step has touched and still maps), its growth over the RSS before the step (interpreter,
torch, the package), and, sampled every 0.05 s, the peaks of its own memory (``RssAnon``) and of mapped file pages
(``RssFile``: the kernel can drop those and read them again, so they are not memory the step needs). ``--profile``
runs each step under cProfile (``WORK/run-xN/STEP.profile.txt``). Memory-behaviour runs use a meta model without
its correction network (``--model base-only``: its
output is the base model's, recalibrated by temperature, so the gene-structure decoder meets a trained model's
few candidates; an untrained network's noise makes every position one). Memory does not depend on the model's
width, time does: the time projection replaces its inference by the default model's, at rates measured here
(``rates``). Prints Markdown for scripts/RESULTS.md. The machine's load average is printed with every step.

One run's own-memory peak varies by tens of MB (when a short-lived buffer is sampled, what the allocators keep):
``--repeats N`` runs every step N times, reports the median run with the range, and the last table sets the growth
from the smallest to the largest scale against that range, per step: growth within the range is not measurable.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

TINY_MODEL = {
    "width": 8,
    "kernel": 5,
    "sequence_dilations": [1, 2],
    "score_dilations": [1, 4],
    "trunk_dilations": [1],
    "dropout": 0.0,
}
TRAINING = {
    "epochs": 1,
    "chunks_per_epoch": 64,
    "validation_chunks": 32,
    "normalizer_chunks": 16,
    "warmup_steps": 2,
    "progress": True,
}
STEPS = ("train-canonical", "evaluate", "calibrate", "predict")
HELD_OUT = "LR999452.1"
THREADS = os.environ.get("OMP_NUM_THREADS", "1")  # the machine is shared: one thread unless told otherwise
# GRCh38 + GENCODE protein-coding genes (the figures); SpliceAI's grch38 table: 19,305 genes, 1.12 Gnt
HUMAN_NT, HUMAN_GENES = 1.3e9, 20_000
HUMAN_TEST, HUMAN_VALIDATION = 0.3185, 0.1 * (1 - 0.3185)  # SpliceAI's test chromosomes hold 31.85 % of the nt


# ---------------------------------------------------------------------------------------------
# folders
# ---------------------------------------------------------------------------------------------
def replicate(source: Path, out: Path, copies: int, x1: Path | None) -> Path:
    """``out``: ``source``'s genes ``copies`` times (new ids and contigs), files linked to ``source``/``x1``."""
    from meta_layer_cli.artifacts.arrays import ARRAYS_DIR, array_file_name
    from meta_layer_cli.artifacts.tracks import gene_track_path, read_manifest, write_manifest

    if (out / "manifest.json").is_file():
        return out
    manifest = read_manifest(source)
    (out / "genes").mkdir(parents=True, exist_ok=True)
    (out / ARRAYS_DIR).mkdir(exist_ok=True)
    planned = []
    for r in range(copies):
        for g in manifest["genes"]:
            gene_id = g["gene_id"] if r == 0 else f"{g['gene_id']}_r{r}"
            chrom = g["chrom"] if r == 0 else f"{g['chrom']}_r{r}"
            parquet = gene_track_path(out, gene_id)
            parquet.symlink_to((source / g["file"]).resolve())
            if x1 is not None:
                (out / ARRAYS_DIR / array_file_name(out, gene_id)).symlink_to(
                    (x1 / ARRAYS_DIR / array_file_name(x1, g["gene_id"])).resolve()
                )
            planned.append({**g, "gene_id": gene_id, "chrom": chrom, "file": parquet.relative_to(out).as_posix()})
    manifest["genes"] = planned
    write_manifest(out, manifest)
    return out


# ---------------------------------------------------------------------------------------------
# one step, in a child process
# ---------------------------------------------------------------------------------------------
def _status_mb() -> dict[str, float]:
    """``VmRSS`` and its parts ``RssAnon`` (the process's own memory) and ``RssFile`` (pages of mapped files, here
    the gene store's arrays: the kernel can drop them and read them again) from ``/proc/self/status``, in MB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmRSS", "RssAnon", "RssFile"):
            out[key] = int(line.split()[1]) / 1024
    return out


def _rss_mb() -> float:
    return _status_mb().get("VmRSS", float("nan"))


class PeakSampler:
    """Peaks of ``RssAnon`` and ``RssFile`` sampled every ``interval`` s in a thread (``ru_maxrss`` counts both
    together: it cannot tell the process's own memory from mapped file pages it touched).

    ``trace``: tracemalloc runs (Python objects and NumPy arrays; not torch's own allocator), and a snapshot is
    taken whenever the traced memory passes its last snapshot's by 3 %: :attr:`snapshot` is what was held near
    the step's peak, by source line."""

    def __init__(self, interval: float = 0.05, trace: bool = False):
        import threading

        self.interval, self.peaks = interval, {"RssAnon": 0.0, "RssFile": 0.0}
        self.trace, self.snapshot, self._snapshot_bytes = trace, None, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import tracemalloc

        while not self._stop.is_set():
            for key, value in _status_mb().items():
                if key in self.peaks:
                    self.peaks[key] = max(self.peaks[key], value)
            if self.trace:
                current = tracemalloc.get_traced_memory()[0]
                if current > 1.03 * self._snapshot_bytes:
                    self.snapshot, self._snapshot_bytes = tracemalloc.take_snapshot(), current
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        if self.trace:
            import tracemalloc

            tracemalloc.start()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def child(
    step: str, folder: Path, work: Path, model: str, structure: bool, profile: bool = False, trace: bool = False
) -> dict:
    """Run ``step`` and measure it; with ``profile`` the step runs under cProfile and ``WORK/STEP.profile.txt``
    gets its 40 costliest functions (by own time and by cumulative time); with ``trace`` ``WORK/STEP.trace.txt``
    gets the 30 source lines holding the most memory near the step's traced peak (:class:`PeakSampler`)."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile() if profile else None
    with PeakSampler(trace=trace) as sampler:
        if profiler is not None:
            profiler.enable()
        out = _child_step(step, folder, work, model, structure)
        if profiler is not None:
            profiler.disable()
    out["peak_anon_mb"], out["peak_file_mb"] = (round(sampler.peaks[k]) for k in ("RssAnon", "RssFile"))
    if profiler is not None:
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats(40)
        (work / f"{step.replace(' ', '-')}.profile.txt").write_text(text.getvalue())
    if sampler.snapshot is not None:
        import tracemalloc

        out["traced_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20)
        stats = sampler.snapshot.statistics("lineno")
        held = sum(s.size for s in stats)
        lines = [f"# {step}: {held / 2**20:,.1f} MB traced at the snapshot nearest the peak, by source line"]
        lines += [f"{s.size / 2**20:10.1f} MB {s.count:>10,} blocks  {s.traceback[0]}" for s in stats[:30]]
        (work / f"{step.replace(' ', '-')}.trace.txt").write_text("\n".join(lines) + "\n")
    return out


def _child_step(step: str, folder: Path, work: Path, model: str, structure: bool) -> dict:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    import torch  # noqa: F401  (imported before the baseline, as every step imports it)

    from meta_layer_cli.artifacts import load_gene_arrays, read_manifest
    from meta_layer_cli.jobs.calibrate import calibrate_checkpoint
    from meta_layer_cli.jobs.canonical import evaluate_checkpoint, run_canonical_training
    from meta_layer_cli.jobs.predict import predict_genes

    manifest = read_manifest(folder)
    held_out = sorted({c for c in manifest["genes"].column("chrom") if c.startswith(HELD_OUT)})
    gene_ids = manifest["genes"].column("gene_id") if step == "gene store" else []
    del manifest  # the step reads its own: a copy held here would be counted in every step's peak
    run = work / "run"
    checkpoint = run / "checkpoints" / "best"
    baseline = _rss_mb()
    started = time.perf_counter()
    out: dict = {}
    if step == "gene store":
        load_gene_arrays(folder, gene_ids)
    elif step == "train-canonical":
        overrides = {f"training.{k}": v for k, v in TRAINING.items()} | {
            "hardware.batch_size": 8,
            "structure": structure,
        }
        if model == "tiny":
            overrides |= {f"model.{k}": v for k, v in TINY_MODEL.items()}
        elif model == "base-only":
            overrides["model.correction"] = False
        result = run_canonical_training(
            data=str(folder), test_chroms=held_out, output_dir=run, device="cpu", overrides=overrides
        )
        out["timing"] = result.timing
        out["split"] = {k: len(v) for k, v in result.split.items()}
        out["pr_auc_error_bound"] = result.canonical_test_metrics.get("pr_auc_error_bound")
    elif step == "evaluate":
        meta, _ = evaluate_checkpoint(checkpoint, str(folder))
        out["n_genes"] = meta["n_genes"]
        out["pr_auc_error_bound"] = meta.get("pr_auc_error_bound")
    elif step == "calibrate":
        shutil.rmtree(work / "calibrated", ignore_errors=True)
        calibrate_checkpoint(checkpoint, work / "calibrated", data=str(folder), overwrite=True)
    elif step == "predict":
        table = work / "predict.parquet"
        predict_genes(checkpoint, table, data=str(folder))
        out["output_mb"] = round(table.stat().st_size / 2**20, 1)
        table.unlink()
    else:
        raise SystemExit(f"unknown step {step}")
    out.update(
        seconds=round(time.perf_counter() - started, 1),
        baseline_mb=round(baseline),
        peak_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    )
    return out


def rates(folder: Path) -> dict:
    """Meta-model inference rates (tiny and default model, untrained: speed does not depend on the weights), the
    decoder's, a training step of the default model on the CPU, and the memory of one 2.3-Mb gene (the longest
    human protein-coding gene, DMD) through the evaluation path."""
    import numpy as np
    import torch

    from meta_layer_cli.artifacts import load_gene_arrays, read_manifest
    from meta_layer_cli.artifacts.arrays import GeneArrays, in_memory
    from meta_layer_cli.evaluation.evaluator import gene_probabilities
    from meta_layer_cli.evaluation.streaming import CanonicalScores
    from meta_layer_cli.models import MetaModelConfig, build_meta_model
    from meta_layer_cli.models.apply import recalibrate_arrays
    from meta_layer_cli.models.structure import GeneStructureDecoder
    from meta_layer_cli.training import Trainer, TrainerConfig
    from meta_layer_cli.training.config import load_run_config

    torch.set_num_threads(int(THREADS))
    manifest = read_manifest(folder)
    channels, genes = load_gene_arrays(folder, [g["gene_id"] for g in manifest["genes"][:300]], [manifest])
    genes = [in_memory(g) for g in genes]
    nt = sum(len(g) for g in genes)
    out: dict = {"nt": nt}
    default = load_run_config(None).model.model_copy(update={"channels": channels})
    models = (
        ("base-only", MetaModelConfig(channels=channels, correction=False)),
        ("tiny", MetaModelConfig(channels=channels, **TINY_MODEL)),
        ("default", default),
    )
    for name, config in models:
        model = build_meta_model(config)
        recalibrate_arrays(model, genes[0].codes, genes[0].tracks)  # warm-up
        t = time.perf_counter()
        for g in genes:
            recalibrate_arrays(model, g.codes, g.tracks)
        out[f"meta_{name}_nt_per_s"] = round(nt / (time.perf_counter() - t))
    decoder = GeneStructureDecoder(1.0, 0.0, 1.0, 0.0, 3, 30, 3e-3, coding_reward=0.01)
    probs = [np.ascontiguousarray(g.tracks.T) for g in genes]
    t = time.perf_counter()
    for p, g in zip(probs, genes):
        decoder(p, g.codes)
    out["decoder_nt_per_s"] = round(nt / (time.perf_counter() - t))
    # training steps of the default model (batch 8 x 2,000 nt), after one warm-up epoch
    model = build_meta_model(default, seed=0)
    trainer = Trainer(
        TrainerConfig(
            epochs=1,
            chunks_per_epoch=8 * 10,
            validation_chunks=8,
            normalizer_chunks=8,
            batch_size=8,
            progress=False,
            device="cpu",
        )
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        state = trainer.fit(model, channels, genes[:250], genes[250:], Path(tmp))
        out["train_seconds_per_step_default"] = round((time.perf_counter() - t) / max(state.step, 1), 3)
    # the longest human gene: 2.3 Mb of real (concatenated) arenosa tracks through meta model, decoder, metrics
    longest = 2_304_640
    parts, total = [], 0
    for g in genes * 10:
        parts.append(g)
        total += len(g)
        if total >= longest:
            break
    gene = GeneArrays(
        "long",
        np.concatenate([g.codes for g in parts])[:longest],
        np.concatenate([g.tracks for g in parts], axis=1)[:, :longest].copy(),
        np.concatenate([g.labels for g in parts])[:longest],
    )
    before = _rss_mb()
    scores = CanonicalScores()
    tiny = build_meta_model(MetaModelConfig(channels=channels, **TINY_MODEL))
    peak = before
    for _, labels, sources in gene_probabilities(tiny, channels, [gene], structure=decoder):
        for p in sources.values():
            scores.add(p, labels)
        peak = max(peak, _rss_mb())
    out["longest_gene_rss_mb"] = round(peak - before)
    out["longest_gene_arrays_mb"] = round((gene.codes.nbytes + gene.tracks.nbytes + gene.labels.nbytes) / 2**20)
    return out


def run_child(args: list[str], log: Path, timeout: float) -> dict:
    load = os.getloadavg()[0]
    with open(log, "w") as fh:
        done = subprocess.run(
            [sys.executable, __file__, *args],
            stdout=subprocess.PIPE,
            stderr=fh,
            text=True,
            timeout=timeout,
            env={**os.environ, "OMP_NUM_THREADS": THREADS},
        )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}); see {log}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["load"] = f"{load:.1f}/{os.getloadavg()[0]:.1f}"
    return result


# ---------------------------------------------------------------------------------------------
# projection
# ---------------------------------------------------------------------------------------------
def project(results: dict, scale: int, nt: float, rate: dict, model: str, structure: bool) -> list[str]:
    """GRCh38 figures from the largest scale's measurements (see the printed notes)."""
    from meta_layer_cli.training.structure import DEFAULT_GRID, GRID_SAMPLE_NT

    factor = HUMAN_NT / nt
    measured = rate[f"meta_{model}_nt_per_s"]
    slow = 1 / rate["meta_default_nt_per_s"] - 1 / measured
    # the gene-structure decoder (on the CPU, also on a GPU machine), when the measured runs went without it:
    # once per nucleotide scored, and the grid search's decodes of its validation sample
    grid = len(list(itertools.product(*DEFAULT_GRID.values()))) * GRID_SAMPLE_NT
    decoded = {
        "train-canonical": HUMAN_TEST * HUMAN_NT + grid,
        "evaluate": HUMAN_TEST * HUMAN_NT,
        "calibrate": (HUMAN_TEST + HUMAN_VALIDATION) * HUMAN_NT,
        "predict": HUMAN_NT,
    }
    gpu_meta = 5.9e6  # measured on an H100 (RESULTS.md, recalibration overhead: 0.22 of SpliceAI's 1.31 Mnt/s)
    inferred = {
        "train-canonical": HUMAN_TEST + HUMAN_VALIDATION,
        "evaluate": HUMAN_TEST,
        "calibrate": HUMAN_TEST + HUMAN_VALIDATION,
        "predict": 1.0,
    }
    rows = []
    for step in STEPS:
        r = results[scale][step]
        seconds = r["seconds"] - (r.get("timing", {}).get("training_s", 0.0) if step == "train-canonical" else 0)
        decoder = 0.0 if structure else decoded[step] / rate["decoder_nt_per_s"]
        cpu = seconds * factor + inferred[step] * HUMAN_NT * slow + decoder
        gpu = seconds * factor - inferred[step] * HUMAN_NT / measured + inferred[step] * HUMAN_NT / gpu_meta + decoder
        memory = r["peak_mb"] + rate["longest_gene_rss_mb"]
        rows.append(
            f"| {step}{' (without its optimisation steps)' if step == 'train-canonical' else ''} | "
            f"{cpu / 3600:,.1f} h | {max(gpu, 0) / 3600:,.1f} h | {memory / 1024:.1f} GB |"
        )
    return rows


def _own(r: dict) -> str:
    """A step's own-memory peak: ``N`` for one run, ``N (min-max of K runs)`` for repeats."""
    runs = r.get("own_runs_mb", [r["peak_anon_mb"]])
    spread = f" ({min(runs):,}-{max(runs):,} in {len(runs)} runs)" if len(runs) > 1 else ""
    return f"{r['peak_anon_mb']:,}{spread}"


def growth_table(results: dict, sizes: dict, scales: list[int]) -> str:
    """Own memory (median run) from the smallest to the largest scale, per step: the growth, per 1,000 genes added,
    and the range of the repeated runs at either scale (growth within it is not measurable)."""
    low, high = min(scales), max(scales)
    added = sizes[high][0] - sizes[low][0]
    lines = [
        f"\nOwn memory from {low}x to {high}x ({added:,} genes added):\n",
        "| step | growth | per 1,000 genes | range of repeated runs at either scale |",
        "|---|---:|---:|---:|",
    ]
    for step in STEPS:
        a, b = results[low].get(step), results[high].get(step)
        if a is None or b is None or added <= 0:
            continue
        growth = b["peak_anon_mb"] - a["peak_anon_mb"]
        ranges = [max(r.get("own_runs_mb", [0])) - min(r.get("own_runs_mb", [0])) for r in (a, b)]
        spread = f"{max(ranges):,} MB" if len(a.get("own_runs_mb", [])) > 1 else "(one run: use --repeats)"
        lines.append(
            f"| {step} | {growth:+,} MB ({growth / a['peak_anon_mb']:+.0%}) | {growth * 1000 / added:+.2f} MB | "
            f"{spread} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=Path("/work/exp/arenosa/osai80"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/memory-scaling"))
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--model", choices=("base-only", "tiny", "default"), default="base-only")
    parser.add_argument(
        "--structure",
        action="store_true",
        help="fit and apply the gene-structure decoder (its grid search alone costs ~10 min a scale)",
    )
    parser.add_argument("--timeout", type=float, default=5400, help="seconds per step")
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs of every step at every scale (the median run is reported)"
    )
    parser.add_argument(
        "--steps",
        nargs="+",
        choices=STEPS,
        default=list(STEPS),
        help="steps to run at each scale (evaluate, calibrate and predict need train-canonical's checkpoint); "
        "the GRCh38 projection needs all four",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile each step: WORK/run-xN/STEP.profile.txt")
    parser.add_argument(
        "--trace",
        action="store_true",
        help="tracemalloc each step: what it held near its peak, by source line (WORK/run-xN/STEP.trace.txt); "
        "slower, and its peaks include tracemalloc's own tables",
    )
    parser.add_argument("--child", nargs=2, metavar=("STEP", "FOLDER"), help=argparse.SUPPRESS)
    parser.add_argument("--rates", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, folder = args.child
        print(json.dumps(child(step, Path(folder), args.work, args.model, args.structure, args.profile, args.trace)))
        return 0
    if args.rates:
        print(json.dumps(rates(args.rates)))
        return 0

    from meta_layer_cli.artifacts import read_manifest

    args.work.mkdir(parents=True, exist_ok=True)
    x1 = replicate(args.source, args.work / "x1", 1, None)
    results: dict = {}
    sizes = {}
    print(
        f"# memory scaling: {args.source} ({args.model} meta model, decoder {'on' if args.structure else 'off'}), "
        f"work in {args.work}",
        flush=True,
    )
    for scale in args.scales:
        folder = x1 if scale == 1 else replicate(args.source, args.work / f"x{scale}", scale, x1)
        planned = read_manifest(folder)["genes"]
        sizes[scale] = (len(planned), int(planned.frame["length"].sum()))
        work = args.work / f"run-x{scale}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        results[scale] = {}
        steps = (["gene store"] if scale == 1 else []) + list(args.steps)
        for step in steps:
            flags = ["--model", args.model] + (["--structure"] if args.structure else [])
            flags += (["--profile"] if args.profile else []) + (["--trace"] if args.trace else [])
            runs = [
                run_child(
                    ["--child", step, str(folder), "--work", str(work), *flags], work / f"{step}.log", args.timeout
                )
                for _ in range(max(args.repeats, 1))
            ]
            runs.sort(key=lambda run: run["peak_anon_mb"])
            r = {**runs[len(runs) // 2], "own_runs_mb": [run["peak_anon_mb"] for run in runs]}
            results[scale][step] = r
            print(
                f"x{scale} ({sizes[scale][0]:,} genes, {sizes[scale][1] / 1e6:.1f} Mnt) {step}: {json.dumps(r)}",
                flush=True,
            )
    if list(args.steps) != list(STEPS):  # the table of what ran; no projection
        for scale in args.scales:
            for step, r in results[scale].items():
                print(f"| x{scale} | {step} | {r['peak_mb']:,} MB | own {_own(r)} MB | {r['seconds']:,.0f} s |")
        if len(args.scales) > 1:
            print(growth_table(results, sizes, args.scales))
        return 0
    rate = run_child(["--rates", str(x1)], args.work / "rates.log", args.timeout)
    print(f"rates: {json.dumps(rate)}", flush=True)
    (args.work / "results.json").write_text(json.dumps({"results": results, "sizes": sizes, "rates": rate}, indent=1))

    print(
        "\n| step | "
        + " | ".join(f"{s}x: {sizes[s][0]:,} genes, {sizes[s][1] / 1e6:.0f} Mnt" for s in args.scales)
        + " |"
    )
    print("|---|" + "---:|" * len(args.scales))
    for step in ["gene store", *STEPS]:
        cells = []
        for s in args.scales:
            r = results[s].get(step)
            cells.append(
                ""
                if r is None
                else f"{r['peak_mb']:,} MB ({r['peak_mb'] - r['baseline_mb']:+,}; own {_own(r)}, "
                f"mapped files {r['peak_file_mb']:,}), {r['seconds']:,.0f} s, load {r['load']}"
            )
        print(f"| {step} | " + " | ".join(cells) + " |")
    print(growth_table(results, sizes, args.scales))
    top = max(args.scales)
    print(f"\nGRCh38 + GENCODE ({HUMAN_GENES:,} genes, {HUMAN_NT / 1e9:.1f} Gnt), projected from the {top}x run:\n")
    print("| step | 2 CPU cores | one GPU | memory |\n|---|---:|---:|---:|")
    for row in project(results, top, sizes[top][1], rate, args.model, args.structure):
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
