"""Recalibration overhead: meta-layer time per nucleotide as a fraction of SpliceAI's (issue target <= 0.20).

On the same held-out demo genes (the first 20 test genes of the default seed-0 split, as in
``canonical.py``): SpliceAI's five-model ensemble predicts the genes, then the default-config
meta model (untrained: speed does not depend on the weights) recalibrates them block by block,
with and without the gene-structure decoder, for each ``--blocks`` size. Prints each time as a
fraction of SpliceAI's and checks that every block size gives the same probabilities.

    python scripts/recalibration_overhead.py                  # 2-core CPU
    python scripts/recalibration_overhead.py --device cuda --blocks 20000 200000 1000000
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from meta_layer_cli.base_models import load_base_model
from meta_layer_cli.io.demo import demo_gene_ids, load_demo_gene
from meta_layer_cli.io.sequence import sequence_to_codes
from meta_layer_cli.jobs.canonical import builtin_config
from meta_layer_cli.models import build_meta_model
from meta_layer_cli.models.apply import recalibrate_arrays
from meta_layer_cli.models.structure import GeneStructureDecoder
from meta_layer_cli.training import load_run_config, split_genes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--genes", type=int, default=20)
    parser.add_argument("--config", default="default", help="built-in config whose model is timed")
    parser.add_argument("--blocks", type=int, nargs="+", default=[20_000, 200_000])
    args = parser.parse_args()

    ids = split_genes(demo_gene_ids(), seed=0).test[: args.genes]
    genes = [load_demo_gene(g) for g in ids]
    base = load_base_model("spliceai", device=args.device)
    base.predict_genes(genes[:1])  # warm-up (cuDNN / oneDNN kernel choice)
    t = time.perf_counter()
    tracks = base.predict_genes(genes)
    t_base = time.perf_counter() - t
    n = sum(len(g.sequence) for g in genes)
    codes = [sequence_to_codes(g.sequence) for g in genes]
    model_config = load_run_config(builtin_config(args.config)).model
    torch.manual_seed(0)
    model = build_meta_model(model_config.model_copy(update={"channels": list(base.channels)})).to(args.device)
    # the decoder as fitted for SpliceAI (scripts/RESULTS.md), open reading frames included
    decoder = GeneStructureDecoder(0.75, 1.0, 0.75, 1.0, 3, 30, 3e-3, coding_reward=0.02)
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, device {args.device}, "
        f"{torch.get_num_threads()} threads; {len(genes)} genes, {n:,} nt"
    )
    print(f"SpliceAI: {t_base:.2f} s ({n / t_base:,.0f} nt/s)")
    print("| block | meta s | meta / SpliceAI | meta + decoder / SpliceAI |\n|---:|---:|---:|---:|")
    reference = None
    for block in args.blocks:
        recalibrate_arrays(model, codes[0], tracks[0].T, block=block, device=args.device)  # warm-up
        t = time.perf_counter()
        probs = [recalibrate_arrays(model, c, s.T, block=block, device=args.device) for c, s in zip(codes, tracks)]
        t_meta = time.perf_counter() - t
        t = time.perf_counter()
        for p, c in zip(probs, codes):
            decoder(p, c)
        t_decoder = time.perf_counter() - t
        print(f"| {block:,} | {t_meta:.2f} | {t_meta / t_base:.3f} | {(t_meta + t_decoder) / t_base:.3f} |")
        if reference is None:
            reference = probs
        else:
            diff = max(float(np.abs(a - b).max()) for a, b in zip(reference, probs))
            print(f"  max |diff| vs block {args.blocks[0]:,}: {diff:.1e}")


if __name__ == "__main__":
    main()
