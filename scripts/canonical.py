"""The meta-layer against its base model on held-out demo genes (issue: the canonical bar).

Runs, with base-model tracks cached in ``--cache`` (predicted on first use):

1. SpliceAI base, default config, all demo genes, split by gene (seed 0);
2. OpenSpliceAI 80 nt (a weak base model), same split;
3. SpliceAI + Pangolin tracks stacked as one input, on a subset of genes
   (Pangolin's 12 networks cost ~3x SpliceAI per nucleotide);
4. (``--only stacked_osai``) SpliceAI + OpenSpliceAI 10000 nt stacked, all genes.

A rerun into the same ``--out`` trains again (tracks stay cached).

For each it prints base vs meta metrics on the same positions, training time,
and the bar: macro PR-AUC and mean top-k above the base model, FP+FN at the
F1-optimal threshold (chosen on validation genes) cut by >= 30 %, and for
OpenSpliceAI 80 nt a top-k lift >= 0.15. It also measures the recalibration
overhead: meta-layer seconds per nucleotide as a fraction of SpliceAI's, on
the same held-out genes.

    python scripts/canonical.py --shared ../shared --cache ~/.cache/metalayer --out runs/bench
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from meta_layer_cli.commands.common import configure_logging
from meta_layer_cli.evaluation.report import ROWS, format_metric
from meta_layer_cli.jobs.canonical import builtin_config, run_canonical_training
from meta_layer_cli.runtime.config import parse_overrides


def verdict(name: str, meta: dict, base: dict, weak: bool) -> list[str]:
    errors_base = base["fp_at_f1opt"] + base["fn_at_f1opt"]
    errors_meta = meta["fp_at_f1opt"] + meta["fn_at_f1opt"]
    cut = 1 - errors_meta / max(errors_base, 1)
    lift = meta["topk_mean"] - base["topk_mean"]
    lines = [
        f"{name}: macro PR-AUC {base['pr_auc_macro']:.4f} -> {meta['pr_auc_macro']:.4f} "
        f"({'PASS' if meta['pr_auc_macro'] > base['pr_auc_macro'] else 'FAIL'})",
        f"{name}: mean top-k {base['topk_mean']:.4f} -> {meta['topk_mean']:.4f} (lift {lift:+.4f}; "
        + (f"{'PASS' if lift >= 0.15 else 'FAIL'} vs >= 0.15)" if weak else f"{'PASS' if lift > 0 else 'FAIL'})"),
        f"{name}: FP+FN at F1-opt {errors_base} -> {errors_meta} (cut {cut:.1%}; "
        f"{'PASS' if cut >= 0.30 else 'FAIL'} vs >= 30 %)",
    ]
    return lines


def table(rows: dict[str, tuple[dict, ...]]) -> str:
    """Columns per run: base, meta model alone (if reported), meta model + gene-structure decoder."""
    names = []
    for n, (_, _, per_nt) in rows.items():
        names += [f"{n} base"] + ([f"{n} meta per-nt"] if per_nt else []) + [f"{n} meta"]
    head = "| metric | " + " | ".join(names) + " |"
    sep = "|---" * (1 + len(names)) + "|"
    body = []
    for k in ROWS:
        cells = []
        for meta, base, per_nt in rows.values():
            cells += [base[k]] + ([per_nt[k]] if per_nt else []) + [meta[k]]
        body.append(f"| {k} | " + " | ".join(format_metric(k, v) for v in cells) + " |")
    return "\n".join([head, sep, *body])


def overhead(result, device: str, cache: str | None) -> float:
    """Meta-layer seconds per nt (model + gene-structure decoder) / SpliceAI seconds per nt, on the run's
    held-out genes."""
    from meta_layer_cli.artifacts import load_gene_arrays
    from meta_layer_cli.base_models import load_base_model
    from meta_layer_cli.io.demo import load_demo_gene
    from meta_layer_cli.jobs.canonical import checkpoint_data
    from meta_layer_cli.models.apply import recalibrate_arrays
    from meta_layer_cli.models.checkpoint import load_model
    from meta_layer_cli.models.structure import structure_from_config

    model, config = load_model(result.checkpoint_path, device)
    structure = structure_from_config(config)
    dirs, _ = checkpoint_data(result.checkpoint_path, None, device, cache=cache)
    ids = result.split["test"][:20]
    _, genes = load_gene_arrays(dirs, ids)
    base = load_base_model("spliceai", device=device)
    demo = [load_demo_gene(g) for g in ids]
    base.predict_genes(demo[:1])
    t = time.perf_counter()
    base.predict_genes(demo)
    t_base = time.perf_counter() - t
    t = time.perf_counter()
    for g in genes:
        recalibrate_arrays(model, g.codes, g.tracks, device=device, structure=structure)
    t_meta = time.perf_counter() - t
    return t_meta / t_base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default="../shared", type=Path)
    parser.add_argument("--cache", default=None)
    parser.add_argument("--out", default="runs/bench", type=Path)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--stack-genes", type=int, default=150, help="genes for the stacked SpliceAI+Pangolin run")
    parser.add_argument("--only", nargs="*", default=["spliceai", "osai80", "stacked"])
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any config key, e.g. --set model.sequence_dilations=[1,2,4,8,16,32,64,128]",
    )
    args = parser.parse_args()
    configure_logging()  # progress and epoch lines on stderr, as the command line prints them
    overrides = {"training.progress": True, **parse_overrides(args.overrides)}
    common = {"tracks_cache": args.cache, "device": args.device, "overrides": overrides}
    if args.epochs:
        common["overrides"]["training.epochs"] = args.epochs
    runs = {
        "spliceai": dict(base_model="spliceai"),
        "osai80": dict(base_model="openspliceai", base_weights=str(args.shared / "models/openspliceai-mane/80nt")),
        "stacked": dict(
            base_model=["spliceai", "pangolin"],
            base_weights=[None, str(args.shared / "models/pangolin")],
            max_genes=args.stack_genes,
        ),
        # all genes: both models' tracks are cheap to reuse from the baselines' cache
        "stacked_osai": dict(
            base_model=["spliceai", "openspliceai"],
            base_weights=[None, str(args.shared / "models/openspliceai-mane/10000nt")],
        ),
    }
    rows, lines, timing = {}, [], {}
    for name in args.only:
        t = time.perf_counter()
        result = run_canonical_training(
            config=builtin_config("default"), output_dir=str(args.out / name), **runs[name], **common
        )
        timing[name] = {
            **result.timing,
            "total_s": round(time.perf_counter() - t, 1),
            "genes": {k: len(v) for k, v in result.split.items()},
        }
        rows[name] = (
            result.canonical_test_metrics,
            result.base_test_metrics,
            result.extra_test_metrics.get("meta_per_nucleotide"),
        )
        lines += verdict(name, result.canonical_test_metrics, result.base_test_metrics, weak=name == "osai80")
        if name == "spliceai":
            timing[name]["recalibration_overhead"] = round(overhead(result, args.device, args.cache), 4)
    print(table(rows))
    print()
    print("\n".join(lines))
    print(json.dumps(timing, indent=2))


if __name__ == "__main__":
    main()
