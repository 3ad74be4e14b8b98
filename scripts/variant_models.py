"""Variant models vs raw base-model deltas on measured splicing changes (issue 4: the bar).

For each base model (default: SpliceAI and Pangolin) and each variant model (default: the
three delta predictors and two classifiers), runs
:func:`meta_layer_cli.jobs.variants.run_validated_delta_training` on Vex-seq (CAGI5 train
file) + MaPSy with exon-grouped K-fold cross-validation, and scores the WT1 exon 5
saturation mutagenesis with the final model (trained on Vex-seq + MaPSy only). Prints,
per data set, Pearson and Spearman with the measured target and AUROC / AUPRC for
``|delta PSI| >= 20`` (Vex-seq) and ``|log2 ratio| >= 1`` (MaPSy, WT1) of

(a) the raw base-model deltas (best of ``delta_acceptor``, ``delta_donor``, their sum,
    ``max_abs_delta`` and its signed form; sign-adjusted; chosen on the evaluated rows,
    which flatters the base model), and
(b) every trained model (out-of-fold predictions; classifiers: probability, AUROC /
    AUPRC only -- their correlations are with |target|), and
(c) with ``site_logit``: the same model untrained (its starting point: the base model's
    acceptor + donor log-odds change through the reference PSI, nothing fitted), on the
    same cross-validation rows -- what training adds to the link.

and the bar: the best trained model must beat the best raw base-model delta on Vex-seq
and reach Pearson >= 0.68 on held-out Vex-seq exons.

    python scripts/variant_models.py --out runs/variant_bench      # full: hours of CPU, see below
    python scripts/variant_models.py --max-rows 60 --folds 2 --epochs 1 --base-model openspliceai80 \\
        --models validated --out /tmp/vbench          # quick check

Cost on 2 CPU cores (estimates from small timed samples, not a full run): base-model
tracks once per base model, cached in ``OUT/cache`` (Vex-seq + MaPSy + WT1, ~11,500 rows):
SpliceAI ~1 h, Pangolin ~2.5 h. Training ~10 ms per row and epoch (width 32, L = 320,
one thread): ~3,700 training rows per fold x ~30 epochs (early stopping, patience 8) x
(5 folds + final model) ~ 1.5-2 h per (base model, variant model); the default 2 x 5 runs
~ 15-20 h in all. ``--models validated,delta`` cuts that to ~7-10 h; ``--device cuda``
to well under an hour.

Base models: ``spliceai`` (weights in the ``spliceai`` package), ``pangolin``,
``openspliceai80`` / ``openspliceai400`` / ``openspliceai2000`` / ``openspliceai10000``
(OpenSpliceAI MANE weights under ``--shared``), or ``NAME=WEIGHTS``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch

from meta_layer_cli.io.json_values import json_safe
from meta_layer_cli.jobs.variants import run_validated_delta_training
from meta_layer_cli.runtime.config import parse_overrides

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("METALAYER_SHARED", REPO.parent / "shared"))
MODELS = ("site_logit", "validated", "simple_cnn", "delta", "splice_inducing", "unified")
BAR_PEARSON = 0.68


def base_model_spec(name: str, shared: Path) -> tuple[str, str, str | None]:
    """(label, registry name, weights) for a command-line base-model name."""
    if "=" in name:
        label, weights = name.split("=", 1)
        registry = "openspliceai" if label.startswith("openspliceai") else label
        return label, registry, weights
    if name == "spliceai":
        return name, "spliceai", None
    if name == "pangolin":
        return name, "pangolin", str(shared / "models" / "pangolin")
    if name.startswith("openspliceai"):
        flank = name.removeprefix("openspliceai") or "10000"
        return name, "openspliceai", str(shared / "models" / "openspliceai-mane" / f"{flank}nt")
    raise SystemExit(f"unknown base model {name!r}")


def fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) and math.isfinite(value) else "-"


def table(rows: list[dict]) -> str:
    head = "| base model | predictor | set | rows | Pearson | Spearman | AUROC | AUPRC |"
    lines = [head, "|---" * 8 + "|"]
    for r in rows:
        m = r["metrics"]
        pearson = m.get("pearson", m.get("pearson_abs"))
        spearman = m.get("spearman", m.get("spearman_abs"))
        suffix = " (abs)" if "pearson_abs" in m else ""
        lines.append(
            f"| {r['base']} | {r['predictor']} | {r['set']} | {m['n']} | {fmt(pearson)}{suffix} | "
            f"{fmt(spearman)}{suffix} | {fmt(m['auroc'])} | {fmt(m['auprc'])} |"
        )
    return "\n".join(lines)


def untrained_site_logit(registry: str, weights: str | None, cache: str, run_dir: Path, train: list[dict]) -> dict:
    """Metrics per data set of an untrained ``site_logit`` on the rows of ``run_dir``'s out-of-fold predictions."""
    import polars as pl

    from meta_layer_cli.evaluation.variant_metrics import regression_metrics
    from meta_layer_cli.features.variants import DEFAULT_THRESHOLDS, build_variant_dataset
    from meta_layer_cli.models.variant import build_variant_model, predict_variants
    from meta_layer_cli.training.variant_config import DataSpec

    cv = pl.read_parquet(run_dir / "cv_predictions.parquet")
    out = {}
    for spec in train:
        table = DataSpec(**spec).load()
        table = table.filter(pl.col("id").is_in(cv.filter(pl.col("source") == spec["loader"])["id"].implode()))
        table = table.filter(pl.col("target").is_not_null())
        ds = build_variant_dataset(table, registry, weights=weights, cache=cache)
        model = build_variant_model("site_logit", {"channels": ds.channels})
        delta = predict_variants(model, ds)["delta"]
        kind = table["target_kind"][0]
        out[spec["loader"]] = regression_metrics(delta, ds.target, DEFAULT_THRESHOLDS[kind])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=SHARED)
    ap.add_argument("--base-model", action="append", default=None, help="repeatable (default: spliceai, pangolin)")
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--max-rows", type=int, default=None, help="per data set, a seeded sample (quick checks)")
    ap.add_argument("--mapsy-rows", type=int, default=None, help="MaPSy rows (a seeded sample; default: --max-rows)")
    ap.add_argument("--wt1-rows", type=int, default=None, help="WT1 rows scored (default: all, or --max-rows)")
    ap.add_argument("--cache", default=None, help="base-model prediction cache (default: OUT/cache, reused by reruns)")
    ap.add_argument("--out", type=Path, default=Path("runs/variant_bench"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="any train-delta key, e.g. --set architecture.width=48 --set training.lr=3e-3",
    )
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    # per-epoch and per-fold lines: a run cut short still tells something
    overrides = {"training__progress": True}
    overrides |= {key.replace(".", "__"): value for key, value in parse_overrides(a.overrides).items()}
    variants = a.shared / "data" / "variants"
    mapsy_rows = a.mapsy_rows or a.max_rows
    train = [
        {"loader": "vexseq", "path": str(variants / "vexseq_hepg2_train.csv"), "max_rows": a.max_rows},
        {"loader": "mapsy", "path": str(variants / "mapsy.csv"), "max_rows": mapsy_rows},
    ]
    evaluate = [{"loader": "wt1_saturation", "max_rows": a.wt1_rows or a.max_rows}]
    models = [m.strip() for m in a.models.split(",") if m.strip()]
    cache = a.cache or str(a.out / "cache")  # base tracks once per base model, shared by all its runs
    rows: list[dict] = []
    results: dict = {"runs": {}, "args": {k: str(v) for k, v in vars(a).items()}}
    started = time.perf_counter()
    for spec in a.base_model or ["spliceai", "pangolin"]:
        label, registry, weights = base_model_spec(spec, a.shared)
        base_done = False
        for name in models:
            t0 = time.perf_counter()
            r = run_validated_delta_training(
                base_model=registry,
                weights=weights,
                train=train,
                evaluate=evaluate,
                model=name,
                output_dir=a.out / label / name,
                folds=a.folds,
                epochs=a.epochs,
                device=a.device,
                cache=cache,
                **overrides,
            )
            seconds = time.perf_counter() - t0
            print(f"\n== {label} / {name} ({seconds:.0f} s)\n{r.summary()}", flush=True)
            results["runs"][f"{label}/{name}"] = {
                "cv": r.cv_metrics,
                "base": r.base_metrics,
                "evaluation": r.evaluation_metrics,
                "timing": r.timing,
                "seconds": seconds,
            }
            if not base_done:
                for source, base in r.base_metrics.items():
                    best = base["best"]
                    sign = "-" if base[best]["sign"] < 0 else ""
                    rows.append({"base": label, "predictor": f"raw {sign}{best}", "set": source, "metrics": base[best]})
                for source, both in r.evaluation_metrics.items():
                    best = both["base"]["best"]
                    sign = "-" if both["base"][best]["sign"] < 0 else ""
                    rows.append(
                        {"base": label, "predictor": f"raw {sign}{best}", "set": source, "metrics": both["base"][best]}
                    )
                base_done = True
            for source, m in r.cv_metrics.items():
                rows.append({"base": label, "predictor": f"{name} (CV)", "set": source, "metrics": m})
            if name == "site_logit":
                untrained = untrained_site_logit(registry, weights, cache, a.out / label / name, train)
                results["runs"][f"{label}/site_logit_untrained"] = untrained
                for source, m in untrained.items():
                    rows.append(
                        {"base": label, "predictor": "site_logit untrained (no fit)", "set": source, "metrics": m}
                    )
            for source, both in r.evaluation_metrics.items():
                rows.append(
                    {"base": label, "predictor": f"{name} (trained on others)", "set": source, "metrics": both["model"]}
                )
    results["seconds"] = time.perf_counter() - started

    vex = [r for r in rows if r["set"] == "vexseq" and "pearson" in r["metrics"]]
    raw = [r for r in vex if r["predictor"].startswith("raw")]
    trained = [r for r in vex if not r["predictor"].startswith("raw") and "untrained" not in r["predictor"]]
    untrained = [r for r in vex if "untrained" in r["predictor"]]
    lines = [table(rows), ""]
    if raw and trained:
        best_raw = max(raw, key=lambda r: r["metrics"]["pearson"])
        best = max(trained, key=lambda r: r["metrics"]["pearson"])
        p_raw, p_best = best_raw["metrics"]["pearson"], best["metrics"]["pearson"]
        lines += [
            f"best raw base-model delta on Vex-seq: {best_raw['base']} {best_raw['predictor']} Pearson {fmt(p_raw)}",
            f"best trained model on Vex-seq (held-out exons): {best['base']} {best['predictor']} Pearson {fmt(p_best)}",
            f"bar: beats the best raw delta: {'PASS' if p_best > p_raw else 'FAIL'}; "
            f"Pearson >= {BAR_PEARSON}: {'PASS' if p_best >= BAR_PEARSON else 'FAIL'}",
        ]
        for r in untrained:
            lines.append(
                f"{r['base']} {r['predictor']} on Vex-seq: Pearson {fmt(r['metrics']['pearson'])} "
                "(the trained model's starting point)"
            )
        results["bar"] = {
            "best_raw": best_raw,
            "best_trained": best,
            "beats_raw": p_best > p_raw,
            "pearson_at_least": p_best >= BAR_PEARSON,
        }
    report = "\n".join(lines)
    print("\n" + report)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "results.md").write_text(report + "\n")
    (a.out / "results.json").write_text(json.dumps(json_safe(results), indent=2) + "\n")
    print(f"\nwrote {a.out / 'results.md'} and results.json ({results['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
