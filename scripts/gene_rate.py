"""Meta-model time per gene on one device, and what rounding input lengths up (``meta_bucket``) does to it.

Every gene has its own length, and on a GPU each new input length may cost a first-time kernel choice; an
H200 ran the meta model at ~24 ms a gene whatever the gene's length (scripts/RESULTS.md). This times
``recalibrate_arrays`` (the network alone, as evaluate, calibrate and predict run it) over the same genes,
held in memory, with inputs as they are (bucket 0) and rounded up to ``--buckets`` nt, alternating the
settings in two rounds so that drift shows; then one gene over and over (one length: the launch-bound
floor), and a profile of the slowest setting's operators. Every setting must give the same probabilities
(checked and printed).

    python scripts/gene_rate.py --data prepared-80nt --checkpoint runs/x/checkpoints/best --device cuda
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from meta_layer_cli.artifacts.arrays import common_gene_ids, in_memory, load_gene_arrays
from meta_layer_cli.models.apply import model_margin, recalibrate_arrays
from meta_layer_cli.models.checkpoint import load_model
from meta_layer_cli.runtime.device import default_sizes, resolve_device


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run(model, genes, device, bucket: int) -> tuple[float, list[np.ndarray]]:
    sync(device)
    start = time.perf_counter()
    out = [recalibrate_arrays(model, g.codes, g.tracks, device=device, bucket=bucket) for g in genes]
    sync(device)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a prepared tracks folder")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--genes", type=int, default=300, help="the first N genes of the folder")
    parser.add_argument("--buckets", type=int, nargs="+", default=[8192, 32768])
    parser.add_argument("--profile", type=int, default=20, help="further genes profiled (0: no profile)")
    args = parser.parse_args()

    device = resolve_device(args.device)
    model, _ = load_model(args.checkpoint, device)
    ids = common_gene_ids([args.data])[: args.genes + args.profile]
    _, stored = load_gene_arrays(args.data, ids, progress=False)
    genes = [in_memory(g) for g in stored]
    genes, unseen = genes[: args.genes], genes[args.genes :]
    n = sum(len(g) for g in genes)
    margin = model_margin(model)
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine()
    print(
        f"{name}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads; {len(genes)} genes, {n:,} nt, "
        f"margin {margin}, block {default_sizes(device)['meta_block']:,}, default bucket "
        f"{default_sizes(device)['meta_bucket']}"
    )
    settings = [0, *args.buckets]
    for b in settings:
        lengths = {-(-(len(g) + 2 * margin) // b) * b if b else len(g) for g in genes}
        print(f"  bucket {b:>6}: {len(lengths)} distinct input lengths")

    times: dict[int, list[float]] = {b: [] for b in settings}
    outputs: dict[int, list[np.ndarray]] = {}
    for round_ in range(2):
        for b in settings if round_ == 0 else settings[::-1]:
            seconds, outputs[b] = run(model, genes, device, b)
            times[b].append(seconds)
            print(f"  round {round_ + 1}, bucket {b:>6}: {seconds:.2f} s, {1e3 * seconds / len(genes):.1f} ms/gene")
    print("| bucket | round 1 s | round 2 s | ms/gene (round 2) | nt/s (round 2) | max abs diff vs 0 |")
    print("|---:|---:|---:|---:|---:|---:|")
    for b in settings:
        diff = max(float(np.abs(a - c).max()) for a, c in zip(outputs[0], outputs[b]))
        t1, t2 = times[b]
        print(f"| {b} | {t1:.2f} | {t2:.2f} | {1e3 * t2 / len(genes):.1f} | {n / t2:,.0f} | {diff:.1e} |")
    fastest = min(settings[1:], key=lambda b: times[b][1])
    print(f"ratio, bucket 0 / bucket {fastest} (round 2): {times[0][1] / times[fastest][1]:.2f}")

    one = [genes[0]] * len(genes)  # one length over and over: what a forward costs once its kernels are chosen
    run(model, one[:3], device, 0)
    seconds, _ = run(model, one, device, 0)
    print(f"one gene ({len(genes[0]):,} nt) {len(one)} times: {1e3 * seconds / len(one):.1f} ms/gene")

    if unseen:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=activities) as prof:  # genes not run before: new lengths at bucket 0
            seconds, _ = run(model, unseen, device, 0)
        key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        print(f"profile of {len(unseen)} genes not run before, bucket 0, {seconds:.2f} s, by {key}:")
        print(prof.key_averages().table(sort_by=key, row_limit=12, max_name_column_width=48))


if __name__ == "__main__":
    main()
