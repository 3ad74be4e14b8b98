"""``metalayer calibrate``: post-hoc calibration fitted on held-out (validation) data, never on test genes.

* a **base model alone**: per-class temperatures of its log-probabilities before one softmax (as
  OpenSpliceAI's ``calibrate`` does), fitted on the genes of a prepared folder that lie off the test
  chromosomes; written as a ``correction: false`` canonical checkpoint, so ``predict``, ``evaluate``
  and ``score-vcf`` use it like any other;
* a **canonical checkpoint**: ``temperature`` or ``isotonic`` per site class on its final
  probabilities (:mod:`meta_layer_cli.models.site_calibration`), fitted on its validation genes.

The calibrated checkpoint is a new folder (the input is never modified). ECE before and after is
reported on the calibration genes and, where the data has them, on the held-out test genes (the
honest number), with a reliability diagram ``reliability.png`` in the new folder.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from meta_layer_cli.artifacts import load_gene_arrays, read_manifest
from meta_layer_cli.artifacts.sources import resolve_gene_names, source_fingerprint
from meta_layer_cli.artifacts.tracks import finished_gene_ids, manifest_record, require_complete
from meta_layer_cli.evaluation.evaluator import base_probabilities
from meta_layer_cli.evaluation.metrics import expected_calibration_error, f1_optimal_threshold, reliability_curve
from meta_layer_cli.io.atomic import refuse_overwriting_inputs, write_json_atomic
from meta_layer_cli.io.contigs import chromosome_names
from meta_layer_cli.runtime.errors import InputDataError, RuntimeFailure, UsageError
from meta_layer_cli.training.config import SPLICEAI_TEST_CHROMOSOMES
from meta_layer_cli.training.splits import gene_locus

logger = logging.getLogger(__name__)


@dataclass
class CalibrationResult:
    checkpoint: Path
    method: str
    ece: dict  # {"calibration genes": {"before", "after"}, "test genes": {...}}
    plot: Path
    genes: list[str]
    fitted: str = ""  # what was fitted, in words (temperatures, isotonic knots)

    def summary(self) -> str:
        lines = [f"{self.method} calibration fitted on {len(self.genes)} genes -> {self.checkpoint}"]
        if self.fitted:
            lines.append(f"fitted: {self.fitted}")
        for where, values in self.ece.items():
            lines.append(f"ECE on {where}: {values['before']:.2e} before, {values['after']:.2e} after")
        return "\n".join(lines)


def _ece(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean([expected_calibration_error(probs[:, c], labels == c) for c in (1, 2)]))


def _curve(probs: np.ndarray, labels: np.ndarray) -> dict:
    return reliability_curve(np.concatenate([probs[:, 1], probs[:, 2]]), np.concatenate([labels == 1, labels == 2]))


def _fit_temperatures(log_probs: np.ndarray, labels: np.ndarray, steps: int = 100) -> np.ndarray:
    """Per-class temperatures ``T [3]`` minimising the NLL of ``softmax(log_probs / T)``."""
    import torch

    z = torch.as_tensor(log_probs, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.long)
    log_t = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    t = log_t.detach().exp().numpy()
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise RuntimeFailure("temperature fit did not converge")
    return t


def _split_off_test(gene_ids: list[str], chromosomes: dict[str, str], test_chroms: list[str],
                    contig_chromosomes: dict[str, str] | None = None) -> tuple[list, list]:  # fmt: skip
    wanted = set().union(*(chromosome_names(c) for c in test_chroms))
    test = [g for g in gene_ids if chromosome_names(chromosomes.get(g, ""), contig_chromosomes) & wanted]
    held_out = set(test)
    return [g for g in gene_ids if g not in held_out], test


def calibrate_base_model(
    data: str | os.PathLike,
    out: str | os.PathLike,
    genes: list[str] | None = None,
    test_chroms: list[str] | None = None,
    overwrite: bool = False,
    allow_partial: bool = False,
) -> CalibrationResult:
    """Per-class temperatures of the base model in ``data`` (module docstring) -> a checkpoint in ``out``.
    An unfinished ``data`` folder is refused unless ``allow_partial``."""
    from meta_layer_cli.models.checkpoint import save_model
    from meta_layer_cli.models.meta import MetaModelConfig, build_meta_model

    check_output_folder(out, overwrite, {"--data": data})
    data = Path(data)
    manifest = read_manifest(data)
    require_complete(data, manifest, allow_partial)
    record = manifest_record(manifest)
    ids = finished_gene_ids(data, manifest)
    chromosomes = {g["gene_id"]: g["chrom"] for g in manifest["genes"]}
    test_chroms = test_chroms or SPLICEAI_TEST_CHROMOSOMES
    allowed, test = _split_off_test(ids, chromosomes, test_chroms, manifest["source"].get("chromosomes"))
    if genes:
        genes = resolve_gene_names(genes, manifest["genes"])  # names or ids, as --genes takes them
        held_out = set(test)
        refused = [g for g in genes if g in held_out]
        if refused:
            raise InputDataError(f"{len(refused)} of --genes lie on test chromosomes ({', '.join(test_chroms)}), e.g. "
                                 f"{refused[0]}: calibration must not see test genes")  # fmt: skip
        known = set(allowed)
        unknown = [g for g in genes if g not in known]
        if unknown:
            raise InputDataError(f"gene(s) not in {data}: {', '.join(unknown[:10])}")
        allowed = list(genes)
    if not allowed:
        raise InputDataError(f"no genes off the test chromosomes ({', '.join(test_chroms)}) in {data} to calibrate on")
    channels, arrays = load_gene_arrays(data, allowed)
    if base_probabilities(arrays[0].tracks, channels) is None:
        raise InputDataError(f"{record.name} has no neither/acceptor/donor channels to calibrate")
    probs = np.concatenate([base_probabilities(g.tracks, channels) for g in arrays]).astype(np.float64)
    labels = np.concatenate([g.labels for g in arrays])
    temperatures = _fit_temperatures(np.log(np.clip(probs, 0, None) + 1e-6), labels)
    model = build_meta_model(MetaModelConfig(channels=channels, correction=False))
    import torch

    with torch.no_grad():
        model.log_temperature.copy_(torch.as_tensor(np.log(temperatures), dtype=torch.float32))
    out = fresh_folder(out, overwrite)
    split = {"train": [], "validation": allowed, "test": test}
    calibrated = _apply(model, arrays)
    thresholds = {name: {str(c): f1_optimal_threshold(p[:, c], labels == c) for c in (1, 2)}
                  for name, p in (("meta", calibrated), ("base", probs))}  # fmt: skip
    fitted_on = set(allowed)
    loci = [gene_locus(e) for e in manifest["genes"] if e["gene_id"] in fitted_on]
    run = {"base_models": [record.to_dict()], "channels": channels, "split": split, "thresholds": thresholds,
           "loci": {"genome_build": manifest["source"].get("genome_build"), "seen": [list(x) for x in loci if x]},
           "data": {"dataset": None, "source": source_fingerprint(manifest["fingerprint"])},
           "calibrated_from": "base model", "temperatures": temperatures.tolist()}  # fmt: skip
    save_model(out, model, {"run": run})
    ece = {"calibration genes": {"before": _ece(probs, labels), "after": _ece(calibrated, labels)}}
    curves = {"base (before)": _curve(probs, labels), "calibrated (after)": _curve(calibrated, labels)}
    if test:
        _, test_arrays = load_gene_arrays(data, test)
        p_test = np.concatenate([base_probabilities(g.tracks, channels) for g in test_arrays])
        l_test = np.concatenate([g.labels for g in test_arrays])
        ece["test genes"] = {"before": _ece(p_test, l_test), "after": _ece(_apply(model, test_arrays), l_test)}
    fitted = "per-class temperatures of the base model's log-probabilities: " + ", ".join(
        f"{name} T = {t:.3f}" for name, t in zip(("neither", "acceptor", "donor"), temperatures))
    return _finish(out, "temperature", ece, curves, allowed, fitted, temperatures=temperatures.tolist())


def _apply(model, arrays) -> np.ndarray:
    from meta_layer_cli.models.apply import recalibrate_arrays

    return np.concatenate([recalibrate_arrays(model, g.codes, g.tracks) for g in arrays]).astype(np.float64)


def check_output_folder(out: str | os.PathLike, overwrite: bool, inputs: dict) -> None:
    """What :func:`fresh_folder` will do, checked before any work: ``out`` is none of ``inputs`` (flag -> path)
    and holds none of them (:func:`~meta_layer_cli.io.atomic.refuse_overwriting_inputs`), and is empty unless
    ``overwrite``."""
    refuse_overwriting_inputs({"--out": out}, inputs)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputDataError(f"{out} exists and is not empty; choose a new --out or pass --overwrite")


def fresh_folder(out: str | os.PathLike, overwrite: bool) -> Path:
    """``out`` as an empty folder: created, or emptied with ``overwrite``; a non-empty one is refused. Call
    :func:`check_output_folder` first, before the work whose result goes here."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise InputDataError(f"{out} exists and is not empty; choose a new --out or pass --overwrite")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _finish(out: Path, method: str, ece: dict, curves: dict, genes: list[str], fitted: str,
            **extra) -> CalibrationResult:  # fmt: skip
    from meta_layer_cli.evaluation.report import write_reliability_plot
    from meta_layer_cli.models.checkpoint import update_checkpoint_config

    plot = write_reliability_plot(out / "reliability.png", curves, f"{method} calibration (calibration genes)")
    update_checkpoint_config(out, {"calibration_report": {"method": method, "ece": ece, "genes": len(genes),
                                                          **extra}})  # fmt: skip
    write_json_atomic(out / "calibration.json", {"method": method, "ece": ece, "genes": genes, **extra})
    return CalibrationResult(out, method, ece, plot, genes, fitted)


def calibrate_checkpoint(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    method: str = "temperature",
    data: list[str | os.PathLike] | str | os.PathLike | None = None,
    genes: list[str] | None = None,
    device: str = "cpu",
    models_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    allow_partial: bool = False,
) -> CalibrationResult:
    """``temperature`` or ``isotonic`` calibration of a canonical checkpoint on its validation genes
    (module docstring) -> a calibrated copy in ``out``. An unfinished ``data`` folder is refused unless
    ``allow_partial``."""
    from meta_layer_cli.jobs.canonical import checkpoint_data
    from meta_layer_cli.models.apply import CanonicalPredictor
    from meta_layer_cli.models.checkpoint import CONFIG, WEIGHTS, read_checkpoint_config, update_checkpoint_config
    from meta_layer_cli.models.site_calibration import SiteCalibration

    if method not in ("temperature", "isotonic"):
        raise UsageError(f"--method {method!r}: a canonical checkpoint takes temperature or isotonic")
    check_output_folder(out, overwrite, {"--checkpoint": checkpoint, "--data": data})
    config = read_checkpoint_config(checkpoint)
    run = config.get("run") or {}
    if not run:
        raise InputDataError(f"{checkpoint}: not a canonical checkpoint")
    if config.get("calibration"):
        raise InputDataError(f"{checkpoint} is already calibrated ({config['calibration']['method']}); calibrate the "
                             "uncalibrated checkpoint instead")  # fmt: skip
    dirs, same = checkpoint_data(checkpoint, data, device, models_dir=models_dir)
    for d in dirs:
        require_complete(d, None, allow_partial)
    if not same:
        raise InputDataError("calibration must use the checkpoint's own validation genes: give the --data it was "
                             "trained on")  # fmt: skip
    split = run["split"]
    if genes:
        genes = resolve_gene_names(genes, read_manifest(dirs[0])["genes"])  # names or ids, as --genes takes them
        held_out = set(split["test"])
        refused = [g for g in genes if g in held_out]
        if refused:
            raise InputDataError(f"{len(refused)} of --genes are the checkpoint's test genes (e.g. {refused[0]}): "
                                 "calibration must not see them")  # fmt: skip
        trained = set(split["train"])
        if any(g in trained for g in genes):
            logger.warning("some --genes were training genes: the model has seen them, calibration will be optimistic")
        chosen = list(genes)
    else:
        chosen = list(split["validation"])
    if not chosen:
        raise InputDataError(f"{checkpoint} has no validation genes to calibrate on")
    predictor = CanonicalPredictor.load(checkpoint, device)
    channels, arrays = load_gene_arrays(dirs, chosen)
    before = np.concatenate([predictor(g.codes, g.tracks) for g in arrays]).astype(np.float64)
    labels = np.concatenate([g.labels for g in arrays])
    fitted = SiteCalibration.fit(before, labels, method)
    after = fitted(before).astype(np.float64)
    out = fresh_folder(out, overwrite)
    for name in (WEIGHTS, CONFIG):
        shutil.copy2(Path(checkpoint) / name, out / name)
    thresholds = dict(run.get("thresholds") or {})
    thresholds["meta"] = {str(c): f1_optimal_threshold(after[:, c], labels == c) for c in (1, 2)}
    update_checkpoint_config(out, {"calibration": fitted.to_dict(), "run": {**run, "thresholds": thresholds}})
    ece = {"calibration genes": {"before": _ece(before, labels), "after": _ece(after, labels)}}
    curves = {"before": _curve(before, labels), "after": _curve(after, labels)}
    if split["test"]:
        _, test = load_gene_arrays(dirs, split["test"])
        t_before = np.concatenate([predictor(g.codes, g.tracks) for g in test])
        l_test = np.concatenate([g.labels for g in test])
        ece["test genes"] = {"before": _ece(t_before, l_test), "after": _ece(fitted(t_before), l_test)}
    return _finish(out, method, ece, curves, chosen, fitted.describe())
