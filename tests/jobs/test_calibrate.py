"""`metalayer calibrate --data PREPARED` without a checkpoint: per-class temperatures of the base model alone,
fitted on the genes off the test chromosomes, written as a checkpoint that predicts like any other."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from meta_layer_cli.artifacts import load_gene_arrays
from meta_layer_cli.commands.main import app
from meta_layer_cli.evaluation.evaluator import base_probabilities
from meta_layer_cli.evaluation.metrics import expected_calibration_error
from meta_layer_cli.models.apply import CanonicalPredictor
from meta_layer_cli.models.checkpoint import CanonicalCheckpoint
from tests.conftest import GENOME_CHR1, GENOME_CHR3

runner = CliRunner()


def _arrays(prepared, genes):
    channels, arrays = load_gene_arrays(prepared, genes)
    probs = np.concatenate([base_probabilities(g.tracks, channels) for g in arrays]).astype(np.float64)
    return arrays, probs, np.concatenate([g.labels for g in arrays])


def _ece(probs, labels) -> float:
    return float(np.mean([expected_calibration_error(probs[:, c], labels == c) for c in (1, 2)]))


def _nll(probs, labels) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1)).mean())


def test_calibrate_a_base_model_alone(small_genome_prepared, tmp_path):
    prepared, out = small_genome_prepared, tmp_path / "T"
    result = runner.invoke(app, ["calibrate", "--data", str(prepared), "--out", str(out), "--test-chroms", "chr3"])
    assert result.exit_code == 0, result.output
    assert "ECE on calibration genes" in result.output and "ECE on test genes" in result.output
    report = json.loads((out / "calibration.json").read_text())
    # fitted on the chromosome-1 genes only; the chromosome-3 genes are the checkpoint's test genes
    assert sorted(report["genes"]) == sorted(GENOME_CHR1)
    stored = CanonicalCheckpoint.read(out)
    assert sorted(stored.split["test"]) == sorted(GENOME_CHR3) and stored.run["calibrated_from"] == "base model"
    temperatures = np.array(report["temperatures"])
    assert temperatures.shape == (3,) and not np.allclose(temperatures, 1.0)

    # the checkpoint is softmax(log(p + 1e-6) / T) of the base model's probabilities, by hand
    predictor = CanonicalPredictor.load(out)
    test_arrays, test_probs, test_labels = _arrays(prepared, GENOME_CHR3)
    by_hand = torch.softmax(torch.log(torch.from_numpy(test_probs) + 1e-6) / torch.from_numpy(temperatures), dim=1)
    calibrated = np.concatenate([predictor(g.codes, g.tracks) for g in test_arrays])
    np.testing.assert_allclose(calibrated, by_hand.numpy(), atol=1e-5)

    # the reported ECEs are those of these probabilities (15 bins, mean of acceptor and donor)
    _, probs, labels = _arrays(prepared, GENOME_CHR1)
    after = np.concatenate([predictor(g.codes, g.tracks) for g in _arrays(prepared, GENOME_CHR1)[0]])
    assert report["ece"]["calibration genes"]["before"] == pytest.approx(_ece(probs, labels))
    assert report["ece"]["calibration genes"]["after"] == pytest.approx(_ece(after, labels), rel=1e-4)
    assert report["ece"]["test genes"]["before"] == pytest.approx(_ece(test_probs, test_labels))
    assert report["ece"]["test genes"]["after"] == pytest.approx(_ece(calibrated, test_labels), rel=1e-4)
    # what the fit minimises, the log-loss on the calibration genes, is lower than at T = 1
    assert _nll(after, labels) < _nll(probs, labels)


def test_calibrating_a_base_model_refuses_test_genes_and_other_methods(small_genome_prepared, tmp_path):
    prepared = str(small_genome_prepared)
    on_test = runner.invoke(
        app,
        [
            "calibrate",
            "--data",
            prepared,
            "--out",
            str(tmp_path / "a"),
            "--test-chroms",
            "chr3",
            "--genes",
            f"{GENOME_CHR1[0]},{GENOME_CHR3[0]}",
        ],
    )
    assert on_test.exit_code == 3 and "test chromosomes" in on_test.output and not (tmp_path / "a").exists()
    isotonic = runner.invoke(
        app, ["calibrate", "--data", prepared, "--out", str(tmp_path / "b"), "--method", "isotonic"]
    )
    assert isotonic.exit_code == 2 and "temperature" in isotonic.output
    two = runner.invoke(app, ["calibrate", "--data", prepared, "--data", prepared, "--out", str(tmp_path / "c")])
    assert two.exit_code == 2 and "one --data" in two.output


def test_an_interrupted_calibration_leaves_no_half_written_checkpoint(tmp_path):
    """Ctrl-C during calibrate's test-gene pass left the copied weights and the calibrated config.json in --out:
    a checkpoint that loads, without its report. Now the folder is emptied again, and a rerun needs no
    --overwrite."""
    from meta_layer_cli.jobs.calibrate import check_output_folder, fresh_folder

    out = tmp_path / "calibrated"
    with pytest.raises(KeyboardInterrupt):
        with fresh_folder(out, overwrite=False) as folder:
            (folder / "config.json").write_text("{}")
            (folder / "plots").mkdir()
            raise KeyboardInterrupt
    assert [p.name for p in out.iterdir() if p.name != ".metalayer.lock"] == []
    check_output_folder(out, overwrite=False, inputs={})  # a rerun is not refused


def test_a_killed_calibration_leaves_a_checkpoint_that_does_not_load(tmp_path):
    """SIGKILL (no cleanup runs) during calibrate left the copied weights and the calibrated config.json: a
    checkpoint that loaded. Now the folder is marked unfinished until the job's end: reading it is refused in
    one line, and a rerun empties it without --overwrite."""
    import subprocess
    import sys

    from meta_layer_cli.jobs.calibrate import check_output_folder, fresh_folder
    from meta_layer_cli.models.checkpoint import load_model
    from meta_layer_cli.runtime.errors import InputDataError

    out = tmp_path / "calibrated"
    code = f"""
import os, signal
from meta_layer_cli.jobs.calibrate import fresh_folder
from meta_layer_cli.models import MetaModelConfig, build_meta_model
from meta_layer_cli.models.checkpoint import save_model
with fresh_folder({str(out)!r}, overwrite=False) as folder:
    save_model(folder, build_meta_model(MetaModelConfig(channels=["n", "a", "d"], correction=False)))
    os.kill(os.getpid(), signal.SIGKILL)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    with pytest.raises(InputDataError, match="an unfinished checkpoint") as err:
        load_model(out)
    assert "\n" not in str(err.value)
    check_output_folder(out, overwrite=False, inputs={})  # a rerun is not refused ...
    with fresh_folder(out, overwrite=False) as folder:  # ... and starts from an empty folder
        assert sorted(p.name for p in folder.iterdir()) == [".metalayer.lock", ".unfinished"]
    assert sorted(p.name for p in out.iterdir()) == [".metalayer.lock"]


def test_a_calibration_folder_held_by_another_job_is_not_emptied(tmp_path):
    """fresh_folder deleted without the lock that RunFolder takes: a second job could empty a folder another
    one was writing into. Now it takes the folder's lock first, and a busy folder keeps every file."""
    from meta_layer_cli.jobs.calibrate import fresh_folder
    from meta_layer_cli.runtime.errors import BusyError
    from meta_layer_cli.runtime.locks import folder_lock

    out = tmp_path / "calibrated"
    out.mkdir()
    (out / "weights.safetensors").write_bytes(b"another job's output")
    with folder_lock(out):
        with pytest.raises(BusyError, match="busy"):
            with fresh_folder(out, overwrite=True):
                pass
    assert (out / "weights.safetensors").read_bytes() == b"another job's output"
    with fresh_folder(out, overwrite=True) as folder:  # free: emptied (the lock file aside) and locked meanwhile
        assert sorted(p.name for p in folder.iterdir()) == [".metalayer.lock", ".unfinished"]
        with pytest.raises(BusyError):
            with folder_lock(out):
                pass
