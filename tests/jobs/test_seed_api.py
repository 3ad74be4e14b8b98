"""The seed's Python example and `metalayer train-canonical --base-model openspliceai` as typed: OpenSpliceAI's
weights found through $METALAYER_MODELS (a folder of flank sizes: 10,000 nt), on a few short demo genes."""

import json

from typer.testing import CliRunner

from meta_layer_cli.commands.main import app
from tests.conftest import TINY_MODEL, TINY_TRAINING, shared_path

SHORT = 8  # the shortest demo genes (1-2 kb each): OpenSpliceAI-10k costs seconds on them


def tiny_overrides(**extra):
    return {
        **{f"model.{k}": v for k, v in TINY_MODEL.items()},
        **{f"training.{k}": v for k, v in TINY_TRAINING.items()},
        "max_genes": SHORT,
        **extra,
    }


def test_the_seed_example_runs_with_weights_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("METALAYER_MODELS", str(shared_path("models")))
    from meta_layer_cli import run_canonical_training  # importable from the package root

    result = run_canonical_training(
        base_model="openspliceai",
        epochs=1,
        sequence_encoder="cnn",
        output_dir=tmp_path / "run",
        device="cpu",
        overrides=tiny_overrides(),
    )
    assert 0 <= result.canonical_test_metrics["pr_auc_macro"] <= 1
    base = json.loads((result.checkpoint_path / "config.json").read_text())["run"]["base_models"][0]
    assert base["name"] == "openspliceai" and base["context"] == 5000  # the 10,000-nt flank, picked by default
    assert "weights" not in base  # no path of this machine: found again through $METALAYER_MODELS


def test_train_canonical_base_model_openspliceai_as_typed(monkeypatch, tmp_path):
    monkeypatch.setenv("METALAYER_MODELS", str(shared_path("models")))
    sets = [f"--set={k}={json.dumps(v)}" for k, v in tiny_overrides(**{"training.epochs": 1}).items()]
    result = CliRunner().invoke(
        app,
        ["train-canonical", "--base-model", "openspliceai", "--out", str(tmp_path / "run"), "--device", "cpu", *sets],
    )
    assert result.exit_code == 0, result.output
    assert "held-out genes" in result.output
    monkeypatch.delenv("METALAYER_MODELS")
    missing = CliRunner().invoke(
        app, ["train-canonical", "--base-model", "openspliceai", "--out", str(tmp_path / "other")]
    )
    assert missing.exit_code == 3
    assert "openspliceai weights not found: looked at --weights (not given)" in missing.output


def test_every_root_export_resolves():
    import meta_layer_cli

    for name in meta_layer_cli.__all__:
        assert getattr(meta_layer_cli, name) is not None, name
