"""The canonical workflow end to end on a few real genes with a fast base model."""

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from meta_layer_cli.commands.main import app
from meta_layer_cli.jobs.canonical import evaluate_checkpoint, run_canonical_training
from tests.conftest import SMALL_DEMO_GENES, TINY_MODEL, TINY_TRAINING, shared_path

KEYS = {
    "pr_auc_acceptor", "pr_auc_donor", "pr_auc_macro", "topk_acceptor", "topk_donor",
    "fp_at_0.5", "fn_at_0.5", "fp_at_f1opt", "fn_at_f1opt", "ece",
}  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    overrides = {f"model.{k}": v for k, v in TINY_MODEL.items()} | {
        f"training.{k}": v for k, v in TINY_TRAINING.items()
    }
    result = run_canonical_training(
        base_model="openspliceai",
        base_weights=str(shared_path("models", "openspliceai-mane", "80nt")),
        epochs=2,
        output_dir=out / "run",
        train_genes=SMALL_DEMO_GENES[:8],
        test_genes=SMALL_DEMO_GENES[8:],
        tracks_cache=str(out / "cache"),
        overrides=overrides,
    )
    return result


def test_result_has_meta_and_base_metrics_on_the_same_genes(run):
    assert KEYS <= set(run.canonical_test_metrics) and KEYS <= set(run.base_test_metrics)
    assert run.split["test"] == SMALL_DEMO_GENES[8:]
    assert not set(run.split["validation"]) & set(run.split["test"])
    assert set(run.split["validation"]) <= set(SMALL_DEMO_GENES[:8])
    assert run.checkpoint_path.joinpath("model.safetensors").is_file()
    assert run.variant_evaluation is None
    saved = json.loads((run.output_dir / "metrics.json").read_text())
    assert saved["meta"] == pytest.approx(run.canonical_test_metrics)


def test_evaluate_checkpoint_reproduces_the_run(run):
    meta, base = evaluate_checkpoint(run.checkpoint_path)
    assert meta == pytest.approx(run.canonical_test_metrics)
    assert base == pytest.approx(run.base_test_metrics)


def test_recalibrate_matches_what_evaluation_saw(run, tmp_path):
    from meta_layer_cli.artifacts import load_gene_arrays
    from meta_layer_cli.models.apply import recalibrate_arrays
    from meta_layer_cli.models.checkpoint import load_model
    from meta_layer_cli.models.structure import structure_from_config

    model, config = load_model(run.checkpoint_path)
    structure = structure_from_config(config)
    assert structure is not None  # fitted on the validation genes by default
    tracks_dir = config["run"]["base_models"][0]["tracks"]
    out = tmp_path / "recal.parquet"
    result = CliRunner().invoke(
        app, ["recalibrate", "--checkpoint", str(run.checkpoint_path), "--artifacts", tracks_dir,
              "--genes", ",".join(run.split["test"]), "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pl.read_parquet(out)
    _, genes = load_gene_arrays(tracks_dir, run.split["test"])
    assert len(table) == sum(len(g) for g in genes)
    for g in genes:
        rows = table.filter(pl.col("gene_id") == g.gene_id)
        expected = recalibrate_arrays(model, g.codes, g.tracks, structure=structure)
        np.testing.assert_array_equal(rows.select("meta_neither", "meta_acceptor", "meta_donor").to_numpy(), expected)
        np.testing.assert_array_equal(rows["label"].to_numpy(), g.labels)


def test_recalibrate_from_the_demo_dataset_predicts_base_tracks(run, tmp_path):
    out = tmp_path / "demo.parquet"
    result = CliRunner().invoke(
        app, ["recalibrate", "--checkpoint", str(run.checkpoint_path), "--dataset", "demo", "--genes", "4",
              "--out", str(out), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pl.read_parquet(out)
    assert table["gene_id"].unique().to_list() == ["4"]
    assert np.allclose(table.select("meta_neither", "meta_acceptor", "meta_donor").to_numpy().sum(1), 1, atol=1e-5)


def test_report_is_written(run, tmp_path):
    from meta_layer_cli.evaluation.report import write_report

    metrics = json.loads((run.output_dir / "metrics.json").read_text())
    path = write_report(tmp_path / "report.html", metrics, notes=["x"])
    text = path.read_text()
    assert text.count("data:image/png;base64,") == 2 and "pr_auc_macro" in text


def test_cli_train_with_config_and_set(tmp_path):
    weights = shared_path("models", "openspliceai-mane", "80nt")
    config = tmp_path / "c.yaml"
    config.write_text(
        f"base_model: openspliceai\nbase_weights: {weights}\ngenes: {SMALL_DEMO_GENES}\n"
        f"tracks_cache: {tmp_path / 'cache'}\noutput_dir: {tmp_path / 'run'}\n"
        + "model:\n" + "".join(f"  {k}: {v}\n" for k, v in TINY_MODEL.items())
        + "training:\n" + "".join(f"  {k}: {v}\n" for k, v in TINY_TRAINING.items())
    )  # fmt: skip
    result = CliRunner().invoke(app, ["train", "--config", str(config), "--set", "training.epochs=1"])
    assert result.exit_code == 0, result.output
    assert "pr_auc_macro" in result.output
    state = json.loads((tmp_path / "run" / "checkpoints" / "last" / "trainer_state.json").read_text())
    assert state["epoch"] == 1
    bad = CliRunner().invoke(app, ["train", "--config", str(config), "--set", "model.widht=3"])
    assert bad.exit_code == 2 and "model.widht: unknown key" in bad.output


def test_stacked_base_models_train_and_evaluate(tmp_path):
    """Two base models' tracks side by side as one input (here OpenSpliceAI 80 nt + 400 nt)."""
    osai = shared_path("models", "openspliceai-mane")
    overrides = {f"model.{k}": v for k, v in TINY_MODEL.items()} | {
        f"training.{k}": v for k, v in TINY_TRAINING.items()
    }
    result = run_canonical_training(
        base_model=["openspliceai", "openspliceai"],
        base_weights=[str(osai / "80nt"), str(osai / "400nt")],
        epochs=1,
        output_dir=tmp_path / "run",
        train_genes=SMALL_DEMO_GENES[:8],
        test_genes=SMALL_DEMO_GENES[8:],
        tracks_cache=str(tmp_path / "cache"),
        overrides=overrides,
    )
    assert result.channels == [f"openspliceai{i}:{c}" for i in (0, 1) for c in ("neither", "acceptor", "donor")]
    assert KEYS <= set(result.canonical_test_metrics) and result.base_test_metrics is not None
    meta, _ = evaluate_checkpoint(result.checkpoint_path)
    assert meta == pytest.approx(result.canonical_test_metrics)


def test_finish_run_with_and_without_the_decoder(run, tmp_path):
    """Re-finishing a copy of the run: without the decoder, the metrics are the run's per-nucleotide ones."""
    import json
    import shutil

    from meta_layer_cli.jobs.canonical import finish_canonical_run

    assert set(run.extra_test_metrics) == {"meta_per_nucleotide"}
    copy = tmp_path / "run"
    shutil.copytree(run.output_dir / "checkpoints", copy / "checkpoints")
    plain = finish_canonical_run(copy / "checkpoints" / "best", structure=False)
    assert plain.canonical_test_metrics == pytest.approx(run.extra_test_metrics["meta_per_nucleotide"])
    assert plain.base_test_metrics == pytest.approx(run.base_test_metrics)
    assert "structure" not in json.loads((copy / "checkpoints" / "best" / "config.json").read_text())
    assert plain.history == run.history  # read back from the trainer state
    again = finish_canonical_run(copy / "checkpoints" / "best")
    assert again.canonical_test_metrics == pytest.approx(run.canonical_test_metrics)
    assert json.loads((copy / "metrics.json").read_text())["structure"] is not None
