import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from meta_layer_cli.models import MetaModelConfig, build_meta_model
from meta_layer_cli.models.apply import recalibrate_arrays
from meta_layer_cli.models.checkpoint import load_model
from meta_layer_cli.training import Trainer, TrainerConfig
from meta_layer_cli.training.trainer import decay_groups, schedule_progress
from tests.conftest import TINY_MODEL, TINY_TRAINING


def _fit(arrays, out, **changes):
    channels, genes = arrays
    torch.manual_seed(0)
    model = build_meta_model(MetaModelConfig(channels=channels, **TINY_MODEL))
    state = Trainer(TrainerConfig(**{**TINY_TRAINING, **changes})).fit(model, channels, genes[:7], genes[7:], out)
    return model, state


def _weights(directory):
    return load_file(str(Path(directory) / "model.safetensors"))


def test_training_is_deterministic_on_cpu(osai80_arrays, tmp_path):
    _, s1 = _fit(osai80_arrays, tmp_path / "a")
    _, s2 = _fit(osai80_arrays, tmp_path / "b")
    assert s1.history[-1]["train_loss"] == s2.history[-1]["train_loss"]
    wa, wb = _weights(tmp_path / "a" / "last"), _weights(tmp_path / "b" / "last")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (tmp_path / "a" / "best" / "config.json").is_file()
    # the normaliser was fitted (training genes only), and training moved the head off zero
    assert not torch.equal(wa["normalizer.std"], torch.ones_like(wa["normalizer.std"]))
    assert wa["head.weight"].abs().sum() > 0


def test_resume_continues_where_it_stopped(osai80_arrays, tmp_path, monkeypatch):
    _fit(osai80_arrays, tmp_path / "full", epochs=2)
    validate = Trainer._validate
    calls = []

    def killed_in_epoch_2(self, *args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the job dies before epoch 2 is checkpointed
        return validate(self, *args)

    monkeypatch.setattr(Trainer, "_validate", killed_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        _fit(osai80_arrays, tmp_path / "split", epochs=2)
    monkeypatch.setattr(Trainer, "_validate", validate)
    _, state = _fit(osai80_arrays, tmp_path / "split", epochs=2)  # picks up epoch 1's checkpoint
    assert [h["epoch"] for h in state.history] == [1, 2]
    full, resumed = _weights(tmp_path / "full" / "last"), _weights(tmp_path / "split" / "last")
    assert all(torch.allclose(full[k], resumed[k], atol=1e-6) for k in full)


def test_schedule_progress_follows_the_steps_or_the_clock_whichever_is_further():
    assert schedule_progress(50, 200, 10.0, None) == 0.25
    assert schedule_progress(50, 200, 150.0, 300.0) == 0.5  # the clock is further on
    assert schedule_progress(150, 200, 30.0, 300.0) == 0.75  # the steps are
    assert schedule_progress(10, 200, 400.0, 300.0) == 1.0  # over budget: fully decayed


def test_max_minutes_stops_within_the_epoch(osai80_arrays, tmp_path):
    # 16 chunks of 8 per epoch = 2 steps; a budget that the first step overruns stops after it, mid-epoch,
    # then validates and checkpoints what it has
    _, state = _fit(osai80_arrays, tmp_path / "budget", epochs=6, patience=6, max_minutes=1e-6)
    assert [(h["epoch"], h["step"]) for h in state.history] == [(1, 1)]
    assert (tmp_path / "budget" / "best" / "model.safetensors").is_file()


def test_no_weight_decay_on_the_base_map_temperature_biases_and_norms(osai80_arrays):
    channels, _ = osai80_arrays
    model = build_meta_model(MetaModelConfig(channels=channels, **TINY_MODEL), seed=0)
    decayed, plain = decay_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    plain_names = {names[id(p)] for p in plain["params"]}
    assert {"base.proj.weight", "base.proj.bias", "log_temperature", "head.bias"} <= plain_names
    assert "head.weight" in {names[id(p)] for p in decayed["params"]} and decayed["weight_decay"] == 0.01
    assert all(p.ndim >= 2 for p in decayed["params"]) and plain["weight_decay"] == 0.0
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_early_stopping_with_progress_bar(osai80_arrays, tmp_path, caplog):
    with caplog.at_level("INFO"):
        _, state = _fit(osai80_arrays, tmp_path, epochs=20, patience=1, lr=1e-9, progress=True)
    assert len(state.history) < 20 and state.epochs_without_improvement == 1
    # the last epoch's line says why training stopped (the demo stopped at epoch 7/8 without a word)
    last = [m for m in caplog.messages if "validation PR-AUC" in m][-1]
    assert f"early stop: 1 epoch without improvement, best epoch {state.best_epoch}" in last


DDP_SCRIPT = """
import json, sys, torch
from meta_layer_cli.artifacts import load_gene_arrays
from meta_layer_cli.models import MetaModelConfig, build_meta_model
from meta_layer_cli.models.apply import recalibrate_arrays
from meta_layer_cli.models.checkpoint import load_model
from meta_layer_cli.training import Trainer, TrainerConfig
from tests.conftest import TINY_MODEL, TINY_TRAINING, SMALL_DEMO_GENES
channels, genes = load_gene_arrays(sys.argv[1], SMALL_DEMO_GENES)
torch.manual_seed(0)
model = build_meta_model(MetaModelConfig(channels=channels, **TINY_MODEL))
Trainer(TrainerConfig(**TINY_TRAINING)).fit(model, channels, genes[:7], genes[7:], sys.argv[2])
import torch.distributed as dist
total = sum(p.double().sum() for p in model.parameters()).item()
# one file per rank: the two processes' prints can interleave on the shared stdout
report = {"rank": dist.get_rank(), "world": dist.get_world_size(), "checksum": total}
open(f"{sys.argv[2]}/result{dist.get_rank()}.json", "w").write(json.dumps(report))
"""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_process_ddp_with_gloo(osai80_tracks, tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}"]
    out = subprocess.run(
        [*launcher, str(script), str(osai80_tracks), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    reports = [json.loads(f.read_text()) for f in sorted((tmp_path / "run").glob("result*.json"))]
    assert sorted(r["rank"] for r in reports) == [0, 1] and {r["world"] for r in reports} == {2}
    # gradients were averaged across ranks: both replicas hold the same weights
    assert reports[0]["checksum"] == pytest.approx(reports[1]["checksum"], rel=1e-6)
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()


def _candidate_nll(model, genes) -> float:
    """Mean negative log-likelihood of the true class where the base model sees a candidate (a site type
    >= 0.01): the positions the window model rescores."""
    probs = np.concatenate([recalibrate_arrays(model, g.codes, g.tracks) for g in genes])
    labels = np.concatenate([g.labels for g in genes])
    candidates = np.concatenate([g.tracks[1:].max(axis=0) for g in genes]) >= 0.01
    return float(-np.log(np.clip(probs[candidates, labels[candidates]], 1e-9, 1)).mean())


def test_v1_window_model_fits_its_genes_and_round_trips(osai80_arrays, tmp_path):
    """The window model learns from its one-nucleotide chunks: the log-loss at the training genes'
    candidates falls below the base model's (the untrained model is the base model). Measured
    0.482 -> 0.387 / 0.420 / 0.415 (seeds 0-2); with the labels shuffled within each batch
    0.474-0.513, so calibration alone does not pass. The checkpoint gives back the same predictions."""
    channels, genes = osai80_arrays
    torch.manual_seed(0)
    model = build_meta_model(MetaModelConfig(channels=channels, version="v1", window=101, **TINY_MODEL))
    before = _candidate_nll(model, genes[:7])
    config = TrainerConfig(
        **{**TINY_TRAINING, "epochs": 3, "chunks_per_epoch": 512, "batch_size": 32, "lr": 5e-3, "validation_chunks": 64}
    )
    state = Trainer(config).fit(model, channels, genes[:7], genes[7:], tmp_path)
    assert state.epoch == 3
    after = _candidate_nll(model, genes[:7])
    assert after < 0.92 * before, (before, after)
    again, saved = load_model(tmp_path / "last")
    assert saved["model"]["version"] == "v1" and saved["epoch"] == 3
    for g in genes[:2]:  # short genes: the window model runs one window per nucleotide
        np.testing.assert_array_equal(
            recalibrate_arrays(again, g.codes, g.tracks), recalibrate_arrays(model, g.codes, g.tracks)
        )


def _padded_features(model, genes, pad: int) -> torch.Tensor:
    """Score features ``[F, N]`` of every position of ``genes`` and of ``pad`` nt of zero tracks each side (what a
    chunk hanging over a gene's end sees)."""
    out = []
    for g in genes:
        tracks = np.pad(g.tracks, ((0, 0), (pad, pad)))
        out.append(model.features(torch.from_numpy(tracks)[None])[0])
    return torch.cat(out, dim=1)


def test_the_feature_normaliser_is_fitted_on_training_genes_only(osai80_arrays, tmp_path):
    """The normaliser's statistics come from training chunks: with validation genes whose tracks lie far outside
    anything the training genes hold (+5 on every score), each feature's fitted mean stays within the range of
    that feature on the training genes (zero-padded, as chunks over a gene's end are) and each std within its
    span. Fitted on validation chunks instead, the score features' means would be near 5."""
    from meta_layer_cli.artifacts.arrays import GeneArrays

    channels, genes = osai80_arrays
    train = genes[:7]
    # in-memory copies with shifted tracks (loaded genes are memory-mapped views of the gene store)
    validation = [GeneArrays(g.gene_id, g.codes, g.tracks + 5.0, g.labels) for g in genes[7:]]
    torch.manual_seed(0)
    model = build_meta_model(MetaModelConfig(channels=channels, **TINY_MODEL))
    Trainer(TrainerConfig(**{**TINY_TRAINING, "epochs": 1})).fit(model, channels, train, validation, tmp_path)
    features = _padded_features(model, train, pad=TINY_TRAINING["chunk"] + 200)
    low, high = features.min(dim=1).values, features.max(dim=1).values
    mean, std = model.normalizer.mean, model.normalizer.std
    outside = [n for n, m, lo, hi in zip(model.features.names, mean, low, high) if not lo - 1e-4 <= m <= hi + 1e-4]
    assert not outside, f"normaliser means outside the training genes' range: {outside}"
    assert torch.all(std <= (high - low) + 1e-4) and not torch.equal(std, torch.ones_like(std))
    saved = _weights(tmp_path / "last")  # the statistics travel in the checkpoint
    assert torch.equal(saved["normalizer.mean"], mean) and torch.equal(saved["normalizer.std"], std)


def test_the_start_of_run_estimate_counts_validation_the_budget_and_the_finishing_phase(caplog):
    trainer = Trainer(TrainerConfig(patience=100))
    with caplog.at_level("INFO", logger="meta_layer_cli.training.trainer"):
        # 100 steps of 1 s in epochs of 10, 2 s per validation: 120 s unconstrained, so a 30-s budget holds
        # int(30 / 1.2) = 25 steps in 3 epochs, and the last validation runs after the budget: 32 s + 60 s after
        trainer._announce_estimate(1.0, 100, 10, 30.0, 2.0, 60.0)
        trainer._announce_estimate(1.0, 100, 10, None, 2.0, None)
    budgeted, free = caplog.messages
    assert "about 25 steps in 3 epochs, 0.5 min (the time budget; 100 steps would take 2.0 min)" in budgeted
    assert "the whole run about 1.5 min" in budgeted
    assert "about 100 steps in 10 epochs, 2.0 min" in free and "whole run" not in free


def test_the_estimate_does_not_change_what_is_trained(osai80_arrays, tmp_path, monkeypatch):
    # the estimate times a validation batch's forward pass mid-epoch: the trained weights must not depend on it
    import meta_layer_cli.training.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "ESTIMATE_AFTER_STEPS", 1)
    quiet, _ = _fit(osai80_arrays, tmp_path / "quiet")
    shown, _ = _fit(osai80_arrays, tmp_path / "shown", progress=True)
    for name, value in quiet.state_dict().items():
        assert torch.equal(value, shown.state_dict()[name]), name
