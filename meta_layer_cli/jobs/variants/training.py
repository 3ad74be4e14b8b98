"""``metalayer train-delta``: exon-grouped cross-validation, then a final model, in a run folder guarded by
:class:`~meta_layer_cli.jobs.run_folder.RunFolder` (lock, ``--resume``, ``--overwrite``, ``--if-changed``)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from meta_layer_cli.features.variants import DEFAULT_THRESHOLDS, TARGET_KINDS, VariantDataset
from meta_layer_cli.io.atomic import atomic_path, refuse_overwriting_inputs, write_json_atomic
from meta_layer_cli.io.json_values import json_safe
from meta_layer_cli.jobs.run_folder import FolderPolicy, RunFolder, run_outputs
from meta_layer_cli.jobs.variants.common import (
    groups_by_source,
    majority_threshold,
    metrics_of_base,
    metrics_of_model,
    metrics_table,
)
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


def _fit_calibration(model: VariantModel, preds: dict, dataset: VariantDataset, thresholds: dict) -> dict:
    """Post-hoc calibrators fitted on validation predictions (the config's ``calibration``)."""
    name = model.config.calibration
    out: dict = {}
    if name == "isotonic" and "delta" in preds:
        out["isotonic"] = {}
        for k in np.unique(dataset.kind):
            rows = (dataset.kind == k) & np.isfinite(dataset.target)
            if rows.sum() >= 2:
                out["isotonic"][TARGET_KINDS[int(k)]] = IsotonicCalibrator().fit(
                    preds["delta"][rows], dataset.target[rows]
                )
    if name == "temperature":
        labels = dataset.labels(thresholds)
        if "logit" in preds:
            out["temperature"] = TemperatureScaler().fit(preds["logit"], labels)
        if "effect_logits" in preds:
            out["effect_temperature"] = TemperatureScaler().fit(preds["effect_logits"], dataset.effect)
    return out


def _train_one(cfg: VariantRunConfig, dataset: VariantDataset, rows: np.ndarray, seed: int, device: str):
    """A model trained on ``rows`` (whole exons held out of them for early stopping), with its calibration."""
    from meta_layer_cli.models.variant import build_variant_model
    from meta_layer_cli.training.splits import grouped_holdout
    from meta_layer_cli.training.variant_trainer import VariantTrainer, VariantTrainerConfig

    thresholds = {**DEFAULT_THRESHOLDS, **cfg.thresholds}
    part = dataset.subset(rows)
    fit_rows, val_rows = grouped_holdout(part.groups, cfg.validation, seed)
    train_part, val_part = part.subset(fit_rows), part.subset(val_rows)
    trainer_config = VariantTrainerConfig(
        **cfg.training.model_dump(), thresholds=thresholds, seed=seed, batch_size=cfg.hardware.batch_size, device=device
    )
    import torch

    torch.manual_seed(seed)
    model = build_variant_model(cfg.model, cfg.model_config_for(dataset.channels))
    state = VariantTrainer(trainer_config).fit(model, train_part, val_part)
    val_preds = predict_variants(model, val_part, device=device)
    calibration = _fit_calibration(model, val_preds, val_part, thresholds)
    info = {
        "train_rows": len(fit_rows),
        "validation_rows": len(val_rows),
        "train_groups": int(len(np.unique(train_part.groups.astype(str)))),
        "validation_groups": int(len(np.unique(val_part.groups.astype(str)))),
        **state,
    }
    return model, calibration, info


def table_checksum(frame: pl.DataFrame) -> str:
    """SHA-256 of a table's content (its CSV text: columns, order and values), first 16 hex digits."""
    return hashlib.sha256(frame.write_csv().encode()).hexdigest()[:CHECKSUM_DIGITS]


def portable_settings(cfg: VariantRunConfig, file_names: bool = True) -> dict:
    """The run's settings without where things are on this machine (hardware, output folder, cache, weights and
    data paths): what a checkpoint records (data tables named by file name) and, with ``file_names=False``, what
    a fingerprint compares (the tables' contents are fingerprinted by checksum; a renamed table is no change)."""
    settings = cfg.model_dump(exclude={"hardware", "output_dir", "cache", "base_weights"})
    for key in ("train", "evaluate"):
        settings[key] = [
            {
                **{k: v for k, v in spec.items() if k not in ("path", "fasta", "annotation")},
                **({"file": Path(spec["path"]).name} if file_names and spec.get("path") else {}),
            }
            for spec in settings[key]
        ]
    return settings


def delta_fingerprint(
    cfg: VariantRunConfig, train: Sequence[pl.DataFrame], evaluate: Sequence[pl.DataFrame], base
) -> dict:
    """What decides whether a finished ``train-delta`` run is up to date: the base model's weights, the
    checksums of the data tables as loaded, and every setting but ``hardware`` and where things are
    (output folder, cache, weights and data paths: their contents are already fingerprinted)."""
    settings = portable_settings(cfg, file_names=False)
    settings["training"].pop("progress", None)
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
    config: str | os.PathLike | dict | VariantRunConfig | None = None,
    *,
    profile: str | os.PathLike | None = None,
    train: Sequence[pl.DataFrame | DataSpec | dict] | None = None,
    evaluate: Sequence[pl.DataFrame | DataSpec | dict] | None = None,
    folder: FolderPolicy | None = None,
    base_model: str | None = None,
    model: str | None = None,
    output_dir: str | os.PathLike | None = None,
    folds: int | None = None,
    epochs: int | None = None,
    weights: str | None = None,
    device: str | None = None,
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
    folder : what to do with a folder that already holds a run
        (:class:`~meta_layer_cli.jobs.run_folder.FolderPolicy`; the library default ``overwrite=True``
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
        config,
        profile,
        base_model=base_model,
        model=model,
        output_dir=str(output_dir) if output_dir is not None else None,
        folds=folds,
        epochs=epochs,
        base_weights=weights,
        device=device,
        train=specs(train),
        evaluate=specs(evaluate),
        **options,
    )
    set_threads(cfg.hardware.threads)
    device = str(resolve_device(cfg.hardware.device))
    out = Path(cfg.output_dir)
    refuse_overwriting_inputs(
        {"--out": run_outputs(out)},
        {
            "--config": config if isinstance(config, (str, os.PathLike)) else None,
            "--weights": cfg.base_weights,
            "train data": [p for s in cfg.train for p in s.input_paths()],
            "evaluate data": [p for s in cfg.evaluate for p in s.input_paths()],
        },
    )
    timing: dict[str, float] = {}
    started = time.perf_counter()
    train_frames = frames_given + [s.load() for s in cfg.train]
    if not train_frames:
        raise UsageError("no training data: give train=[tables] or config entries under train:")
    evaluate_frames = eval_frames + [s.load() for s in cfg.evaluate]
    base = load_base_model(cfg.base_model, weights=cfg.base_weights, device=device, dtype=cfg.hardware.dtype)
    timing["load_s"] = round(time.perf_counter() - started, 2)
    fingerprint = delta_fingerprint(cfg, train_frames, evaluate_frames, base)
    with (folder or FolderPolicy()).open(out, fingerprint, "delta") as run_folder:
        result = _train_in_folder(cfg, run_folder, base, train_frames, evaluate_frames, device, timing)
        run_folder.finish({name: m.get("pearson", m.get("pearson_abs")) for name, m in result.cv_metrics.items()})
    return result


def _train_in_folder(
    cfg: VariantRunConfig,
    folder: RunFolder,
    base,
    train_frames: list[pl.DataFrame],
    evaluate_frames: list[pl.DataFrame],
    device: str,
    timing: dict,
):
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
            logger.info(
                f"fold {f + 1}/{len(splits)}: {len(train_rows)} training rows, best epoch "
                f"{info.get('best_epoch')}, {time.perf_counter() - started:.0f} s so far"
            )
        for key, values in scored.items():
            if key not in oof:
                oof[key] = np.full((len(dataset),) + values.shape[1:], np.nan)
            oof[key][test_rows] = values
        fold_of[test_rows] = f
        fold_info.append(info)
    timing["cross_validation_s"] = round(time.perf_counter() - started, 2)

    cv_metrics, base_metrics = {}, {}
    for name, rows in groups_by_source(dataset).items():
        thr = majority_threshold(dataset, rows, thresholds)
        cv_metrics[name] = metrics_of_model(oof, dataset, rows, thr)
        base_metrics[name] = metrics_of_base(dataset, rows, thr)

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
        for name, rows in groups_by_source(ds).items():
            rows = rows[np.isfinite(ds.target[rows])]
            thr = majority_threshold(ds, rows, thresholds)
            evaluation_metrics[name] = {
                "model": metrics_of_model(scored, ds, rows, thr),
                "base": metrics_of_base(ds, rows, thr),
            }

    data_info = {
        name: {"rows": int(len(rows)), "exons": int(len(np.unique(dataset.groups[rows].astype(str))))}
        for name, rows in groups_by_source(dataset).items()
    }
    run_info = {
        "base_model": dataset.base_model.portable(),  # BaseModelRecord: name, checksum, context, channels
        "window": cfg.window,
        "delta_window": cfg.delta_window,
        "thresholds": thresholds,
        "data": data_info,
        # every exon the final model trained on (or early-stopped on): evaluate / calibrate refuse their rows
        "training_groups": sorted(set(dataset.groups.astype(str).tolist())),
        "config": portable_settings(cfg),  # no machine paths: a checkpoint moves between machines
    }
    checkpoint = out / CHECKPOINT
    save_variant_model(
        checkpoint,
        final,
        {
            "run": run_info,
            "calibration": calibration_to_json(calibration),
            "p_splice_altering": p_map,
            "training": json_safe({k: v for k, v in final_info.items() if k != "history"}),
            "cv_metrics": json_safe(cv_metrics),
        },
    )

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
        }
    )
    from meta_layer_cli.io.tables import write_table

    write_table(predictions, out / "cv_predictions.parquet")
    result = VariantTrainingResult(
        checkpoint_path=checkpoint,
        output_dir=out,
        model=cfg.model,
        base_model=cfg.base_model,
        cv_metrics=cv_metrics,
        base_metrics=base_metrics,
        evaluation_metrics=evaluation_metrics,
        folds=fold_info,
        timing=timing,
        predictions=predictions,
    )
    write_json_atomic(
        out / "metrics.json",
        json_safe(
            {
                "model": cfg.model,
                "base_model": run_info["base_model"],
                "cv": cv_metrics,
                "base": base_metrics,
                "evaluation": evaluation_metrics,
                "folds": fold_info,
                "final_model": final_info,
                "timing": timing,
                "data": data_info,
                "thresholds": thresholds,
                "config": cfg.model_dump(),
                "notes": {
                    "base": "raw base-model deltas; best column and its sign chosen on the evaluated rows",
                    "splits": "exon-grouped: every group (exon) entirely in train or test",
                },
            }
        ),
    )
    return result
