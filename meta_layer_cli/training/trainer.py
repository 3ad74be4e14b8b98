"""The trainer: AdamW, warm-up + cosine, early stopping on validation PR-AUC, resumable checkpoints.

Runs on one device, or on several processes under ``torchrun`` (DistributedDataParallel;
gloo on CPU, NCCL on GPUs): each rank draws its own chunks, rank 0 validates and
writes checkpoints.
"""

from __future__ import annotations

import json
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
    # wall-clock budget for the epochs of one fit() call; the epoch count (and with it the cosine schedule)
    # shrinks to what fits once the first epochs are timed, so the schedule still ends decayed
    max_minutes: float | None = None
    grad_clip: float = 1.0
    normalizer_chunks: int = 64
    seed: int = 0
    device: str = "auto"
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


def epochs_within_budget(epoch: int, limit: int, epochs_timed: int, seconds: float, budget_seconds: float) -> int:
    """The epoch count to stop at: ``limit``, lowered so the epochs left fit in what remains of the budget.

    ``epochs_timed`` epochs took ``seconds`` (validation included); the next ones are assumed to take as
    long each. Never below ``epoch`` (the epochs done) and never raised.
    """
    per_epoch = seconds / max(epochs_timed, 1)
    left = max(budget_seconds - seconds, 0.0)
    return max(epoch, min(limit, epoch + int(left // per_epoch) if per_epoch > 0 else limit))


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

    def _lr(self, step: int, total: int) -> float:
        c = self.config
        if step < c.warmup_steps:
            return c.lr * (step + 1) / c.warmup_steps
        progress = (step - c.warmup_steps) / max(total - c.warmup_steps, 1)
        return c.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

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
    ) -> TrainState:
        """Train ``model`` in place; ``out_dir/best`` and ``out_dir/last`` hold checkpoints.

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
        optimizer = torch.optim.AdamW(trainable, lr=c.lr, weight_decay=c.weight_decay)
        if resuming:
            _load_optimizer(last / "optimizer", optimizer)
        net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
        steps_per_epoch = math.ceil(c.chunks_per_epoch / c.batch_size)
        epoch_limit = c.epochs  # lowered by max_minutes; the budget is this call's, also when resuming
        total_steps = epoch_limit * steps_per_epoch
        fit_started, epochs_this_fit = time.perf_counter(), 0
        shown = ""  # the last validation result, kept on screen through the next epoch
        while state.epoch < epoch_limit and state.epochs_without_improvement < c.patience:
            with Progress(f"epoch {state.epoch + 1}/{epoch_limit}", total=steps_per_epoch, unit="steps",
                          enabled=c.progress and rank == 0, announce=False) as bar:  # fmt: skip
                net.train()
                torch.manual_seed(c.seed * 100_003 + state.epoch * 101 + rank)
                rng = np.random.default_rng([c.seed, state.epoch, rank])
                if shown:
                    bar.update(0, val=shown)
                started, losses = time.perf_counter(), []
                for x, t, y in sampler.batches(c.chunks_per_epoch, c.batch_size, rng):
                    for group in optimizer.param_groups:
                        group["lr"] = self._lr(state.step, total_steps)
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
                state.epoch += 1
                epochs_this_fit += 1
                if rank == 0:
                    metrics = self._validate(model, val_batches, device)
                    seconds = round(time.perf_counter() - started, 2)
                    record = {"epoch": state.epoch, "train_loss": float(np.mean(losses)), "seconds": seconds}
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
                    bar.log(f"loss {record['train_loss']:.4f}, validation PR-AUC {shown}, {seconds:.0f} s"
                            + (", best so far" if improved else ""))  # fmt: skip
                if c.max_minutes is not None:
                    elapsed, budget = time.perf_counter() - fit_started, 60 * c.max_minutes
                    epoch_limit = epochs_within_budget(state.epoch, epoch_limit, epochs_this_fit, elapsed, budget)
                if world > 1:
                    # rank 0's clock decides the budget for all, so every rank stops after the same epoch
                    flags = torch.tensor([state.epochs_without_improvement, epoch_limit], device=device)
                    dist.broadcast(flags, 0)
                    state.epochs_without_improvement, epoch_limit = (int(v) for v in flags.tolist())
                total_steps = epoch_limit * steps_per_epoch
        return state
