"""Peak memory of one very long gene through the whole predict path (target: 2.3 Mb in < 2 GB RSS).

Builds a 2.3-Mb gene from real demo sequence, predicts it with SpliceAI via
``predict_tracks`` (blocks, parquet writing) and prints the peak resident set
size of this process.

    python scripts/long_gene_memory.py [--nt 2300000] [--base-model spliceai] [--weights PATH]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

import numpy as np

from meta_layer_cli import load_base_model
from meta_layer_cli.artifacts import predict_tracks
from meta_layer_cli.io.demo import demo_gene_ids, demo_gene_length, load_demo_gene
from meta_layer_cli.io.genes import GeneSequence


def long_gene(n: int) -> GeneSequence:
    parts, labels, total = [], [], 0
    for g in sorted(demo_gene_ids(), key=demo_gene_length, reverse=True):
        gene = load_demo_gene(g)
        parts.append(gene.sequence)
        labels.append(gene.labels)
        total += len(gene.sequence)
        if total >= n:
            break
    return GeneSequence("long", "LONG", "", "+", "".join(parts)[:n], np.concatenate(labels)[:n])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nt", type=int, default=2_300_000)
    parser.add_argument("--base-model", default="spliceai")
    parser.add_argument("--weights", default=None)
    args = parser.parse_args()
    model = load_base_model(args.base_model, args.weights)
    gene = long_gene(args.nt)
    before = peak_rss_mb()
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        predict_tracks(model, [gene], out, progress=False)
    seconds = time.perf_counter() - t
    print(f"gene {len(gene.sequence):,} nt, {args.base_model}: {len(gene.sequence) / seconds:,.0f} nt/s")
    print(f"peak RSS before predicting: {before:,.0f} MB")
    print(f"peak RSS: {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
