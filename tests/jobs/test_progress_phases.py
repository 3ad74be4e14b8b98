"""No phase of prepare, train-canonical, evaluate, calibrate or predict is silent longer than the progress
interval: from a command's start to its end, its progress lines never leave a longer gap (with a small interval,
on real genes)."""

import logging
import time

import pytest

from meta_layer_cli.runtime import progress as progress_module
from tests.conftest import GENOME_CHR1, GENOME_CHR3, TINY_MODEL, TINY_TRAINING, shared_path

INTERVAL = 0.25
# the heartbeat thread needs the interpreter now and then; on a busy 2-core machine it may come late by this much
SLACK = 3.0


def _gaps(records, command: str, started: float, ended: float) -> tuple[list[str], float]:
    """The command's progress lines and the longest silence from its start to its end."""
    lines = [r for r in records if r.name == "meta_layer_cli.progress"]
    times = [started] + [r.created for r in lines] + [ended]
    return [r.getMessage() for r in lines], max(b - a for a, b in zip(times, times[1:]))


@pytest.mark.slow
def test_every_phase_of_every_command_writes_lines(small_genome, tmp_path, monkeypatch, caplog):
    from meta_layer_cli.jobs.calibrate import calibrate_checkpoint
    from meta_layer_cli.jobs.canonical import evaluate_checkpoint, run_canonical_training
    from meta_layer_cli.jobs.predict import predict_genes
    from meta_layer_cli.jobs.prepare import prepare

    monkeypatch.setattr(progress_module.settings, "interval", INTERVAL)
    monkeypatch.setattr(progress_module, "stderr_is_terminal", lambda: False)
    weights = shared_path("models", "openspliceai-mane", "80nt")
    fasta, gtf = small_genome
    prepared, run = tmp_path / "prepared", tmp_path / "run"
    checkpoint = run / "checkpoints" / "best"
    overrides = (
        {f"model.{k}": v for k, v in TINY_MODEL.items()}
        | {f"training.{k}": v for k, v in TINY_TRAINING.items()}
        | {"training.progress": True}
    )
    steps = {
        "prepare": lambda: prepare(prepared, "openspliceai", weights, fasta=fasta, gtf=gtf, device="cpu"),
        "train-canonical": lambda: run_canonical_training(
            base_model="openspliceai",
            base_weights=str(weights),
            data=str(prepared),
            test_chroms=["chr3"],
            output_dir=run,
            device="cpu",
            overrides=overrides,
        ),
        "evaluate": lambda: evaluate_checkpoint(checkpoint, str(prepared)),
        "calibrate": lambda: calibrate_checkpoint(checkpoint, tmp_path / "calibrated", data=str(prepared)),
        "predict": lambda: predict_genes(
            checkpoint, tmp_path / "p.parquet", data=str(prepared), genes=GENOME_CHR1[:3] + GENOME_CHR3[:2]
        ),
    }
    seen = {}
    for command, step in steps.items():
        caplog.clear()
        with caplog.at_level(logging.INFO):
            started = time.time()
            step()
            ended = time.time()
        seen[command], gap = _gaps(caplog.records, command, started, ended)
        assert gap <= INTERVAL + SLACK, (command, gap, seen[command])
        # every line names its command (and the phase within it)
        assert all(line.startswith(command) for line in seen[command]), seen[command]
    # ETA in nucleotides; train-canonical's finishing work (validation, decoder fit, test genes) has phases of its own
    assert any(line.startswith("prepare openspliceai: started, 0/") and " nt" in line for line in seen["prepare"])
    for phase in (
        "training: candidate index",
        "training: epoch 1/2",
        "validation genes (decoder fit, thresholds)",
        "test genes",
        "report",
    ):
        assert any(line.startswith(f"train-canonical: {phase}") for line in seen["train-canonical"]), phase
