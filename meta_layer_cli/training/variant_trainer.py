"""Training the variant models on measured effects: AdamW, early stopping on held-out exons.

Losses by model task:

* delta predictors (regression): Huber (default) or MSE between the prediction and the
  target, both divided by ``scale[kind]``, where ``scale`` is the standard deviation of
  the training targets of that kind (so delta PSI in percent and log2 ratios weigh
  alike); with quantile heads, the pinball loss over the quantiles;
* ``splice_inducing``: binary cross-entropy on ``|target| >= threshold[kind]``;
* ``effect_type``: cross-entropy on the effect labels (rows with an unknown type skipped);
* ``unified``: the sum of both (effect term weighted by ``effect_weight``).

The best epoch by validation loss is kept (weights restored at the end).
"""

from __future__ import annotations

import copy
import logging
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn

from meta_layer_cli.features.variants import DEFAULT_THRESHOLDS, TARGET_KINDS, VariantDataset
from meta_layer_cli.models.calibration import pinball_loss
from meta_layer_cli.models.variant import VariantInputs, VariantModel, model_outputs
from meta_layer_cli.runtime.device import check_device_name, full_precision_convolutions
from meta_layer_cli.runtime.errors import InputDataError
from meta_layer_cli.training.variant_config import VariantTrainingSection

logger = logging.getLogger(__name__)


class VariantTrainerConfig(VariantTrainingSection):
    """The ``training`` section of a ``train-delta`` config plus what a run fills in: ``batch_size`` and
    ``device`` (from its ``hardware`` section; ``auto``, ``cpu``, ``cuda[:N]`` or ``mps``), thresholds, seed."""

    thresholds: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    seed: int = 0
    batch_size: int = Field(32, gt=0)
    device: str = "auto"

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        return check_device_name(value)


def target_scales(dataset: VariantDataset) -> dict[str, float]:
    """Standard deviation of the finite targets per kind present (1.0 where it is 0 or undefined)."""
    out = {}
    for k in np.unique(dataset.kind):
        t = dataset.target[(dataset.kind == k) & np.isfinite(dataset.target)]
        sd = float(np.std(t)) if len(t) > 1 else 0.0
        out[TARGET_KINDS[int(k)]] = sd if sd > 1e-8 else 1.0
    return out


def trainable_rows(model: VariantModel, dataset: VariantDataset) -> np.ndarray:
    """Rows the model's loss can use: a measured target (effect label for ``effect_type``)."""
    if model.task == "multiclass":
        return np.flatnonzero(dataset.effect >= 0)
    return np.flatnonzero(np.isfinite(dataset.target))


class VariantTrainer:
    """Fits one variant model on a :class:`VariantDataset`, early-stopping on a validation dataset."""

    def __init__(self, config: VariantTrainerConfig | None = None):
        self.config = config or VariantTrainerConfig()

    def _device(self) -> torch.device:
        from meta_layer_cli.runtime.device import resolve_device

        return resolve_device(self.config.device)

    def loss(
        self, model: VariantModel, batch: dict[str, torch.Tensor], labels: torch.Tensor, effects: torch.Tensor
    ) -> torch.Tensor:
        """The training loss of one batch (see the module docstring)."""
        c = self.config
        kind = batch["kind"]
        if model.task == "regression":
            scale = model.target_scale[kind]
            z = model.quantiles(VariantInputs.from_batch(batch), kind, batch["ref_psi"]) / scale[:, None]
            t = batch["target"] / scale
            if model.config.calibration == "quantile":
                return pinball_loss(z, t, model.quantile_levels)
            if c.loss == "mse":
                return F.mse_loss(z[:, 0], t)
            return F.huber_loss(z[:, 0], t, delta=c.huber_delta)
        out = model_outputs(model, batch)
        total = torch.zeros((), device=labels.device)
        if "logit" in out:
            total = total + F.binary_cross_entropy_with_logits(out["logit"], labels)
        if "effect_logits" in out and bool((effects >= 0).any()):
            weight = c.effect_weight if model.task == "unified" else 1.0
            total = total + weight * F.cross_entropy(out["effect_logits"], effects, ignore_index=-1)
        return total

    def _batches(self, dataset: VariantDataset, rows: np.ndarray, labels: np.ndarray, rng, device, shuffle: bool):
        order = rng.permutation(rows) if shuffle else rows
        for i in range(0, len(order), self.config.batch_size):
            idx = order[i : i + self.config.batch_size]
            batch = dataset.batch(idx, device)
            yield (
                batch,
                torch.from_numpy(np.nan_to_num(labels[idx]).astype(np.float32)).to(device),
                torch.from_numpy(dataset.effect[idx]).to(device),
            )

    @torch.no_grad()
    def _evaluate_loss(self, model: VariantModel, dataset: VariantDataset, device) -> float:
        model.eval()
        rows = trainable_rows(model, dataset)
        labels = dataset.labels(self.config.thresholds)
        total, n = 0.0, 0
        for batch, y, e in self._batches(dataset, rows, labels, None, device, shuffle=False):
            with full_precision_convolutions():  # as the model will be applied
                total += float(self.loss(model, batch, y, e)) * len(y)
            n += len(y)
        return total / n if n else float("nan")

    def fit(self, model: VariantModel, train: VariantDataset, validation: VariantDataset | None = None) -> dict:
        """Train ``model`` in place (best validation epoch restored); returns ``{"history", "best_epoch", ...}``.

        Without ``validation`` it trains all ``epochs`` and keeps the last weights.
        """
        c = self.config
        device = self._device()
        torch.manual_seed(c.seed)
        rng = np.random.default_rng(c.seed)
        rows = trainable_rows(model, train)
        if len(rows) == 0:
            raise InputDataError("no training rows with a measured target")
        if model.task == "regression":
            scales = target_scales(train.subset(rows))
            model.set_target_scales(scales)
            psi = train.ref_psi[rows][train.kind[rows] == TARGET_KINDS.index("delta_psi_percent")]
            if np.isfinite(psi).any():  # the logit_psi link's stand-in for rows without a reference PSI
                model.config.reference_psi = float(np.nanmedian(psi))
        kinds = sorted({TARGET_KINDS[int(k)] for k in np.unique(train.kind[rows])}, key=TARGET_KINDS.index)
        model.config.target_kinds = kinds
        labels = train.labels(c.thresholds)
        model.to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        history: list[dict] = []
        best_loss, best_epoch, best_state, stale = math.inf, -1, None, 0
        for epoch in range(1, c.epochs + 1):
            model.train()
            started, losses = time.perf_counter(), []
            for step, (batch, y, e) in enumerate(self._batches(train, rows, labels, rng, device, shuffle=True)):
                if c.max_steps_per_epoch is not None and step >= c.max_steps_per_epoch:
                    break
                loss = self.loss(model, batch, y, e)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
                optimizer.step()
                losses.append(float(loss.detach()))
            record = {
                "epoch": epoch,
                "train_loss": float(np.mean(losses)) if losses else float("nan"),
                "seconds": round(time.perf_counter() - started, 2),
            }
            if validation is not None:
                val = self._evaluate_loss(model, validation, device)
                record["val_loss"] = val
                if best_state is None or (math.isfinite(val) and val < best_loss):
                    best_loss, best_epoch, stale = val, epoch, 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    stale += 1
            history.append(record)
            # library code logs (the command line routes the package's logger to stderr); stdout is for results
            shown = f" val {record['val_loss']:.4f}" if "val_loss" in record else ""
            logger.log(
                logging.INFO if c.progress else logging.DEBUG,
                f"epoch {epoch}: train {record['train_loss']:.4f}{shown} ({record['seconds']} s)",
            )
            if validation is not None and stale >= c.patience:
                break
        if best_state is not None:
            model.load_state_dict(best_state)
        else:
            best_epoch = len(history)
        model.eval()
        return {
            "history": history,
            "best_epoch": best_epoch,
            "best_val_loss": best_loss,
            "target_kinds": kinds,
            "target_scales": {k: float(model.target_scale[TARGET_KINDS.index(k)]) for k in kinds},
        }
