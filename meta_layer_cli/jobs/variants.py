"""Variant models on measured splicing effects: training, evaluation and calibration of a checkpoint.

* :func:`run_validated_delta_training` (``metalayer train-delta``): exon-grouped cross-validation,
  then a final model, in a run folder guarded by :class:`~meta_layer_cli.jobs.run_folder.RunFolder`
  (lock, ``--resume``, ``--overwrite``, ``--if-changed``);
* :func:`evaluate_variant_checkpoint` (``metalayer evaluate --checkpoint DELTA --variants TABLE``): a
  checkpoint's metrics on a measured table of exons it never saw, beside the raw base-model deltas;
* :func:`calibrate_variant_checkpoint` (``metalayer calibrate --checkpoint DELTA --variants TABLE``):
  an isotonic map or a split-conformal interval fitted on such a table, written as a new checkpoint.

A checkpoint records the base model (:class:`~meta_layer_cli.base_models.record.BaseModelRecord`,
found again by :meth:`~meta_layer_cli.base_models.record.BaseModelRecord.load`) and the exon groups
it was trained on (``run.training_groups``) and calibrated on (``run.calibration_groups``): the
exons whose rows are refused as "held-out" data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from meta_layer_cli.evaluation.variant_metrics import base_delta_metrics, classifier_metrics, regression_metrics
from meta_layer_cli.features.variants import DEFAULT_THRESHOLDS, TARGET_KINDS, VariantDataset
from meta_layer_cli.io.atomic import atomic_path, refuse_overwriting_inputs, write_json_atomic
from meta_layer_cli.jobs.run_folder import RunFolder, run_outputs
from meta_layer_cli.models.calibration import IsotonicCalibrator, TemperatureScaler, calibration_to_json
from meta_layer_cli.models.variant import VariantModel, calibrated_predictions, predict_variants
from meta_layer_cli.runtime.config import HardwareSection
from meta_layer_cli.runtime.errors import InputDataError, UsageError
from meta_layer_cli.runtime.fingerprint import CHECKSUM_DIGITS, value_checksum
from meta_layer_cli.training.variant_config import DataSpec, VariantRunConfig, load_variant_config

CHECKPOINT = "checkpoint"
FOLDS = "cv_folds"  # one file per finished cross-validation fold: what --resume continues from
logger = logging.getLogger(__name__)


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
        rows = []
        for source, metrics in self.cv_metrics.items():
            rows.append((source, f"{self.model} (exon-grouped CV)", metrics, self.base_metrics[source]))
        for source, both in self.evaluation_metrics.items():
            rows.append((source, f"{self.model} (trained on the others)", both["model"], both["base"]))
        return metrics_table(rows, self.base_model, {k: v["threshold"] for k, v in self.cv_metrics.items()})


def metrics_table(rows: list[tuple[str, str, dict, dict]], base_model: str, thresholds: dict) -> str:
    """``rows`` of (set, predictor label, model metrics, :func:`base_delta_metrics`) as a text table: each set's
    model line, then its best raw base-model delta on the same rows."""
    head = f"{'set':<18} {'rows':>6}  {'predictor':<38} {'Pearson':>8} {'Spearman':>8} {'AUROC':>7} {'AUPRC':>7}"
    lines = [head, "-" * len(head)]

    def row(name: str, n: int, label: str, m: dict) -> str:
        def f(key: str) -> str:
            v = m.get(key, m.get(f"{key}_abs"))
            return f"{v:8.3f}" if isinstance(v, float) and math.isfinite(v) else f"{'-':>8}"

        return (f"{name:<18} {n:>6}  {label:<38} {f('pearson')} {f('spearman')} {f('auroc')[1:]:>7} "
                f"{f('auprc')[1:]:>7}")  # fmt: skip

    for name, label, metrics, base in rows:
        lines.append(row(name, metrics["n"], label, metrics))
        best = base["best"]
        sign = "-" if base[best]["sign"] < 0 else ""
        lines.append(row(name, base[best]["n"], f"{base_model} raw: {sign}{best}", base[best]))
    lines.append(f"AUROC/AUPRC: |target| >= threshold per set {thresholds}; classifier correlations use |target|")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
def resolve_variant_config(
    config: str | os.PathLike | dict | VariantRunConfig | None = None,
    profile: str | os.PathLike | None = None,
    **options: object,
) -> VariantRunConfig:
    """A :class:`VariantRunConfig` from a config (path, dict or object), a hardware ``profile`` (``cpu``, ``m1``,
    ``gpu`` or a YAML file) and keyword options.

    Options are top-level keys (``folds=3``), keys of the ``architecture``, ``training`` or ``hardware``
    sections given bare (``width=16``, ``lr=1e-3``, ``epochs=5``, ``device="cuda"``, ``batch_size=16``), or
    dotted / double-underscore keys (``training__lr=1e-3``). None leaves the config's value. Unknown keys
    are errors.
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
        elif key in HardwareSection.model_fields:
            dotted[f"hardware.{key}"] = value
        else:
            raise UsageError(f"unknown option {key!r} (not a key of the train-delta config)")
    return load_variant_config(config, dotted, profile)


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


def _train_one(cfg: VariantRunConfig, dataset: VariantDataset, rows: np.ndarray, seed: int, device: str):
    """A model trained on ``rows`` (whole exons held out of them for early stopping), with its calibration."""
    from meta_layer_cli.models.variant import build_variant_model
    from meta_layer_cli.training.splits import grouped_holdout
    from meta_layer_cli.training.variant_trainer import VariantTrainer, VariantTrainerConfig

    thresholds = {**DEFAULT_THRESHOLDS, **cfg.thresholds}
    part = dataset.subset(rows)
    fit_rows, val_rows = grouped_holdout(part.groups, cfg.validation, seed)
    train_part, val_part = part.subset(fit_rows), part.subset(val_rows)
    trainer_config = VariantTrainerConfig(**cfg.training.model_dump(), thresholds=thresholds, seed=seed,
                                          batch_size=cfg.hardware.batch_size, device=device)  # fmt: skip
    import torch

    torch.manual_seed(seed)
    model = build_variant_model(cfg.model, cfg.model_config_for(dataset.channels))
    state = VariantTrainer(trainer_config).fit(model, train_part, val_part)
    val_preds = predict_variants(model, val_part, device=device)
    calibration = _fit_calibration(model, val_preds, val_part, thresholds)
    info = {"train_rows": len(fit_rows), "validation_rows": len(val_rows),
            "train_groups": int(len(np.unique(train_part.groups.astype(str)))),
            "validation_groups": int(len(np.unique(val_part.groups.astype(str)))), **state}  # fmt: skip
    return model, calibration, info


def table_checksum(frame: pl.DataFrame) -> str:
    """SHA-256 of a table's content (its CSV text: columns, order and values), first 16 hex digits."""
    return hashlib.sha256(frame.write_csv().encode()).hexdigest()[:CHECKSUM_DIGITS]


def delta_fingerprint(cfg: VariantRunConfig, train: Sequence[pl.DataFrame], evaluate: Sequence[pl.DataFrame],
                      base) -> dict:  # fmt: skip
    """What decides whether a finished ``train-delta`` run is up to date: the base model's weights, the
    checksums of the data tables as loaded, and every setting but ``hardware`` and where things are
    (output folder, cache, weights and data paths: their contents are already fingerprinted)."""
    settings = cfg.model_dump(exclude={"hardware", "output_dir", "cache", "base_weights"})
    settings["training"].pop("progress", None)
    for key in ("train", "evaluate"):
        settings[key] = [{k: v for k, v in spec.items() if k not in ("path", "fasta", "annotation")}
                         for spec in settings[key]]  # fmt: skip
    return {
        "base model": f"{base.name} {base.weights_checksum}",
        "training tables": [table_checksum(f) for f in train],
        "evaluation tables": [table_checksum(f) for f in evaluate],
        "config": value_checksum(settings),
    }


def _save_fold(out: Path, fold: int, test_rows: np.ndarray, scored: dict, info: dict) -> None:
    """One finished fold's out-of-fold predictions and info, written atomically (``--resume`` reads them)."""
    arrays = {"test_rows": np.asarray(test_rows), **{f"oof_{k}": np.asarray(v) for k, v in scored.items()}}
    with atomic_path(out / FOLDS / f"fold{fold}.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, info=np.array(json.dumps(json_safe(info))), **arrays)


def _load_fold(out: Path, fold: int, test_rows: np.ndarray) -> tuple[dict, dict] | None:
    """(scored, info) of a fold an interrupted run finished, if it holds exactly these test rows."""
    path = out / FOLDS / f"fold{fold}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            if not np.array_equal(saved["test_rows"], test_rows):
                return None
            scored = {k[4:]: saved[k] for k in saved.files if k.startswith("oof_")}
            info = json.loads(str(saved["info"]))
    except (OSError, ValueError, KeyError):
        return None
    return scored, info


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
    *,
    profile: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = True,
    if_changed: bool = False,
    **options,
) -> VariantTrainingResult:
    """Train a variant model on measured effects with exon-grouped cross-validation; save a final model.

    Parameters (None: the config's value, else the default shown)
    ----------
    base_model : ``spliceai`` (default), ``openspliceai``, ``pangolin``; ``weights`` its weights.
    train : loader tables (:mod:`meta_layer_cli.io.assays`) and/or config entries
        (``{"loader": "vexseq", "path": ...}``); rows without a measured target are dropped.
    model : a name of :data:`meta_layer_cli.models.variant.VARIANT_MODELS`; default ``site_logit``.
    output_dir : default ``runs/variants``; gets ``metrics.json``, ``cv_predictions.parquet``,
        ``checkpoint/`` (``model.safetensors`` + ``config.json``), ``train.log`` and ``run.json``.
    folds : exon-grouped folds (default 5): every exon (``group``) is entirely in train or test.
    epochs : maximum epochs per model (default 60; early stopping on held-out training exons).
    device : ``auto`` (default), ``cpu``, ``cuda[:N]``, ``mps``: the ``hardware`` section's device, as are
        ``batch_size``, ``dtype`` and ``threads`` among the options; ``profile`` a hardware profile.
    evaluate : extra sets scored by the final model only (e.g. the WT1 saturation mutagenesis).
    config / options : a ``train-delta`` config and any of its keys (see
        :func:`resolve_variant_config`), e.g. ``width=16, lr=3e-3, cache="~/.cache/metalayer/pred"``.
    resume / overwrite / if_changed : what to do with a folder that already holds a run
        (:class:`~meta_layer_cli.jobs.run_folder.RunFolder`; the library default ``overwrite=True``
        trains again, the command line refuses unless told). ``resume`` continues an interrupted run
        from its last finished cross-validation fold (``cv_folds/``; the base-model tracks are
        predicted again unless ``cache`` holds them, the final model is trained again); a resumed
        run gives the numbers an uninterrupted one would. ``if_changed`` raises
        :class:`~meta_layer_cli.runtime.errors.UpToDate` (exit 5) when the finished run was made
        from the same data tables, base model and config (hardware aside).

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
    from meta_layer_cli.base_models import load_base_model
    from meta_layer_cli.runtime.device import resolve_device, set_threads

    frames_given = [t for t in (train or []) if isinstance(t, pl.DataFrame)]
    eval_frames = [t for t in (evaluate or []) if isinstance(t, pl.DataFrame)]

    def specs(items):  # given items replace the config's list; tables travel outside the config
        if items is None:
            return None
        return [s.model_dump() if isinstance(s, DataSpec) else s for s in items if not isinstance(s, pl.DataFrame)]

    cfg = resolve_variant_config(
        config, profile, base_model=base_model, model=model,
        output_dir=str(output_dir) if output_dir is not None else None, folds=folds, epochs=epochs,
        base_weights=weights, device=device, train=specs(train), evaluate=specs(evaluate), **options,
    )  # fmt: skip
    set_threads(cfg.hardware.threads)
    device = str(resolve_device(cfg.hardware.device))
    out = Path(cfg.output_dir)
    refuse_overwriting_inputs(
        {"--out": run_outputs(out)},
        {"--config": config if isinstance(config, (str, os.PathLike)) else None, "--weights": cfg.base_weights,
         "train data": [p for s in cfg.train for p in s.input_paths()],
         "evaluate data": [p for s in cfg.evaluate for p in s.input_paths()]},
    )  # fmt: skip
    timing: dict[str, float] = {}
    started = time.perf_counter()
    train_frames = frames_given + [s.load() for s in cfg.train]
    if not train_frames:
        raise UsageError("no training data: give train=[tables] or config entries under train:")
    evaluate_frames = eval_frames + [s.load() for s in cfg.evaluate]
    base = load_base_model(cfg.base_model, weights=cfg.base_weights, device=device, dtype=cfg.hardware.dtype)
    timing["load_s"] = round(time.perf_counter() - started, 2)
    fingerprint = delta_fingerprint(cfg, train_frames, evaluate_frames, base)
    with RunFolder(out, fingerprint, "delta", resume, overwrite, if_changed) as folder:
        result = _train_in_folder(cfg, folder, base, train_frames, evaluate_frames, device, timing)
        folder.finish({name: m.get("pearson", m.get("pearson_abs")) for name, m in result.cv_metrics.items()})
    return result


def _train_in_folder(cfg: VariantRunConfig, folder: RunFolder, base, train_frames: list[pl.DataFrame],
                     evaluate_frames: list[pl.DataFrame], device: str, timing: dict):  # fmt: skip
    import torch

    from meta_layer_cli.features.variants import build_variant_dataset
    from meta_layer_cli.models.variant import save_variant_model
    from meta_layer_cli.training.splits import grouped_kfold

    out = folder.out
    thresholds = {**DEFAULT_THRESHOLDS, **cfg.thresholds}
    started = time.perf_counter()
    cache = os.path.expanduser(cfg.cache) if cfg.cache else None
    build = dict(window=cfg.window, cache=cache, delta_window=cfg.delta_window, thresholds=thresholds)
    full = build_variant_dataset(train_frames, base, **build)
    dataset = full.subset(np.isfinite(full.target))
    extra = [build_variant_dataset(f, base, **build) for f in evaluate_frames]
    timing["base_tracks_s"] = round(time.perf_counter() - started, 2)
    if len(dataset) == 0:
        raise InputDataError("no training rows with a measured target")

    started = time.perf_counter()
    splits = grouped_kfold(dataset.groups, cfg.folds, cfg.seed)
    oof: dict[str, np.ndarray] = {}
    fold_of = np.full(len(dataset), -1, dtype=np.int64)
    fold_info = []
    for f, (train_rows, test_rows) in enumerate(splits):
        saved = _load_fold(out, f, test_rows) if folder.resuming else None
        if saved is not None:
            scored, info = saved
            logger.info(f"fold {f + 1}/{len(splits)}: finished by the interrupted run, not trained again")
        else:
            torch.manual_seed(cfg.seed + f)
            net, calibration, info = _train_one(cfg, dataset, train_rows, cfg.seed + 1000 * (f + 1), device)
            test = dataset.subset(test_rows)
            scored = calibrated_predictions(net, predict_variants(net, test, device=device), calibration, test)
            info.update(fold=f, test_rows=len(test_rows), test_groups=int(len(np.unique(test.groups.astype(str)))))
            _save_fold(out, f, test_rows, scored, info)
            logger.info(f"fold {f + 1}/{len(splits)}: {len(train_rows)} training rows, best epoch "
                       f"{info.get('best_epoch')}, {time.perf_counter() - started:.0f} s so far")  # fmt: skip
        for key, values in scored.items():
            if key not in oof:
                oof[key] = np.full((len(dataset),) + values.shape[1:], np.nan)
            oof[key][test_rows] = values
        fold_of[test_rows] = f
        fold_info.append(info)
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
    final, calibration, final_info = _train_one(cfg, dataset, np.arange(len(dataset)), cfg.seed, device)
    timing["final_model_s"] = round(time.perf_counter() - started, 2)
    evaluation_metrics: dict[str, dict] = {}
    for ds in extra:
        scored = calibrated_predictions(final, predict_variants(final, ds, device=device), calibration, ds)
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
        # every exon the final model trained on (or early-stopped on): evaluate / calibrate refuse their rows
        "training_groups": sorted(set(dataset.groups.astype(str).tolist())),
        "config": cfg.model_dump(exclude={"hardware", "output_dir", "cache"}),
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


# ---------------------------------------------------------------------------------------------
# a checkpoint on a measured table: evaluation, calibration
# ---------------------------------------------------------------------------------------------
def read_measured_table(table) -> pl.DataFrame:
    """A measured variant table: a DataFrame, a config entry (``{"loader": "vexseq", "path": ...}``), or a
    CSV / TSV / parquet file with the loaders' columns (:mod:`meta_layer_cli.io.assays`; ``target`` and
    ``group`` needed). Vex-seq and MaPSy files as published are recognised by their columns and loaded
    with their loaders."""
    from meta_layer_cli.io.assays import load_mapsy, load_vexseq
    from meta_layer_cli.io.tables import read_table

    if isinstance(table, pl.DataFrame):
        frame = table
    elif isinstance(table, (dict, DataSpec)):
        frame = (table if isinstance(table, DataSpec) else DataSpec(**table)).load()
    else:
        frame = read_table(table)
        if "target" not in frame.columns and {"REF_SEQ", "ALT_SEQ", "HepG2_delta_psi"} <= set(frame.columns):
            frame = load_vexseq(table)
        elif "target" not in frame.columns and {"WT_SEQ", "MUT_SEQ"} <= set(frame.columns):
            frame = load_mapsy(table)
    missing = [c for c in ("target", "group") if c not in frame.columns]
    if missing:
        raise InputDataError(f"the variant table has no {' or '.join(missing)} column: a measured table needs the "
                             "measured effect (target, target_kind) and the exon of each row (group)")  # fmt: skip
    return frame


def _checkpoint_rows(predictor, table, device: str, weights=None, models_dir=None, cache=None):
    """(the table's rows with a measured target as a dataset for the checkpoint, its base model)."""
    from meta_layer_cli.features.variants import build_variant_dataset

    frame = read_measured_table(table)
    base = predictor.record.load(device=device, weights=weights, models_dir=models_dir)
    run = predictor.run
    thresholds = {**DEFAULT_THRESHOLDS, **(run.get("thresholds") or {})}
    ds = build_variant_dataset(frame, base, window=predictor.window, cache=cache,
                               delta_window=run.get("delta_window", 50), thresholds=thresholds)  # fmt: skip
    ds = ds.subset(np.isfinite(ds.target))
    if len(ds) == 0:
        raise InputDataError("the variant table has no row with a measured target")
    return ds, thresholds


def _seen_rows(predictor, ds: VariantDataset) -> tuple[np.ndarray, str]:
    """Rows of exons the checkpoint was trained (or calibrated) on, and a phrase naming them for errors."""
    seen = predictor.seen_groups
    if seen is None:
        raise InputDataError(f"{predictor.path} does not record the exons it was trained on, so held-out rows "
                             "cannot be told from seen ones")  # fmt: skip
    mask = np.isin(ds.groups.astype(str), sorted(seen))
    exons = sorted(set(ds.groups[mask].astype(str).tolist()))
    what = (f"{int(mask.sum())} of {len(ds)} rows ({len(exons)} exon(s), e.g. {exons[0]}) belong to exons the "
            "checkpoint was trained or calibrated on") if exons else ""  # fmt: skip
    return mask, what


def evaluate_variant_checkpoint(
    checkpoint: str | os.PathLike,
    table,
    device: str = "auto",
    allow_seen: bool = False,
    weights: str | os.PathLike | None = None,
    models_dir: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
) -> dict:
    """A variant checkpoint's metrics on a measured table (``metalayer evaluate --checkpoint --variants``).

    ``table``: see :func:`read_measured_table`. Per data set (``source``, split by target kind), on the rows
    with a measured target: the checkpoint's Pearson / Spearman with the target and AUROC / AUPRC for
    ``|target| >= threshold`` (its own thresholds), with its calibrations applied as ``predict`` applies
    them (a quantile-calibrated checkpoint adds ``coverage``, the fraction of targets inside its interval),
    and the raw base-model deltas on the same rows (:func:`base_delta_metrics`), as ``metrics.json`` of
    ``train-delta`` reports them. The base model is the checkpoint's
    (:meth:`~meta_layer_cli.base_models.record.BaseModelRecord.load`; ``weights`` / ``models_dir`` to find it).

    Rows of exons the checkpoint was trained or calibrated on are refused (InputDataError) unless
    ``allow_seen``; then they are evaluated with the rest and counted in ``seen_rows``.

    Returns ``{"checkpoint", "model", "base_model", "rows", "exons", "seen_rows", "thresholds",
    "sets": {set: {"model": metrics, "base": base metrics}}}``.
    """
    from meta_layer_cli.inference.variant_models import load_variant_predictor
    from meta_layer_cli.runtime.device import resolve_device

    device = str(resolve_device(device))
    predictor = load_variant_predictor(checkpoint, device)
    ds, thresholds = _checkpoint_rows(predictor, table, device, weights, models_dir, cache)
    seen, what = _seen_rows(predictor, ds)
    if seen.any():
        if not allow_seen:
            raise InputDataError(f"{what}: their metrics would not be held-out metrics; give a table of other "
                                 "exons, or --allow-seen to evaluate anyway")  # fmt: skip
        logger.warning(f"{what}: evaluated anyway (--allow-seen), the metrics are optimistic")
    scored = predictor.scored(ds, device)
    sets = {}
    for name, rows in _groups_by_source(ds).items():
        thr = _threshold(ds, rows, thresholds)
        model_metrics = _metrics_for(scored, ds, rows, thr)
        if "lo" in scored:
            inside = (scored["lo"][rows] <= ds.target[rows]) & (ds.target[rows] <= scored["hi"][rows])
            model_metrics["coverage"] = float(inside.mean())
        sets[name] = {"model": model_metrics, "base": _base_for(ds, rows, thr)}
    return json_safe({
        "checkpoint": str(checkpoint),
        "model": predictor.model.config.architecture,
        "base_model": predictor.record.to_dict(),
        "rows": len(ds),
        "exons": int(len(np.unique(ds.groups.astype(str)))),
        "seen_rows": int(seen.sum()),
        "thresholds": thresholds,
        "calibration": predictor.heldout.describe() if predictor.heldout is not None else None,
        "sets": sets,
    })  # fmt: skip


def format_variant_evaluation(metrics: dict) -> str:
    """:func:`evaluate_variant_checkpoint`'s result as a text table (the checkpoint vs the best raw delta)."""
    rows = [(name, f"{metrics['model']} (checkpoint)", both["model"], both["base"])
            for name, both in metrics["sets"].items()]  # fmt: skip
    thresholds = {name: both["model"]["threshold"] for name, both in metrics["sets"].items()}
    lines = [metrics_table(rows, metrics["base_model"]["name"], thresholds)]
    coverage = {name: both["model"]["coverage"] for name, both in metrics["sets"].items()
                if "coverage" in both["model"]}  # fmt: skip
    if coverage:
        lines.append(f"interval coverage ({metrics['calibration']}): {coverage}")
    lines.append(f"{metrics['rows']} rows, {metrics['exons']} exons"
                 + (f"; {metrics['seen_rows']} rows of exons the checkpoint has seen" if metrics["seen_rows"] else
                    "; none of them seen by the checkpoint"))  # fmt: skip
    return "\n".join(lines)


def binned_calibration_error(prediction: np.ndarray, target: np.ndarray, bins: int = 10) -> tuple[float, dict]:
    """A regression reliability measure: the rows in ``bins`` equal-count bins of the prediction, the mean over
    rows of ``|mean predicted - mean measured|`` of their bin (0: predictions are right on average at every
    level). Returns (that error, the curve ``{mean_predicted, observed, count}``)."""
    p, t = np.asarray(prediction, np.float64), np.asarray(target, np.float64)
    keep = np.isfinite(p) & np.isfinite(t)
    p, t = p[keep], t[keep]
    order = np.argsort(p, kind="stable")
    parts = [part for part in np.array_split(order, min(bins, len(p))) if len(part)]
    curve = {"mean_predicted": [float(p[i].mean()) for i in parts], "observed": [float(t[i].mean()) for i in parts],
             "count": [int(len(i)) for i in parts]}  # fmt: skip
    error = sum(c * abs(a - b) for a, b, c in zip(curve["mean_predicted"], curve["observed"], curve["count"]))
    return float(error / max(len(p), 1)), curve


COVERAGE_LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


@dataclass
class VariantCalibrationResult:
    """What :func:`calibrate_variant_checkpoint` returns; ``errors`` per target kind (also in
    ``calibration.json`` and the checkpoint's ``calibration_report``)."""

    checkpoint: Path
    method: str
    quantile: float | None
    rows: int
    exons: int
    errors: dict
    plot: Path
    calibration: object = field(repr=False, default=None)

    def summary(self) -> str:
        lines = [f"{self.method} calibration fitted on {self.rows} held-out rows ({self.exons} exons) -> "
                 f"{self.checkpoint}: {self.calibration.describe()}"]  # fmt: skip

        def f(v) -> str:
            return "-" if v is None else f"{v:.3g}"

        for kind, e in self.errors.items():
            if self.method == "isotonic":
                lines.append(f"{kind}: binned |mean predicted - mean measured| {f(e['before'])} before, "
                             f"{f(e['after'])} after (in-sample), {f(e.get('after_cross_fitted'))} after "
                             "(cross-fitted by exon)")  # fmt: skip
            else:
                lines.append(f"{kind}: coverage of the {self.quantile:g} interval ±{e['half_width']:.3g}: "
                             f"{f(e['after'])} on the table (in-sample), {f(e.get('after_cross_fitted'))} "
                             f"cross-fitted by exon; before: {f(e['before'])} "
                             f"({e['before_interval']})")  # fmt: skip
        return "\n".join(lines)


def _cross_fitted(method: str, delta: np.ndarray, target: np.ndarray, kinds: np.ndarray, groups: np.ndarray,
                  quantile: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:  # fmt: skip
    """Honest after-values: the calibration fitted on half of the exons, applied to the other half, and back
    (None with fewer than two exons or too few rows per half)."""
    from meta_layer_cli.models.variant.heldout import HeldOutCalibration
    from meta_layer_cli.training.splits import grouped_kfold

    if len(np.unique(groups.astype(str))) < 2:
        return None
    out_delta, lo, hi = delta.copy(), np.full(len(delta), np.nan), np.full(len(delta), np.nan)
    for fit_rows, apply_rows in grouped_kfold(groups, 2, seed):
        try:
            cal = HeldOutCalibration.fit(method, delta[fit_rows], target[fit_rows], kinds[fit_rows], quantile)
        except ValueError:
            return None
        d, a, b = cal.apply(delta[apply_rows], kinds[apply_rows])
        out_delta[apply_rows] = d
        if a is not None:
            lo[apply_rows], hi[apply_rows] = a, b
    return out_delta, lo, hi


def calibrate_variant_checkpoint(
    checkpoint: str | os.PathLike,
    table,
    out: str | os.PathLike,
    method: str = "isotonic",
    quantile: float = 0.9,
    device: str = "auto",
    overwrite: bool = False,
    weights: str | os.PathLike | None = None,
    models_dir: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
) -> VariantCalibrationResult:
    """Calibrate a delta predictor on a held-out measured table (``metalayer calibrate --checkpoint DELTA
    --variants TABLE``) -> a calibrated copy of the checkpoint in ``out``.

    ``method``: ``isotonic`` (a monotone map prediction -> measured delta, per target kind) or ``quantile``
    (a split-conformal interval: ``predicted ± q``, ``q`` the ``quantile`` conformal quantile of
    ``|measured - predicted|`` on the table, covering that fraction of new variants of unseen exons);
    see :mod:`meta_layer_cli.models.variant.heldout`. ``predict --variants`` and ``score-vcf`` apply it
    (``predicted_delta_psi_lo`` / ``_hi`` for the interval).

    The table must hold only exons the checkpoint was not trained on (refused otherwise: a calibration
    fitted on training exons would learn the model's training fit). Reported per target kind: for
    isotonic, the binned error ``|mean predicted - mean measured|`` (:func:`binned_calibration_error`)
    before, after on the table itself (in-sample) and after cross-fitting by exon (fitted on half the
    exons, measured on the other half: the honest number); for quantile, the interval's empirical
    coverage likewise (before: the quantile heads' interval if the model has them). Writes
    ``reliability.png`` (isotonic: mean measured vs mean predicted per bin; quantile: empirical vs
    nominal coverage) and ``calibration.json`` beside the checkpoint files.
    """
    from meta_layer_cli.evaluation.report import write_reliability_plot
    from meta_layer_cli.inference.variant_models import load_variant_predictor
    from meta_layer_cli.jobs.calibrate import check_output_folder, fresh_folder
    from meta_layer_cli.models.checkpoint import CONFIG, WEIGHTS, update_checkpoint_config
    from meta_layer_cli.models.variant.heldout import HeldOutCalibration, conformal_half_width
    from meta_layer_cli.runtime.device import resolve_device

    if method not in ("isotonic", "quantile"):
        raise UsageError(f"--method {method!r}: a variant model takes isotonic or quantile")
    if method == "quantile" and not 0 < quantile < 1:
        raise UsageError(f"--quantile {quantile}: must lie between 0 and 1")
    check_output_folder(out, overwrite, {"--checkpoint": checkpoint, "--variants": table})
    device = str(resolve_device(device))
    predictor = load_variant_predictor(checkpoint, device)
    if predictor.model.task != "regression":
        raise InputDataError(f"{checkpoint} is a {predictor.model.config.architecture} classifier: isotonic and "
                             "quantile calibration apply to delta predictors")  # fmt: skip
    if predictor.heldout is not None:
        raise InputDataError(f"{checkpoint} is already calibrated ({predictor.heldout.describe()}); calibrate the "
                             "uncalibrated checkpoint instead")  # fmt: skip
    ds, _ = _checkpoint_rows(predictor, table, device, weights, models_dir, cache)
    seen, what = _seen_rows(predictor, ds)
    if seen.any():
        raise InputDataError(f"{what}: a calibration must be fitted on held-out data; give a table of other exons")
    scored = predictor.scored(ds, device)
    delta, target, kinds, groups = scored["delta"], ds.target, ds.kind_names, ds.groups
    try:
        fitted = HeldOutCalibration.fit(method, delta, target, kinds, quantile)
    except ValueError as err:
        raise InputDataError(f"the variant table cannot be calibrated on: {err}") from None
    after, lo, hi = fitted.apply(delta, kinds)
    crossed = _cross_fitted(method, delta, target, kinds, groups, quantile)
    # reliability of the interval at several levels: empirical vs nominal coverage (the cross-fitted
    # intervals pool every kind, so they are fitted once per level, not once per kind and level)
    levels = sorted(set(COVERAGE_LEVELS) | {quantile})
    cross_by_level = ({level: _cross_fitted("quantile", delta, target, kinds, groups, level) for level in levels}
                      if method == "quantile" and crossed is not None else {})  # fmt: skip
    errors: dict[str, dict] = {}
    curves: dict[str, dict] = {}
    for kind in fitted.kinds:
        rows = (kinds == kind) & np.isfinite(delta) & np.isfinite(target)
        if method == "isotonic":
            before_err, before_curve = binned_calibration_error(delta[rows], target[rows])
            after_err, after_curve = binned_calibration_error(after[rows], target[rows])
            e = {"before": before_err, "after": after_err, "rows": int(rows.sum())}
            curves[f"{kind}: before"] = before_curve
            if crossed is not None:
                e["after_cross_fitted"], curves[f"{kind}: after (cross-fitted by exon)"] = (
                    binned_calibration_error(crossed[0][rows], target[rows]))  # fmt: skip
            else:
                curves[f"{kind}: after (in-sample)"] = after_curve
        else:
            t, d = target[rows], delta[rows]
            inside = (lo[rows] <= t) & (t <= hi[rows])
            e = {"half_width": fitted.half_width[kind], "after": float(inside.mean()), "rows": int(rows.sum())}
            if "q10" in scored or predictor.model.config.calibration == "quantile":
                qs = predictor.model.quantile_levels
                low, high = f"q{round(qs[0] * 100):02d}", f"q{round(qs[-1] * 100):02d}"
                e["before"] = float(((scored[low][rows] <= t) & (t <= scored[high][rows])).mean())
                e["before_interval"] = f"the quantile heads' {low}-{high}"
            else:
                e["before"], e["before_interval"] = None, "the model gives no interval"
            if crossed is not None:
                e["after_cross_fitted"] = float(((crossed[1][rows] <= t) & (t <= crossed[2][rows])).mean())
            residual = np.abs(t - d)
            observed = []
            for level in levels:
                try:
                    observed.append(float((residual <= conformal_half_width(residual, level)).mean()))
                except ValueError:
                    observed.append(float("nan"))
            curves[f"{kind}: in-sample"] = {"mean_predicted": levels, "observed": observed, "count": [1] * len(levels)}
            if crossed is not None:
                cross = []
                for level in levels:
                    c = cross_by_level[level]
                    cross.append(float("nan") if c is None else
                                 float(((c[1][rows] <= t) & (t <= c[2][rows])).mean()))  # fmt: skip
                curves[f"{kind}: cross-fitted by exon"] = {"mean_predicted": levels, "observed": cross,
                                                           "count": [1] * len(levels)}  # fmt: skip
        errors[kind] = e

    out = fresh_folder(out, overwrite)
    for name in (WEIGHTS, CONFIG):
        shutil.copy2(Path(checkpoint) / name, out / name)
    calibration_groups = sorted(set(groups.astype(str).tolist()))
    run = {**predictor.run, "calibration_groups": calibration_groups}
    report = {"method": method, "quantile": fitted.quantile, "rows": len(ds), "exons": len(calibration_groups),
              "errors": errors, "table": None if isinstance(table, (pl.DataFrame, dict)) else str(table)}  # fmt: skip
    update_checkpoint_config(out, {"run": run, "heldout_calibration": fitted.to_dict(),
                                   "calibration_report": json_safe(report)})  # fmt: skip
    write_json_atomic(out / "calibration.json", json_safe({**report, "calibration": fitted.to_dict()}))
    if method == "isotonic":
        plot = write_reliability_plot(out / "reliability.png", curves, "isotonic calibration (held-out rows)",
                                      "mean predicted delta (bin)", "mean measured delta (bin)",
                                      limits=None)  # fmt: skip
    else:
        plot = write_reliability_plot(out / "reliability.png", curves, "split-conformal interval (held-out rows)",
                                      "nominal coverage", "empirical coverage")  # fmt: skip
    return VariantCalibrationResult(out, method, fitted.quantile, len(ds), len(calibration_groups), errors, plot,
                                    fitted)  # fmt: skip


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
