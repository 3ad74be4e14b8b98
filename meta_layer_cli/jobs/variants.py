"""Variant-model training on measured splicing effects: exon-grouped cross-validation, then a final model.

:func:`run_validated_delta_training` is the job behind ``metalayer train-variants``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from meta_layer_cli.evaluation.variant_metrics import base_delta_metrics, classifier_metrics, regression_metrics
from meta_layer_cli.features.variants import DEFAULT_THRESHOLDS, TARGET_KINDS, VariantDataset
from meta_layer_cli.io.atomic import write_json_atomic
from meta_layer_cli.models.calibration import IsotonicCalibrator, TemperatureScaler, calibration_to_json
from meta_layer_cli.models.variant import VariantModel, calibrated_predictions, predict_variants
from meta_layer_cli.training.variant_config import DataSpec, VariantRunConfig, load_variant_config

CHECKPOINT = "checkpoint"


@dataclass
class VariantTrainingResult:
    """What :func:`run_validated_delta_training` returns (all of it is also in ``metrics.json``).

    ``cv_metrics`` / ``base_metrics``: per data set (``source``), the trained model's
    out-of-fold metrics and the raw base-model deltas' metrics on the same rows
    (every candidate column and ``best``, see
    :func:`meta_layer_cli.evaluation.variant_metrics.base_delta_metrics`);
    ``evaluation_metrics``: per extra evaluation set (trained on the training sets only),
    ``{"model": ..., "base": ...}``.
    """

    checkpoint_path: Path
    output_dir: Path
    model: str
    base_model: str
    cv_metrics: dict[str, dict]
    base_metrics: dict[str, dict]
    evaluation_metrics: dict[str, dict]
    folds: list[dict]
    timing: dict
    predictions: pl.DataFrame = field(repr=False)

    def summary(self) -> str:
        """A printable table: per data set, the trained model vs the best raw base-model delta."""
        head = f"{'set':<18} {'rows':>6}  {'predictor':<38} {'Pearson':>8} {'Spearman':>8} {'AUROC':>7} {'AUPRC':>7}"
        lines = [head, "-" * len(head)]

        def row(name: str, n: int, label: str, m: dict) -> str:
            def f(key: str) -> str:
                v = m.get(key, m.get(f"{key}_abs"))
                return f"{v:8.3f}" if isinstance(v, float) and math.isfinite(v) else f"{'-':>8}"

            return (f"{name:<18} {n:>6}  {label:<38} {f('pearson')} {f('spearman')} {f('auroc')[1:]:>7} "
                    f"{f('auprc')[1:]:>7}")  # fmt: skip

        def base_label(base: dict) -> tuple[str, dict]:
            best = base["best"]
            sign = "-" if base[best]["sign"] < 0 else ""
            return f"{self.base_model} raw: {sign}{best}", base[best]

        for source, metrics in self.cv_metrics.items():
            lines.append(row(source, metrics["n"], f"{self.model} (exon-grouped CV)", metrics))
            label, m = base_label(self.base_metrics[source])
            lines.append(row(source, m["n"], label, m))
        for source, both in self.evaluation_metrics.items():
            lines.append(row(source, both["model"]["n"], f"{self.model} (trained on the others)", both["model"]))
            label, m = base_label(both["base"])
            lines.append(row(source, m["n"], label, m))
        thresholds = {k: v["threshold"] for k, v in self.cv_metrics.items()}
        lines.append(f"AUROC/AUPRC: |target| >= threshold per set {thresholds}; classifier correlations use |target|")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
def resolve_variant_config(
    config: str | os.PathLike | dict | VariantRunConfig | None = None, **options: object
) -> VariantRunConfig:
    """A :class:`VariantRunConfig` from a config (path, dict or object) plus keyword options.

    Options are top-level keys (``folds=3``), keys of the ``architecture`` or ``training``
    sections given bare (``width=16``, ``lr=1e-3``, ``epochs=5``), or dotted / double-underscore
    keys (``training__lr=1e-3``). None leaves the config's value. Unknown keys are errors.
    """
    from meta_layer_cli.models.variant import VariantArchitecture
    from meta_layer_cli.training.variant_config import VariantTrainingSection

    dotted: dict = {}
    for key, value in options.items():
        if value is None:
            continue
        if "__" in key or "." in key:
            dotted[key.replace("__", ".")] = value
        elif key in VariantRunConfig.model_fields:
            dotted[key] = value
        elif key in VariantArchitecture.model_fields:
            dotted[f"architecture.{key}"] = value
        elif key in VariantTrainingSection.model_fields:
            dotted[f"training.{key}"] = value
        else:
            raise ValueError(f"unknown option {key!r} (not a key of the train-variants config)")
    return load_variant_config(config, dotted)


def _groups_by_source(dataset: VariantDataset) -> dict[str, np.ndarray]:
    """Row indices per evaluation set: the source, split by target kind if a source mixes kinds."""
    out: dict[str, np.ndarray] = {}
    for source in dict.fromkeys(dataset.sources.tolist()):
        rows = np.flatnonzero(dataset.sources == source)
        kinds = np.unique(dataset.kind[rows])
        if len(kinds) == 1:
            out[str(source)] = rows
        else:
            for k in kinds:
                out[f"{source}/{TARGET_KINDS[int(k)]}"] = rows[dataset.kind[rows] == k]
    return out


def _threshold(dataset: VariantDataset, rows: np.ndarray, thresholds: dict) -> float:
    kind = TARGET_KINDS[int(np.bincount(dataset.kind[rows]).argmax())]
    return float(thresholds[kind])


def _fit_calibration(model: VariantModel, preds: dict, dataset: VariantDataset, thresholds: dict) -> dict:
    """Post-hoc calibrators fitted on validation predictions (the config's ``calibration``)."""
    name = model.config.calibration
    out: dict = {}
    if name == "isotonic" and "delta" in preds:
        out["isotonic"] = {}
        for k in np.unique(dataset.kind):
            rows = (dataset.kind == k) & np.isfinite(dataset.target)
            if rows.sum() >= 2:
                out["isotonic"][TARGET_KINDS[int(k)]] = IsotonicCalibrator().fit(preds["delta"][rows],
                                                                                 dataset.target[rows])  # fmt: skip
    if name == "temperature":
        labels = dataset.labels(thresholds)
        if "logit" in preds:
            out["temperature"] = TemperatureScaler().fit(preds["logit"], labels)
        if "effect_logits" in preds:
            out["effect_temperature"] = TemperatureScaler().fit(preds["effect_logits"], dataset.effect)
    return out


def _metrics_for(scored: dict, dataset: VariantDataset, rows: np.ndarray, threshold: float) -> dict:
    if "delta" in scored:
        return regression_metrics(scored["delta"][rows], dataset.target[rows], threshold)
    return classifier_metrics(scored["probability"][rows], dataset.target[rows], threshold)


def _base_for(dataset: VariantDataset, rows: np.ndarray, threshold: float) -> dict:
    return base_delta_metrics({k: v[rows] for k, v in dataset.base_deltas.items()}, dataset.target[rows], threshold)


def _train_one(cfg: VariantRunConfig, dataset: VariantDataset, rows: np.ndarray, seed: int):
    """A model trained on ``rows`` (whole exons held out of them for early stopping), with its calibration."""
    from meta_layer_cli.models.variant import build_variant_model
    from meta_layer_cli.training.splits import grouped_holdout
    from meta_layer_cli.training.variant_trainer import VariantTrainer, VariantTrainerConfig

    thresholds = {**DEFAULT_THRESHOLDS, **cfg.thresholds}
    part = dataset.subset(rows)
    fit_rows, val_rows = grouped_holdout(part.groups, cfg.validation, seed)
    train_part, val_part = part.subset(fit_rows), part.subset(val_rows)
    trainer_config = VariantTrainerConfig(**cfg.training.model_dump(), thresholds=thresholds, seed=seed,
                                          device=cfg.device)  # fmt: skip
    import torch

    torch.manual_seed(seed)
    model = build_variant_model(cfg.model, cfg.model_config_for(dataset.channels))
    state = VariantTrainer(trainer_config).fit(model, train_part, val_part)
    val_preds = predict_variants(model, val_part, device=cfg.device)
    calibration = _fit_calibration(model, val_preds, val_part, thresholds)
    info = {"train_rows": len(fit_rows), "validation_rows": len(val_rows),
            "train_groups": int(len(np.unique(train_part.groups.astype(str)))),
            "validation_groups": int(len(np.unique(val_part.groups.astype(str)))), **state}  # fmt: skip
    return model, calibration, info


def run_validated_delta_training(
    base_model: str | None = None,
    train: Sequence[pl.DataFrame | DataSpec | dict] | None = None,
    model: str | None = None,
    output_dir: str | os.PathLike | None = None,
    folds: int | None = None,
    epochs: int | None = None,
    weights: str | None = None,
    device: str | None = None,
    evaluate: Sequence[pl.DataFrame | DataSpec | dict] | None = None,
    config: str | os.PathLike | dict | VariantRunConfig | None = None,
    **options,
) -> VariantTrainingResult:
    """Train a variant model on measured effects with exon-grouped cross-validation; save a final model.

    Parameters (None: the config's value, else the default shown)
    ----------
    base_model : ``spliceai`` (default), ``openspliceai``, ``pangolin``; ``weights`` its weights.
    train : loader tables (:mod:`meta_layer_cli.io.assays`) and/or config entries
        (``{"loader": "vexseq", "path": ...}``); rows without a measured target are dropped.
    model : a name of :data:`meta_layer_cli.models.variant.VARIANT_MODELS`; default ``site_logit``.
    output_dir : default ``runs/variants``; gets ``metrics.json``, ``cv_predictions.parquet``
        and ``checkpoint/`` (``model.safetensors`` + ``config.json``).
    folds : exon-grouped folds (default 5): every exon (``group``) is entirely in train or test.
    epochs : maximum epochs per model (default 60; early stopping on held-out training exons).
    evaluate : extra sets scored by the final model only (e.g. the WT1 saturation mutagenesis).
    config / options : a ``train-variants`` config and any of its keys (see
        :func:`resolve_variant_config`), e.g. ``width=16, lr=3e-3, cache="~/.cache/metalayer/pred"``.

    Per fold: a model is trained on the other folds' exons (a ``validation`` fraction of
    those exons held out for early stopping and calibration) and predicts the fold's
    exons. Reported per data set, on the same rows: the trained model's out-of-fold
    Pearson / Spearman with the measured target and AUROC / AUPRC for ``|target| >=
    threshold`` (delta PSI 20 %, |log2 ratio| 1 by default), and the same for the raw
    base-model deltas (best column, sign-adjusted; see ``base_delta_metrics``). The final
    model is trained on all exons (same hold-out rule). For delta predictors the
    checkpoint also stores ``p_splice_altering``: per target kind, an isotonic map from
    |predicted delta| to the fraction of splice-altering variants, fitted on the
    out-of-fold predictions.
    """
    import torch

    from meta_layer_cli.base_models import load_base_model
    from meta_layer_cli.features.variants import build_variant_dataset
    from meta_layer_cli.models.variant import save_variant_model
    from meta_layer_cli.training.splits import grouped_kfold

    frames_given = [t for t in (train or []) if isinstance(t, pl.DataFrame)]
    eval_frames = [t for t in (evaluate or []) if isinstance(t, pl.DataFrame)]

    def specs(items):  # given items replace the config's list; tables travel outside the config
        if items is None:
            return None
        return [s.model_dump() if isinstance(s, DataSpec) else s for s in items if not isinstance(s, pl.DataFrame)]

    cfg = resolve_variant_config(
        config, base_model=base_model, model=model, output_dir=str(output_dir) if output_dir is not None else None,
        folds=folds, epochs=epochs, base_weights=weights, device=device, train=specs(train),
        evaluate=specs(evaluate), **options,
    )  # fmt: skip
    thresholds = {**DEFAULT_THRESHOLDS, **cfg.thresholds}
    out = Path(cfg.output_dir)
    timing: dict[str, float] = {}
    started = time.perf_counter()
    train_frames = frames_given + [s.load() for s in cfg.train]
    if not train_frames:
        raise ValueError("no training data: give train=[tables] or config entries under train:")
    evaluate_frames = eval_frames + [s.load() for s in cfg.evaluate]
    timing["load_s"] = round(time.perf_counter() - started, 2)

    started = time.perf_counter()
    base = load_base_model(cfg.base_model, weights=cfg.base_weights, device=cfg.device)
    cache = os.path.expanduser(cfg.cache) if cfg.cache else None
    build = dict(window=cfg.window, cache=cache, delta_window=cfg.delta_window, thresholds=thresholds)
    full = build_variant_dataset(train_frames, base, **build)
    dataset = full.subset(np.isfinite(full.target))
    extra = [build_variant_dataset(f, base, **build) for f in evaluate_frames]
    timing["base_tracks_s"] = round(time.perf_counter() - started, 2)
    if len(dataset) == 0:
        raise ValueError("no training rows with a measured target")

    started = time.perf_counter()
    splits = grouped_kfold(dataset.groups, cfg.folds, cfg.seed)
    oof: dict[str, np.ndarray] = {}
    fold_of = np.full(len(dataset), -1, dtype=np.int64)
    fold_info = []
    for f, (train_rows, test_rows) in enumerate(splits):
        torch.manual_seed(cfg.seed + f)
        net, calibration, info = _train_one(cfg, dataset, train_rows, cfg.seed + 1000 * (f + 1))
        test = dataset.subset(test_rows)
        scored = calibrated_predictions(net, predict_variants(net, test, device=cfg.device), calibration, test)
        for key, values in scored.items():
            if key not in oof:
                oof[key] = np.full((len(dataset),) + values.shape[1:], np.nan)
            oof[key][test_rows] = values
        fold_of[test_rows] = f
        info.update(fold=f, test_rows=len(test_rows), test_groups=int(len(np.unique(test.groups.astype(str)))))
        fold_info.append(info)
        if cfg.training.progress:
            print(f"fold {f + 1}/{len(splits)}: {len(train_rows)} training rows, best epoch {info.get('best_epoch')}, "
                  f"{time.perf_counter() - started:.0f} s so far", flush=True)  # fmt: skip
    timing["cross_validation_s"] = round(time.perf_counter() - started, 2)

    cv_metrics, base_metrics = {}, {}
    for name, rows in _groups_by_source(dataset).items():
        thr = _threshold(dataset, rows, thresholds)
        cv_metrics[name] = _metrics_for(oof, dataset, rows, thr)
        base_metrics[name] = _base_for(dataset, rows, thr)

    # p_splice_altering for delta predictors: |predicted delta| -> P(|target| >= threshold), out of fold
    p_map: dict[str, dict] = {}
    if "delta" in oof:
        labels = dataset.labels(thresholds)
        for k in np.unique(dataset.kind):
            rows = dataset.kind == k
            if rows.sum() >= 2:
                fitted = IsotonicCalibrator().fit(np.abs(oof["delta"][rows]), labels[rows])
                p_map[TARGET_KINDS[int(k)]] = fitted.to_dict()

    started = time.perf_counter()
    final, calibration, final_info = _train_one(cfg, dataset, np.arange(len(dataset)), cfg.seed)
    timing["final_model_s"] = round(time.perf_counter() - started, 2)
    evaluation_metrics: dict[str, dict] = {}
    for ds in extra:
        scored = calibrated_predictions(final, predict_variants(final, ds, device=cfg.device), calibration, ds)
        for name, rows in _groups_by_source(ds).items():
            rows = rows[np.isfinite(ds.target[rows])]
            thr = _threshold(ds, rows, thresholds)
            evaluation_metrics[name] = {"model": _metrics_for(scored, ds, rows, thr), "base": _base_for(ds, rows, thr)}

    data_info = {name: {"rows": int(len(rows)), "exons": int(len(np.unique(dataset.groups[rows].astype(str))))}
                 for name, rows in _groups_by_source(dataset).items()}  # fmt: skip
    run_info = {
        "base_model": dataset.base_model.to_dict(),  # BaseModelRecord: name, checksum, context, channels, hint
        "window": cfg.window,
        "delta_window": cfg.delta_window,
        "thresholds": thresholds,
        "data": data_info,
        "config": cfg.model_dump(),
    }
    checkpoint = out / CHECKPOINT
    save_variant_model(
        checkpoint, final,
        {"run": run_info, "calibration": calibration_to_json(calibration), "p_splice_altering": p_map,
         "training": json_safe({k: v for k, v in final_info.items() if k != "history"}),
         "cv_metrics": json_safe(cv_metrics)},
    )  # fmt: skip

    predictions = pl.DataFrame(
        {
            "id": dataset.ids.tolist(),
            "source": dataset.sources.tolist(),
            "group": dataset.groups.tolist(),
            "target_kind": dataset.kind_names.tolist(),
            "fold": fold_of,
            "target": dataset.target,
            **{f"predicted_{k}" if k in ("delta", "probability") else k: v for k, v in oof.items() if v.ndim == 1},
            **{f"base_{k}": v for k, v in dataset.base_deltas.items()},
        }  # fmt: skip
    )
    out.mkdir(parents=True, exist_ok=True)
    from meta_layer_cli.io.tables import write_table

    write_table(predictions, out / "cv_predictions.parquet")
    result = VariantTrainingResult(
        checkpoint_path=checkpoint, output_dir=out, model=cfg.model, base_model=cfg.base_model,
        cv_metrics=cv_metrics, base_metrics=base_metrics, evaluation_metrics=evaluation_metrics,
        folds=fold_info, timing=timing, predictions=predictions,
    )  # fmt: skip
    write_json_atomic(
        out / "metrics.json",
        json_safe(
        {"model": cfg.model, "base_model": run_info["base_model"], "cv": cv_metrics, "base": base_metrics,
         "evaluation": evaluation_metrics, "folds": fold_info, "final_model": final_info, "timing": timing,
         "data": data_info, "thresholds": thresholds, "config": cfg.model_dump(),
         "notes": {"base": "raw base-model deltas; best column and its sign chosen on the evaluated rows",
                   "splits": "exon-grouped: every group (exon) entirely in train or test"}}),
    )  # fmt: skip
    return result


def json_safe(obj: object) -> object:
    """NaN / infinity -> None, numpy scalars -> Python numbers, recursively (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
