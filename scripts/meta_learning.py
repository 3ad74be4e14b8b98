"""Does the meta-layer network learn? Network alone vs base model vs network + decoder on held-out genes
(issue 21), with a quality-versus-training-time curve from the same run.

Trains the shipped default config (``configs/default.yaml``) on a prepared folder with a wall-clock
budget, holding out one chromosome, and prints on the held-out genes, same positions:

- the base model, the network alone (``meta_per_nucleotide``: before the gene-structure decoder) and
  the whole meta-layer (network + decoder): PR-AUC, mean top-k, FP+FN at the F1-optimal threshold
  (chosen on validation genes);
- the verdicts against the issue's targets (network alone >= base + ``--alone-lift``; whole meta-layer
  PR-AUC >= ``--whole-pr-auc`` and mean top-k >= ``--whole-topk``);
- the curve: validation PR-AUC of the network alone after each epoch against the training minutes
  spent (validation genes are held out from training; the test genes are touched once, at the end).
  Snapshots of one budgeted run: a run given a shorter budget ends its learning-rate schedule decayed
  and should do at least as well at that point.

Prepare the data first (2.3 min on 2 idle cores for OpenSpliceAI 80 nt on the two arenosa chromosomes)::

    metalayer prepare --fasta ../shared/data/genomes/arabidopsis_arenosa/AARE701a_chr1_chr2.fna.gz \\
        --gtf ../shared/data/genomes/arabidopsis_arenosa/AARE701a_chr1_chr2.gtf.gz \\
        -b openspliceai --weights ../shared/models/openspliceai-mane/80nt --out runs/arenosa-osai80
    python scripts/meta_learning.py --data runs/arenosa-osai80 --test-chroms LR999452.1 \\
        --minutes 30 --out runs/meta-learning

Time is wall-clock on whatever else the machine runs: run it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from meta_layer_cli.commands.common import configure_logging
from meta_layer_cli.evaluation.report import ROWS, format_metric
from meta_layer_cli.jobs.canonical import builtin_config, run_canonical_training
from meta_layer_cli.runtime.config import parse_overrides


def errors(m: dict) -> int:
    return int(m["fp_at_f1opt"] + m["fn_at_f1opt"])


def curve(history: list[dict], marks: list[float]) -> list[dict]:
    """Per epoch: training minutes so far, steps, validation PR-AUC of the network alone (and the base
    model's on the same chunks); plus the first epoch reached at or after each of ``marks`` minutes."""
    rows, spent = [], 0.0
    for h in history:
        spent += h["seconds"]
        rows.append(
            {
                "minutes": round(spent / 60, 2),
                "step": h.get("step"),
                "epoch": h["epoch"],
                "val_pr_auc_macro": h["val_pr_auc_macro"],
                "val_base_pr_auc_macro": h.get("val_base_pr_auc_macro"),
            }
        )
    picked = []
    end = rows[-1]["minutes"] if rows else 0.0
    for mark in marks:
        before = [r for r in rows if r["minutes"] <= mark]
        if before and mark <= end + 1:  # a mark past the run's end is not a point of this run
            picked.append({"budget_min": mark, **before[-1]})
    return picked or rows[-1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="prepared folder (metalayer prepare)")
    parser.add_argument(
        "--test-chroms", default=None, help="held-out contig(s), comma-separated (or --set split.method=gene)"
    )
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget (training.max_minutes)")
    parser.add_argument("--marks", default="5,10,20,30,40", help="minutes at which to read the curve")
    parser.add_argument("--out", default="runs/meta-learning", type=Path)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--alone-lift", type=float, default=0.15)
    parser.add_argument("--whole-pr-auc", type=float, default=0.95)
    parser.add_argument("--whole-topk", type=float, default=0.90)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any config key, e.g. --set model.dropout=0.1",
    )
    args = parser.parse_args()
    configure_logging()
    overrides = {"training.progress": True, **parse_overrides(args.overrides)}
    started = time.perf_counter()
    test_chroms = args.test_chroms.split(",") if args.test_chroms else None
    result = run_canonical_training(
        config=builtin_config("default"),
        data=str(args.data),
        output_dir=str(args.out),
        test_chroms=test_chroms,
        max_minutes=args.minutes,
        device=args.device,
        overrides=overrides,
    )
    total = time.perf_counter() - started
    base, whole = result.base_test_metrics, result.canonical_test_metrics
    alone = result.extra_test_metrics.get("meta_per_nucleotide")
    columns = {"base": base, "network alone": alone, "network + decoder": whole}
    print("| metric | " + " | ".join(columns) + " |")
    print("|---" * (1 + len(columns)) + "|")
    for k in ROWS:
        print(f"| {k} | " + " | ".join(format_metric(k, c[k]) if c else "-" for c in columns.values()) + " |")
    lift = alone["pr_auc_macro"] - base["pr_auc_macro"] if alone else float("nan")
    verdicts = [
        f"network alone PR-AUC {base['pr_auc_macro']:.4f} -> {alone['pr_auc_macro']:.4f} (lift {lift:+.4f}; "
        f"{'PASS' if lift >= args.alone_lift else 'FAIL'} vs >= +{args.alone_lift})"
        if alone
        else "network alone: not reported (FAIL)",
        f"network alone FP+FN at F1-opt {errors(base)} -> {errors(alone)}" if alone else "",
        f"network + decoder PR-AUC {whole['pr_auc_macro']:.4f} "
        f"({'PASS' if whole['pr_auc_macro'] >= args.whole_pr_auc else 'FAIL'} vs >= {args.whole_pr_auc})",
        f"network + decoder mean top-k {whole['topk_mean']:.4f} "
        f"({'PASS' if whole['topk_mean'] >= args.whole_topk else 'FAIL'} vs >= {args.whole_topk})",
    ]
    print()
    print("\n".join(v for v in verdicts if v))
    marks = [float(m) for m in args.marks.split(",") if m]
    points = curve(result.history, marks)
    print("\nquality vs training time (validation genes, network alone; one run, snapshots after each epoch):")
    for p in points:
        print(
            f"  <= {p.get('budget_min', p['minutes']):g} min: epoch {p['epoch']} step {p['step']} "
            f"({p['minutes']:.1f} min) val PR-AUC {p['val_pr_auc_macro']:.4f} "
            f"(base {p['val_base_pr_auc_macro'] or float('nan'):.4f})"
        )
    summary = {
        "data": str(args.data),
        "test_chroms": args.test_chroms,
        "budget_min": args.minutes,
        "genes": {k: len(v) for k, v in result.split.items()},
        "base": base,
        "network_alone": alone,
        "network_and_decoder": whole,
        "curve": points,
        "history": result.history,
        "timing": result.timing,
        "total_s": round(total, 1),
        "cpu_count": os.cpu_count(),
        "overrides": overrides,
    }
    (args.out / "meta_learning.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps({"timing": result.timing, "total_s": round(total, 1)}, indent=2))


if __name__ == "__main__":
    main()
