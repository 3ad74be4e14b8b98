"""The trainer: AdamW, warm-up + cosine, early stopping on validation PR-AUC, resumable checkpoints.

Runs on one device, or on several processes under ``torchrun`` (DistributedDataParallel;
gloo on CPU, NCCL on GPUs): each rank draws its own chunks, rank 0 validates and
writes checkpoints.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from meta_layer_cli.artifacts import GeneArrays
from meta_layer_cli.evaluation.metrics import average_precision
from meta_layer_cli.io.atomic import atomic_path, write_json_atomic
from meta_layer_cli.models.apply import model_margin
from meta_layer_cli.models.checkpoint import save_model
from meta_layer_cli.runtime.device import autocast, resolve_device
from meta_layer_cli.runtime.progress import Progress
from meta_layer_cli.training.data import IGNORE, ChunkSampler

LAST, BEST = "last", "best"
ESTIMATE_AFTER_STEPS = 10  # steps timed before the run's training time is estimated
logger = logging.getLogger(__name__)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


@dataclass
class TrainerConfig:
    epochs: int = 30
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    batch_size: int = 8
    chunk: int = 2000
    chunks_per_epoch: int = 400
    validation_chunks: int = 300
    random_fraction: float = 0.3
    candidate_threshold: float = 0.01
    patience: int = 5
    # wall-clock budget of one fit() call, checked after every step (validation included); the cosine schedule
    # follows whichever runs out first, the steps or the clock, so a run stopped by its budget ends decayed
    max_minutes: float | None = None
    grad_clip: float = 1.0
    normalizer_chunks: int = 64
    seed: int = 0
    device: str | torch.device | None = None
    amp: bool = True  # bf16 autocast on CUDA, fp16 on MPS; never on the CPU
    progress: bool = True


@dataclass
class TrainState:
    epoch: int = 0
    step: int = 0
    best_metric: float = -math.inf
    best_epoch: int = -1
    epochs_without_improvement: int = 0
    history: list[dict] = field(default_factory=list)


def schedule_progress(step: int, total_steps: int, elapsed: float, budget_seconds: float | None) -> float:
    """How far through training a step is, 0..1: by steps, or by the wall clock when a budget is set and
    runs out first. The cosine schedule follows it, so a run stopped by its budget ends decayed."""
    by_steps = step / max(total_steps, 1)
    if budget_seconds is None:
        return min(by_steps, 1.0)
    return min(max(by_steps, elapsed / budget_seconds), 1.0)


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: weight decay on weight matrices and kernels only. Biases, norms, the base
    model's identity map and the temperature are left alone: decaying them would pull the untrained
    model away from its base model (the identity map towards zero) for no regularising benefit."""
    decayed, plain = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        fixed = param.ndim < 2 or name.startswith("base.") or name == "log_temperature"
        (plain if fixed else decayed).append(param)
    return [{"params": decayed, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def distributed_rank() -> tuple[int, int]:
    """(rank, world size), joining the ``torchrun`` process group on first use (``(0, 1)`` without one)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _save_optimizer(path: Path, optimizer: torch.optim.Optimizer) -> None:
    state = optimizer.state_dict()
    tensors = {
        f"{idx}.{name}": (value if torch.is_tensor(value) else torch.tensor(value)).detach().cpu().contiguous()
        for idx, entry in state["state"].items()
        for name, value in entry.items()
    }
    with atomic_path(path.with_suffix(".safetensors")) as tmp:
        save_file(tensors, str(tmp))
    write_json_atomic(path.with_suffix(".json"), state["param_groups"])


def _load_optimizer(path: Path, optimizer: torch.optim.Optimizer) -> None:
    tensors = load_file(str(path.with_suffix(".safetensors")))
    with open(path.with_suffix(".json")) as fh:
        groups = json.load(fh)
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


class Trainer:
    """Fits a meta model on training genes, early-stopping on validation genes."""

    def __init__(self, config: TrainerConfig):
        self.config = config

    def _lr(self, step: int, progress: float) -> float:
        """Linear warm-up over ``warmup_steps``, then a cosine from ``lr`` to 0 over ``progress`` (0..1, see
        :func:`schedule_progress`)."""
        c = self.config
        if step < c.warmup_steps:
            return c.lr * (step + 1) / c.warmup_steps
        return c.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    @staticmethod
    def _out_of_time(elapsed: float, budget: float, world: int, device: torch.device) -> bool:
        """Whether the wall-clock budget is spent; under torchrun rank 0's clock decides for every rank, so all
        ranks stop after the same step."""
        spent = torch.tensor([float(elapsed >= budget)], device=device)
        if world > 1:
            dist.broadcast(spent, 0)
        return bool(spent.item())

    def _announce_estimate(
        self,
        per_step: float,
        total_steps: int,
        steps_per_epoch: int,
        budget: float | None,
        validation_s: float,
        finishing_s: float | None,
    ) -> None:
        """One line, once the first steps are timed: what the training phase (steps and the validation after each
        epoch, within the budget) will take, and with ``finishing_s`` (what the run does after training) the
        whole run. Early stopping can make it shorter."""
        epochs = math.ceil(total_steps / steps_per_epoch)
        loop = total_steps * per_step + epochs * validation_s
        steps = total_steps
        reason = ""
        if budget is not None and loop > budget:
            # the budget counts validation too, and the last epoch is validated after it runs out
            steps = int(budget / (per_step + validation_s / steps_per_epoch))
            epochs = math.ceil(steps / steps_per_epoch)
            reason = f" (the time budget; {total_steps:,} steps would take {_minutes(loop)})"
            loop = budget + validation_s
        text = (
            f"training: {per_step:.2f} s per step, {validation_s:.0f} s per validation; about {steps:,} steps in "
            f"{epochs:,} epochs, {_minutes(loop)}{reason}"
        )
        if finishing_s is not None:
            text += (
                f", then the validation genes (decoder fit, thresholds) and the test evaluation, about "
                f"{_minutes(finishing_s)}: the whole run about {_minutes(loop + finishing_s)}"
            )
        logger.info(text + (" or less if it stops early" if self.config.patience < epochs else ""))

    @torch.no_grad()
    def _validation_seconds(self, model: nn.Module, batches: list, device: torch.device) -> float:
        """One validation's time, from one batch's forward pass (the model is left in training mode)."""
        if not batches:
            return 0.0
        model.eval()
        x, t, _ = batches[0]
        started = time.perf_counter()
        model.predict_proba(x.to(device), t.to(device))
        seconds = (time.perf_counter() - started) * len(batches)
        model.train()
        return seconds

    @torch.no_grad()
    def _validate(self, model: nn.Module, batches: list, device: torch.device) -> dict:
        model.eval()
        probs, labels = [], []
        for x, t, y in batches:
            p = self._aligned(model.predict_proba(x.to(device), t.to(device)), y)
            probs.append(p.transpose(1, 2).reshape(-1, 3).cpu())
            labels.append(y.reshape(-1))
        p, y = torch.cat(probs).numpy(), torch.cat(labels).numpy()
        keep = y != IGNORE
        p, y = p[keep], y[keep]
        ap_a, ap_d = average_precision(p[:, 1], y == 1), average_precision(p[:, 2], y == 2)
        nll = float(F.nll_loss(torch.log(torch.from_numpy(p).clamp_min(1e-9)), torch.from_numpy(y).long()))
        return {
            "val_pr_auc_acceptor": ap_a,
            "val_pr_auc_donor": ap_d,
            "val_pr_auc_macro": (ap_a + ap_d) / 2,
            "val_nll": nll,
        }

    def _aligned(self, out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Model output cut to the labelled positions: ``[B, 3, chunk]`` (V1's ``[B, 3]`` gains a length axis)."""
        if out.ndim == 2:
            return out[..., None]
        return out[..., self._margin : self._margin + labels.shape[-1]]

    def _base_reference(self, channels: Sequence[str], batches: list) -> dict:
        """The base model's PR-AUC on the same validation positions, for comparison in the history."""
        from meta_layer_cli.features.scores import splice_groups

        groups = splice_groups(channels)
        if not groups:
            return {}
        _, a, d = groups[0]
        m = self._margin
        scores = torch.cat([t[:, [a, d], m : m + y.shape[-1]].transpose(1, 2).reshape(-1, 2) for _, t, y in batches])
        labels = torch.cat([y.reshape(-1) for _, _, y in batches])
        keep = labels != IGNORE
        scores, labels = scores[keep].numpy(), labels[keep].numpy()
        ap_a, ap_d = average_precision(scores[:, 0], labels == 1), average_precision(scores[:, 1], labels == 2)
        return {"val_base_pr_auc_macro": (ap_a + ap_d) / 2}

    def fit(
        self,
        model: nn.Module,
        channels: Sequence[str],
        train_genes: Sequence[GeneArrays],
        validation_genes: Sequence[GeneArrays],
        out_dir: str | os.PathLike,
        resume: bool = True,
        finishing_s: float | None = None,
    ) -> TrainState:
        """Train ``model`` in place; ``out_dir/best`` and ``out_dir/last`` hold checkpoints. ``finishing_s``: what
        the caller will spend after training (decoder fit, test evaluation), for the start-of-run estimate.

        Progress: a bar on a terminal, plain lines otherwise, and one line per epoch everywhere
        (loss, validation PR-AUC of the meta and of the base model, seconds).
        """
        c = self.config
        out_dir = Path(out_dir)
        rank, world = distributed_rank()
        device = resolve_device(c.device)
        # V1 window models learn from single-nucleotide "chunks" with half a window of context each side
        windowed = model.config.version == "v1"
        chunk = 1 if windowed else c.chunk
        self._margin = model.config.window // 2 if windowed else model_margin(model)
        sampler = ChunkSampler(train_genes, channels, chunk, self._margin, c.candidate_threshold, c.random_fraction)
        val_sampler = ChunkSampler(
            validation_genes, channels, chunk, self._margin, c.candidate_threshold, c.random_fraction
        )
        val_batches = list(val_sampler.batches(c.validation_chunks, c.batch_size, np.random.default_rng([c.seed, 999])))
        base_reference = self._base_reference(channels, val_batches)

        state = TrainState()
        last = out_dir / LAST
        resuming = resume and (last / "trainer_state.json").is_file()
        if resuming:
            from meta_layer_cli.models.checkpoint import WEIGHTS

            model.load_state_dict(load_file(str(last / WEIGHTS)))
            with open(last / "trainer_state.json") as fh:
                state = TrainState(**json.load(fh))
        else:
            torch.manual_seed(c.seed)
            feats = (
                model.features(t)
                for _, t, _ in sampler.batches(c.normalizer_chunks, c.batch_size, np.random.default_rng([c.seed, 998]))
            )
            model.normalizer.fit(feats)
        model.to(device)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(decay_groups(model, c.weight_decay), lr=c.lr)
        if resuming:
            _load_optimizer(last / "optimizer", optimizer)
        net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
        steps_per_epoch = math.ceil(c.chunks_per_epoch / c.batch_size)
        total_steps = c.epochs * steps_per_epoch
        # the budget is this call's, also when resuming: the schedule then runs from where it stopped by steps,
        # or by this call's clock, whichever is further
        budget = 60 * c.max_minutes if c.max_minutes is not None else None
        fit_started = time.perf_counter()
        out_of_time = False
        if rank == 0 and c.progress:
            limit = f", at most {c.max_minutes:g} min (training.max_minutes)" if budget is not None else ""
            logger.info(
                f"training: up to {c.epochs} epochs of {steps_per_epoch} steps ({c.batch_size} chunks of "
                f"{chunk:,} nt + {self._margin:,} nt of context each side), early stop after "
                f"{c.patience} epochs without improvement{limit}"
            )
        shown = ""  # the last validation result, kept on screen through the next epoch
        while state.epoch < c.epochs and state.epochs_without_improvement < c.patience and not out_of_time:
            with Progress(
                f"epoch {state.epoch + 1}/{c.epochs}",
                total=steps_per_epoch,
                unit="steps",
                enabled=c.progress and rank == 0,
                announce=False,
            ) as bar:
                net.train()
                torch.manual_seed(c.seed * 100_003 + state.epoch * 101 + rank)
                rng = np.random.default_rng([c.seed, state.epoch, rank])
                if shown:
                    bar.update(0, val=shown)
                started, losses = time.perf_counter(), []
                for x, t, y in sampler.batches(c.chunks_per_epoch, c.batch_size, rng):
                    progress = schedule_progress(state.step, total_steps, time.perf_counter() - fit_started, budget)
                    for group in optimizer.param_groups:
                        group["lr"] = self._lr(state.step, progress)
                    x, t, y = x.to(device), t.to(device), y.to(device)
                    with autocast(device, c.amp):
                        logits = self._aligned(net(x, t), y)
                    loss = F.cross_entropy(logits.float(), y, ignore_index=IGNORE)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    nn.utils.clip_grad_norm_(trainable, c.grad_clip)
                    optimizer.step()
                    state.step += 1
                    losses.append(loss.item())
                    bar.update(1, loss=f"{np.mean(losses[-20:]):.4f}")
                    if rank == 0 and c.progress and state.step == ESTIMATE_AFTER_STEPS and not resuming:
                        per_step = (time.perf_counter() - fit_started) / ESTIMATE_AFTER_STEPS
                        validation_s = self._validation_seconds(model, val_batches, device)
                        self._announce_estimate(
                            per_step, total_steps, steps_per_epoch, budget, validation_s, finishing_s
                        )
                    if budget is not None and self._out_of_time(
                        time.perf_counter() - fit_started, budget, world, device
                    ):
                        out_of_time = True
                        break
                state.epoch += 1
                if rank == 0:
                    metrics = self._validate(model, val_batches, device)
                    seconds = round(time.perf_counter() - started, 2)
                    record = {
                        "epoch": state.epoch,
                        "step": state.step,
                        "train_loss": float(np.mean(losses)),
                        "seconds": seconds,
                    }
                    record.update(metrics)
                    record.update(base_reference)
                    state.history.append(record)
                    score = metrics["val_pr_auc_macro"]
                    score = -math.inf if math.isnan(score) else score  # no sites in the validation chunks
                    improved = state.best_epoch < 0 or score > state.best_metric
                    if improved:
                        state.best_metric, state.best_epoch = score, state.epoch
                        state.epochs_without_improvement = 0
                        save_model(out_dir / BEST, model, {"epoch": state.epoch, "validation": metrics})
                    else:
                        state.epochs_without_improvement += 1
                    save_model(last, model, {"epoch": state.epoch})
                    _save_optimizer(last / "optimizer", optimizer)
                    write_json_atomic(last / "trainer_state.json", asdict(state))
                    shown = f"{metrics['val_pr_auc_macro']:.4f}" + (" *" if improved else "")
                    if base_reference:
                        shown += f" (base {base_reference['val_base_pr_auc_macro']:.4f})"
                    # a result, not progress: logged whatever the progress setting (the run's train.log keeps it)
                    bar.log(
                        f"loss {record['train_loss']:.4f}, validation PR-AUC {shown}, {seconds:.0f} s"
                        + (", best so far" if improved else "")
                        + (f"; time budget of {c.max_minutes:g} min reached" if out_of_time else "")
                        + (
                            f"; early stop: {c.patience} epoch{'s' if c.patience != 1 else ''} without improvement, "
                            f"best epoch {state.best_epoch}"
                            if state.epochs_without_improvement >= c.patience and not out_of_time
                            else ""
                        )
                    )
                if world > 1:
                    # rank 0 decides early stopping for all, so every rank stops after the same epoch
                    flags = torch.tensor([state.epochs_without_improvement], device=device)
                    dist.broadcast(flags, 0)
                    state.epochs_without_improvement = int(flags.item())
        return state
