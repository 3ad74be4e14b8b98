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

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from meta_layer_cli.artifacts import load_gene_arrays, read_manifest
from meta_layer_cli.artifacts.sources import resolve_gene_names, source_fingerprint
from meta_layer_cli.artifacts.tracks import finished_gene_ids, manifest_genes, manifest_record, require_complete
from meta_layer_cli.evaluation.evaluator import base_probabilities, total_nt
from meta_layer_cli.evaluation.streaming import (
    BinnedScores,
    SiteScores,
    add_gene,
    calibration_error,
    reliability_from_sums,
)
from meta_layer_cli.features.scores import splice_groups
from meta_layer_cli.io.atomic import refuse_overwriting_inputs, write_json_atomic
from meta_layer_cli.io.contigs import chromosome_names
from meta_layer_cli.runtime.device import resolve_device
from meta_layer_cli.runtime.errors import InputDataError, RuntimeFailure, UsageError
from meta_layer_cli.runtime.locks import LOCK_NAME, folder_lock
from meta_layer_cli.runtime.progress import Progress, phase
from meta_layer_cli.training.config import SPLICEAI_TEST_CHROMOSOMES

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


def _ece(by_class: dict) -> float:
    """Mean of the acceptor and donor one-vs-rest ECEs (``SiteScores`` or ``BinnedScores`` reliability sums)."""
    return float(np.mean([calibration_error(*r) for r in by_class.values()]))


def _curve(by_class: dict) -> dict:
    """Acceptor and donor scores together against ``is_site``."""
    return reliability_from_sums(*(sum(r[i] for r in by_class.values()) for i in range(3)))


class _FitSample:
    """What the base model's temperatures are fitted on, in bounded memory: every site, and a uniform
    sample of at most ``capacity`` other positions (the smallest of per-position random keys, so the
    sample does not depend on how the genes are batched), each sampled position weighted by how many
    it stands for. With fewer positions than that, it is all of them, unweighted."""

    def __init__(self, capacity: int = 2_000_000, seed: int = 0):
        self.capacity = capacity
        self.rng = np.random.default_rng(seed)
        self.sites: list[tuple[np.ndarray, np.ndarray]] = []
        self.keys = np.zeros(0)
        self.rows = np.zeros((0, 3))
        self.others = 0

    def add(self, log_probs: np.ndarray, labels: np.ndarray) -> None:
        site = labels > 0
        self.sites.append((log_probs[site], labels[site]))
        rest = log_probs[~site]
        self.others += len(rest)
        self.keys = np.concatenate([self.keys, self.rng.random(len(rest))])
        self.rows = np.concatenate([self.rows, rest])
        if len(self.keys) > 2 * self.capacity:
            self._prune()

    def _prune(self) -> None:
        if len(self.keys) > self.capacity:
            keep = np.argpartition(self.keys, self.capacity - 1)[: self.capacity]
            keep.sort()
            self.keys, self.rows = self.keys[keep], self.rows[keep]

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(log-probabilities ``[N, 3]``, labels ``[N]``, weights ``[N]``)."""
        self._prune()
        z = np.concatenate([s for s, _ in self.sites] + [self.rows])
        y = np.concatenate([lab for _, lab in self.sites] + [np.zeros(len(self.rows), np.int64)])
        w = np.ones(len(z))
        if len(self.rows):
            w[len(z) - len(self.rows) :] = self.others / len(self.rows)
        return z, y, w


def _fit_temperatures(
    log_probs: np.ndarray, labels: np.ndarray, steps: int = 100, weights: np.ndarray | None = None
) -> np.ndarray:
    """Per-class temperatures ``T [3]`` minimising the (``weights``-weighted) NLL of ``softmax(log_probs / T)``."""
    import torch

    z = torch.as_tensor(log_probs, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.long)
    w = torch.ones(len(y), dtype=torch.float64) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
    w = w / w.sum()
    log_t = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (w * torch.nn.functional.cross_entropy(z / log_t.exp(), y, reduction="none")).sum()
        loss.backward()
        return loss

    opt.step(closure)
    t = log_t.detach().exp().numpy()
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise RuntimeFailure("temperature fit did not converge")
    return t


def _split_off_test(
    gene_ids: list[str],
    chromosomes: dict[str, str],
    test_chroms: list[str],
    contig_chromosomes: dict[str, str] | None = None,
) -> tuple[list, list]:
    wanted = set().union(*(chromosome_names(c) for c in test_chroms))
    test = [g for g in gene_ids if chromosome_names(chromosomes.get(g, ""), contig_chromosomes) & wanted]
    held_out = set(test)
    return [g for g in gene_ids if g not in held_out], test


@phase("calibrate")
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
    from meta_layer_cli.jobs.canonical import GENE_COLUMNS, gene_places
    from meta_layer_cli.models.checkpoint import save_model, write_split_table
    from meta_layer_cli.models.meta import MetaModelConfig, build_meta_model

    check_output_folder(out, overwrite, {"--data": data})
    data = Path(data)
    manifest = read_manifest(data)
    require_complete(data, manifest, allow_partial)
    record = manifest_record(manifest)
    ids = finished_gene_ids(data, manifest)
    planned = manifest_genes(manifest)
    chromosomes = dict(zip(planned.column("gene_id"), planned.column("chrom")))
    test_chroms = test_chroms or SPLICEAI_TEST_CHROMOSOMES
    allowed, test = _split_off_test(ids, chromosomes, test_chroms, manifest["source"].get("chromosomes"))
    if genes:
        genes = resolve_gene_names(genes, manifest["genes"])  # names or ids, as --genes takes them
        held_out = set(test)
        refused = [g for g in genes if g in held_out]
        if refused:
            raise InputDataError(
                f"{len(refused)} of --genes lie on test chromosomes ({', '.join(test_chroms)}), e.g. "
                f"{refused[0]}: calibration must not see test genes"
            )
        known = set(allowed)
        unknown = [g for g in genes if g not in known]
        if unknown:
            raise InputDataError(f"gene(s) not in {data}: {', '.join(unknown[:10])}")
        allowed = list(genes)
        del held_out, known
    del ids, chromosomes  # a dict and a list over every gene: not held through the streamed phases below
    if not allowed:
        raise InputDataError(f"no genes off the test chromosomes ({', '.join(test_chroms)}) in {data} to calibrate on")
    channels, arrays = load_gene_arrays(data, allowed)
    if not splice_groups(channels):
        raise InputDataError(f"{record.name} has no neither/acceptor/donor channels to calibrate")
    # streamed: a bounded sample to fit on, and exact reliability sums and F1 thresholds of the base model
    sample = _FitSample()
    before = {c: SiteScores() for c in (1, 2)}
    with Progress("calibrate: calibration genes (fit)", total=total_nt(arrays), unit="nt", enabled=None) as bar:
        for n, g in enumerate(arrays, 1):
            probs, labels = base_probabilities(g.tracks, channels).astype(np.float64), np.asarray(g.labels)
            sample.add(np.log(np.clip(probs, 0, None) + 1e-6), labels)
            add_gene(before, probs, labels)
            bar.update(len(labels), genes=f"{n:,}/{len(arrays):,}")
    z, y, w = sample.arrays()
    temperatures = _fit_temperatures(z, y, weights=w)
    if len(sample.rows) < sample.others:
        logger.info(
            f"temperatures fitted on all {len(y) - len(sample.rows):,} sites and {len(sample.rows):,} of "
            f"{sample.others:,} other positions (a uniform sample, weighted)"
        )
    model = build_meta_model(MetaModelConfig(channels=channels, correction=False))
    import torch

    with torch.no_grad():
        model.log_temperature.copy_(torch.as_tensor(np.log(temperatures), dtype=torch.float32))
    with fresh_folder(out, overwrite) as out:
        split = {"train": [], "validation": allowed, "test": test}
        after = {c: SiteScores() for c in (1, 2)}
        with Progress("calibrate: calibration genes (after)", total=total_nt(arrays), unit="nt", enabled=None) as bar:
            for n, g in enumerate(arrays, 1):
                add_gene(after, _apply(model, g), np.asarray(g.labels))
                bar.update(len(g), genes=f"{n:,}/{len(arrays):,}")
        thresholds = {
            name: {str(c): s.f1_optimal_threshold() for c, s in scores.items()}
            for name, scores in (("meta", after), ("base", before))
        }
        places = gene_places(planned.frame.select(GENE_COLUMNS))
        run = {
            "base_models": [record.portable()],
            "channels": channels,
            **write_split_table(out, split, places, manifest["source"].get("genome_build")),
            "thresholds": thresholds,
            "data": {"dataset": None, "source": source_fingerprint(manifest["fingerprint"])},
            "calibrated_from": "base model",
            "temperatures": temperatures.tolist(),
        }
        save_model(out, model, {"run": run})
        sums = {
            name: {c: s.reliability() for c, s in scores.items()}
            for name, scores in (("before", before), ("after", after))
        }
        ece = {"calibration genes": {"before": _ece(sums["before"]), "after": _ece(sums["after"])}}
        curves = {"base (before)": _curve(sums["before"]), "calibrated (after)": _curve(sums["after"])}
        if test:
            _, test_arrays = load_gene_arrays(data, test)
            t_before, t_after = {c: SiteScores() for c in (1, 2)}, {c: SiteScores() for c in (1, 2)}
            with Progress("calibrate: test genes", total=total_nt(test_arrays), unit="nt", enabled=None) as bar:
                for n, g in enumerate(test_arrays, 1):
                    labels = np.asarray(g.labels)
                    add_gene(t_before, base_probabilities(g.tracks, channels), labels)
                    add_gene(t_after, _apply(model, g), labels)
                    bar.update(len(labels), genes=f"{n:,}/{len(test_arrays):,}")
            ece["test genes"] = {
                "before": _ece({c: s.reliability() for c, s in t_before.items()}),
                "after": _ece({c: s.reliability() for c, s in t_after.items()}),
            }
        fitted = "per-class temperatures of the base model's log-probabilities: " + ", ".join(
            f"{name} T = {t:.3f}" for name, t in zip(("neither", "acceptor", "donor"), temperatures)
        )
        return _finish(out, "temperature", ece, curves, allowed, fitted, temperatures=temperatures.tolist())


def _apply(model, gene) -> np.ndarray:
    from meta_layer_cli.models.apply import recalibrate_arrays

    return recalibrate_arrays(model, gene.codes, gene.tracks).astype(np.float64)


def check_output_folder(out: str | os.PathLike, overwrite: bool, inputs: dict) -> None:
    """What :func:`fresh_folder` will do, checked before any work: ``out`` is none of ``inputs`` (flag -> path)
    and holds none of them (:func:`~meta_layer_cli.io.atomic.refuse_overwriting_inputs`), and is empty unless
    ``overwrite``."""
    refuse_overwriting_inputs({"--out": out}, inputs)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    if out.is_dir() and _leftovers(out) and not overwrite:
        raise InputDataError(f"{out} exists and is not empty; choose a new --out or pass --overwrite")


@contextlib.contextmanager
def fresh_folder(out: str | os.PathLike, overwrite: bool) -> Iterator[Path]:
    """``out`` as an empty folder for the ``with`` block, under its lock (one writer at a time: a second
    calibration into it is refused before anything is deleted): created, or emptied with ``overwrite``; a
    non-empty one is refused. Until the block ends, the folder holds the checkpoint's unfinished marker, so
    what it holds does not load: a block that fails or is interrupted (Ctrl-C) leaves it empty again, and one
    killed outright (SIGKILL, a node lost) leaves a folder that is refused when read and emptied by the next
    run without ``--overwrite``. Call :func:`check_output_folder` first, before the work whose result goes
    here."""
    from meta_layer_cli.models.checkpoint import UNFINISHED

    out = Path(out)
    with folder_lock(out, wait=0, what="writing into"):
        _empty(out, overwrite)
        (out / UNFINISHED).touch()
        try:
            yield out
        except BaseException:
            _empty(out, overwrite=True)
            raise
        (out / UNFINISHED).unlink()


def _leftovers(out: Path) -> list[Path]:
    """What ``out`` holds but its lock file; nothing when it holds an unfinished checkpoint (a killed
    calibration's, deleted without ``--overwrite``)."""
    from meta_layer_cli.models.checkpoint import UNFINISHED

    entries = [p for p in out.iterdir() if p.name != LOCK_NAME]
    return [] if (out / UNFINISHED).exists() else entries


def _empty(out: Path, overwrite: bool) -> None:
    """Delete what ``out`` holds but its lock file; refuse (nothing deleted) if it holds anything and not
    ``overwrite`` (an unfinished checkpoint is deleted)."""
    if _leftovers(out) and not overwrite:
        raise InputDataError(f"{out} exists and is not empty; choose a new --out or pass --overwrite")
    for entry in [p for p in out.iterdir() if p.name != LOCK_NAME]:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _finish(
    out: Path, method: str, ece: dict, curves: dict, genes: list[str], fitted: str, **extra
) -> CalibrationResult:
    from meta_layer_cli.evaluation.report import write_reliability_plot
    from meta_layer_cli.models.checkpoint import update_checkpoint_config

    plot = write_reliability_plot(out / "reliability.png", curves, f"{method} calibration (calibration genes)")
    update_checkpoint_config(out, {"calibration_report": {"method": method, "ece": ece, "genes": len(genes), **extra}})
    write_json_atomic(out / "calibration.json", {"method": method, "ece": ece, "genes": genes, **extra})
    return CalibrationResult(out, method, ece, plot, genes, fitted)


@phase("calibrate")
def calibrate_checkpoint(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    method: str = "temperature",
    data: list[str | os.PathLike] | str | os.PathLike | None = None,
    genes: list[str] | None = None,
    device: str | None = None,
    models_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    allow_partial: bool = False,
) -> CalibrationResult:
    """``temperature`` or ``isotonic`` calibration of a canonical checkpoint on its validation genes
    (module docstring) -> a calibrated copy in ``out``. An unfinished ``data`` folder is refused unless
    ``allow_partial``."""
    from meta_layer_cli.jobs.canonical import checkpoint_data
    from meta_layer_cli.models.apply import CanonicalPredictor
    from meta_layer_cli.models.checkpoint import CanonicalCheckpoint, copy_checkpoint, update_checkpoint_config
    from meta_layer_cli.models.site_calibration import SiteCalibration

    if method not in ("temperature", "isotonic"):
        raise UsageError(f"--method {method!r}: a canonical checkpoint takes temperature or isotonic")
    check_output_folder(out, overwrite, {"--checkpoint": checkpoint, "--data": data})
    device = str(resolve_device(device))  # once per job: --device, else the one default (auto)
    stored = CanonicalCheckpoint.read(checkpoint)
    config, run = stored.config, stored.run
    if stored.calibration:
        raise InputDataError(
            f"{checkpoint} is already calibrated ({config['calibration']['method']}); calibrate the "
            "uncalibrated checkpoint instead"
        )
    split = stored.split
    needed = split["validation"] + split["test"] if not genes else None  # a demo checkpoint: these genes' tracks
    dirs, same = checkpoint_data(checkpoint, data, device, models_dir=models_dir, needed=needed)
    for d in dirs:
        require_complete(d, None, allow_partial)
    if not same:
        raise InputDataError(
            "calibration must use the checkpoint's own validation genes: give the --data it was trained on"
        )
    if genes:
        genes = resolve_gene_names(genes, read_manifest(dirs[0])["genes"])  # names or ids, as --genes takes them
        held_out = set(split["test"])
        refused = [g for g in genes if g in held_out]
        if refused:
            raise InputDataError(
                f"{len(refused)} of --genes are the checkpoint's test genes (e.g. {refused[0]}): "
                "calibration must not see them"
            )
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
    # streamed: per-bin summaries of the checkpoint's scores (what the map is fitted on), exact reliability
    # sums and F1 thresholds before calibration
    binned = {c: BinnedScores() for c in (1, 2)}
    before = {c: SiteScores() for c in (1, 2)}
    with Progress("calibrate: calibration genes", total=total_nt(arrays), unit="nt", enabled=None) as bar:
        for n, g in enumerate(arrays, 1):
            probs, labels = predictor(g.codes, g.tracks), np.asarray(g.labels)
            add_gene(before, probs, labels)
            add_gene(binned, probs, labels)
            bar.update(len(labels), genes=f"{n:,}/{len(arrays):,}")
    fitted = SiteCalibration.fit_binned({c: b.points() for c, b in binned.items()}, method)
    with fresh_folder(out, overwrite) as out:
        copy_checkpoint(checkpoint, out)
        thresholds = dict(run.get("thresholds") or {})
        # the maps are increasing: the F1-optimal threshold after calibration is the calibrated one before
        thresholds["meta"] = {
            str(c): float(fitted.map_class(c, np.array([s.f1_optimal_threshold()]))[0]) for c, s in before.items()
        }
        update_checkpoint_config(out, {"calibration": fitted.to_dict(), "run": {**run, "thresholds": thresholds}})
        sums = {
            "before": {c: s.reliability() for c, s in before.items()},
            "after": {c: b.reliability(fitted.map_class(c, b.points()[0])) for c, b in binned.items()},
        }
        ece = {"calibration genes": {"before": _ece(sums["before"]), "after": _ece(sums["after"])}}
        curves = {"before": _curve(sums["before"]), "after": _curve(sums["after"])}
        if split["test"]:
            _, test = load_gene_arrays(dirs, split["test"])
            t_before, t_after = {c: SiteScores() for c in (1, 2)}, {c: SiteScores() for c in (1, 2)}
            with Progress("calibrate: test genes", total=total_nt(test), unit="nt", enabled=None) as bar:
                for n, g in enumerate(test, 1):
                    probs, labels = predictor(g.codes, g.tracks), np.asarray(g.labels)
                    add_gene(t_before, probs, labels)
                    add_gene(t_after, fitted(probs), labels)
                    bar.update(len(labels), genes=f"{n:,}/{len(test):,}")
            ece["test genes"] = {
                "before": _ece({c: s.reliability() for c, s in t_before.items()}),
                "after": _ece({c: s.reliability() for c, s in t_after.items()}),
            }
        return _finish(out, method, ece, curves, chosen, fitted.describe())
