"""train-delta's run folder (lock, --resume, --overwrite, --if-changed), evaluate / calibrate of a variant
checkpoint on held-out exons, and the base-model record of variant checkpoints.

Real data: Vex-seq rows of disjoint exon sets (A: training, B: held out, C: new), OpenSpliceAI-80nt tracks,
the cheap site_logit model.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from meta_layer_cli.commands.main import app
from meta_layer_cli.jobs import variants as jobs
from meta_layer_cli.jobs.run_folder import FolderPolicy
from meta_layer_cli.jobs.variants import training as variant_training
from meta_layer_cli.runtime.errors import InputDataError, UpToDate
from tests.conftest import SHARED
from tests.variant_helpers import osai80_weights, vexseq_path

runner = CliRunner()


@pytest.fixture(autouse=True)
def models_from_the_environment(monkeypatch):
    """Checkpoints record no weights path: applying one finds the base model as a user's shell would."""
    monkeypatch.setenv("METALAYER_MODELS", str(SHARED / "models"))


@pytest.fixture(scope="module")
def exon_sets(tmp_path_factory):
    """Vex-seq rows of three disjoint exon sets, and where they are written: A (training) as a loader table,
    B (held out) in Vex-seq's own CSV format, C (new) as a loader table."""
    from meta_layer_cli.io.assays import load_vexseq

    folder = tmp_path_factory.mktemp("exon_sets")
    rows = load_vexseq(vexseq_path())
    counts = rows.group_by("group").len()
    exons = sorted(counts.filter(pl.col("len") >= 5)["group"].to_list())

    def rows_of(chosen: list[str], per_exon: int) -> pl.DataFrame:
        return rows.filter(pl.col("group").is_in(chosen)).group_by("group", maintain_order=True).head(per_exon)

    sets = {"A": rows_of(exons[0:8], 5), "B": rows_of(exons[8:16], 5), "C": rows_of(exons[16:19], 4)}
    sets["A"].write_parquet(folder / "A.parquet")
    sets["C"].write_parquet(folder / "C.parquet")
    raw = pl.read_csv(vexseq_path(), infer_schema_length=None)
    raw.filter(pl.col("ID").is_in(sets["B"]["id"].to_list())).write_csv(folder / "B_vexseq.csv")
    return sets, folder


def training_kwargs(folder, **extra) -> dict:
    return {
        "base_model": "openspliceai",
        "weights": osai80_weights(),
        "model": "site_logit",
        "folds": 2,
        "epochs": 2,
        "cache": str(folder / "cache"),
        "device": "cpu",
        **extra,
    }


@pytest.fixture(scope="module")
def trained(exon_sets):
    sets, folder = exon_sets
    return jobs.run_validated_delta_training(train=[sets["A"]], output_dir=folder / "run", **training_kwargs(folder))


# ---------------------------------------------------------------------------------------------
# run folder
# ---------------------------------------------------------------------------------------------
def test_train_delta_run_folder(exon_sets, tmp_path):
    sets, folder = exon_sets
    data = tmp_path / "A.parquet"
    shutil.copy(folder / "A.parquet", data)
    config = {
        "base_model": "openspliceai",
        "base_weights": osai80_weights(),
        "model": "site_logit",
        "train": [{"loader": "table", "path": str(data)}],
        "folds": 2,
        "cache": str(folder / "cache"),
        "training": {"epochs": 1},
        "output_dir": str(tmp_path / "not-this-one"),
    }
    path = tmp_path / "delta.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    args = ["train-delta", "--config", str(path), "--out", str(out), "--profile", "cpu", "--device", "cpu"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    state = json.loads((out / "run.json").read_text())
    assert state["kind"] == "delta" and state["status"] == "finished" and not (tmp_path / "not-this-one").exists()
    assert set(state["fingerprint"]) == {"base model", "training tables", "evaluation tables", "config"}
    assert "fold 2/2" in (out / "train.log").read_text()
    assert (out / "checkpoint" / "model.safetensors").is_file() and (out / "cv_folds" / "fold1.npz").is_file()

    again = runner.invoke(app, args)  # a finished run is not overwritten silently
    assert again.exit_code == 3 and "finished" in again.output and "--overwrite" in again.output
    same = runner.invoke(app, args + ["--if-changed"])
    assert same.exit_code == 5 and "unchanged" in same.output
    hardware_only = runner.invoke(
        app, args + ["--if-changed", "--set", "hardware.batch_size=4", "--profile", "gpu", "--device", "cpu"]
    )
    assert hardware_only.exit_code == 5, "hardware is not part of what makes a run"
    before = (out / "checkpoint" / "model.safetensors").stat().st_mtime_ns
    other_config = runner.invoke(app, args + ["--if-changed", "--set", "training.lr=0.01"])
    assert other_config.exit_code == 0, other_config.output
    assert (out / "checkpoint" / "model.safetensors").stat().st_mtime_ns != before
    sets["A"].head(30).write_parquet(data)  # the data changed: same path, other rows
    changed = runner.invoke(app, args + ["--if-changed", "--set", "training.lr=0.01"])
    assert changed.exit_code == 0, changed.output
    assert json.loads((out / "metrics.json").read_text())["cv"]["vexseq"]["n"] == 30
    assert runner.invoke(app, args + ["--overwrite"]).exit_code == 0  # --overwrite trains again, as told

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    refused = runner.invoke(app, ["train-delta", "--config", str(path), "--out", str(foreign)])
    assert refused.exit_code == 3 and "not a metalayer run folder" in refused.output
    assert (foreign / "notes.txt").read_text() == "mine"
    bad = runner.invoke(app, args + ["--set", "device=cpu"])  # device moved to the hardware section
    assert bad.exit_code == 2 and "device: unknown key" in bad.output


def test_resume_continues_from_the_last_finished_fold(exon_sets, tmp_path, monkeypatch):
    sets, folder = exon_sets
    kwargs = training_kwargs(folder, folds=3, train=[sets["A"]])
    full = jobs.run_validated_delta_training(output_dir=tmp_path / "full", **kwargs)
    real, calls = variant_training._train_one, []

    def interrupted_in_the_second_fold(*args, **kw):
        calls.append(args[3])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(variant_training, "_train_one", interrupted_in_the_second_fold)
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        jobs.run_validated_delta_training(output_dir=cut, **kwargs)
    assert json.loads((cut / "run.json").read_text())["status"] == "running"
    assert sorted(p.name for p in (cut / "cv_folds").iterdir()) == ["fold0.npz"]
    with pytest.raises(InputDataError, match="interrupted run .*--resume"):
        jobs.run_validated_delta_training(output_dir=cut, folder=FolderPolicy(overwrite=False), **kwargs)

    def counting(*args, **kw):
        calls.append(args[3])
        return real(*args, **kw)

    calls.clear()
    monkeypatch.setattr(variant_training, "_train_one", counting)
    resumed = jobs.run_validated_delta_training(
        output_dir=cut, folder=FolderPolicy(resume=True, overwrite=False), **kwargs
    )
    assert len(calls) == 3, "folds 2 and 3 and the final model: fold 1 is read back, not trained again"
    assert json.loads((cut / "run.json").read_text())["status"] == "finished"
    assert resumed.predictions.equals(full.predictions)  # the numbers of an uninterrupted run
    assert resumed.cv_metrics["vexseq"] == pytest.approx(full.cv_metrics["vexseq"], nan_ok=True)
    with pytest.raises(UpToDate):
        jobs.run_validated_delta_training(output_dir=cut, folder=FolderPolicy(if_changed=True), **kwargs)


# ---------------------------------------------------------------------------------------------
# evaluate / calibrate a checkpoint on held-out exons
# ---------------------------------------------------------------------------------------------
def test_evaluate_on_held_out_exons(trained, exon_sets):
    from meta_layer_cli.evaluation.variant_metrics import regression_metrics
    from meta_layer_cli.inference.variant_models import score_sequences_with_models

    sets, folder = exon_sets
    config = json.loads((trained.checkpoint_path / "config.json").read_text())
    assert config["run"]["training_groups"] == sorted({g[:-2] for g in sets["A"]["group"].to_list()})
    metrics = jobs.evaluate_variant_checkpoint(trained.checkpoint_path, folder / "B_vexseq.csv", device="cpu")
    assert metrics["rows"] == 40 and metrics["seen_rows"] == 0 and set(metrics["sets"]) == {"vexseq"}
    model, base = metrics["sets"]["vexseq"]["model"], metrics["sets"]["vexseq"]["base"]
    # the checkpoint's own predictions (as predict --variants gives them), scored against the measured deltas
    scored = score_sequences_with_models(sets["B"], [trained.checkpoint_path])
    again = regression_metrics(scored["predicted_delta_psi"].to_numpy(), sets["B"]["target"].to_numpy(), 20.0)
    assert model == pytest.approx(again, nan_ok=True)
    assert base["best"] in base and base[base["best"]]["n"] == 40
    text = runner.invoke(
        app,
        [
            "evaluate",
            "--checkpoint",
            str(trained.checkpoint_path),
            "--variants",
            str(folder / "B_vexseq.csv"),
            "--device",
            "cpu",
        ],
    )
    assert text.exit_code == 0, text.output
    assert "site_logit (checkpoint)" in text.output and "openspliceai raw" in text.output

    # rows of its training exons: refused, unless told
    seen = ["evaluate", "--checkpoint", str(trained.checkpoint_path), "--variants", str(folder / "A.parquet")]
    refused = runner.invoke(app, seen)
    assert refused.exit_code == 3 and "trained or calibrated on" in refused.output and "--allow-seen" in refused.output
    allowed = jobs.evaluate_variant_checkpoint(trained.checkpoint_path, sets["A"], device="cpu", allow_seen=True)
    assert allowed["seen_rows"] == allowed["rows"] == 40
    with pytest.raises(InputDataError, match="no group column"):
        jobs.evaluate_variant_checkpoint(trained.checkpoint_path, sets["B"].drop("group"), device="cpu")


@pytest.mark.parametrize("method", ["quantile", "isotonic"])
def test_calibrate_on_held_out_exons(trained, exon_sets, tmp_path, method):
    from meta_layer_cli.inference.variant_models import score_sequences_with_models
    from meta_layer_cli.models.variant.heldout import HeldOutCalibration, conformal_half_width

    sets, folder = exon_sets
    out = tmp_path / "calibrated"
    args = [
        "calibrate",
        "--checkpoint",
        str(trained.checkpoint_path),
        "--variants",
        str(folder / "B_vexseq.csv"),
        "--method",
        method,
        "--quantile",
        "0.8",
        "--out",
        str(out),
        "--device",
        "cpu",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"{method} calibration fitted on 40 held-out rows (8 exons)" in result.output
    assert "reliability plot:" in result.output and (out / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    config = json.loads((out / "config.json").read_text())
    fitted = HeldOutCalibration.from_dict(config["heldout_calibration"])
    assert config["run"]["calibration_groups"] == sorted({g[:-2] for g in sets["B"]["group"].to_list()})
    assert "heldout_calibration" not in json.loads((trained.checkpoint_path / "config.json").read_text())

    plain = score_sequences_with_models(sets["B"], [trained.checkpoint_path])["predicted_delta_psi"].to_numpy()
    target = sets["B"]["target"].to_numpy()
    report = json.loads((out / "calibration.json").read_text())["errors"]["delta_psi_percent"]
    if method == "quantile":  # the 0.8 split-conformal quantile of |measured - predicted| on B
        q = conformal_half_width(target - plain, 0.8)
        assert fitted.half_width["delta_psi_percent"] == pytest.approx(q)
        assert report["after"] == pytest.approx(np.mean(np.abs(target - plain) <= q)) and report["after"] >= 0.8
        assert report["before"] is None and 0 <= report["after_cross_fitted"] <= 1
    else:
        assert report["after"] <= report["before"]  # in-sample: the isotonic fit can only bring the bins closer
    # predict --variants uses it on new exons (C): the same point prediction +- q, or the isotonic map of it
    new = score_sequences_with_models(sets["C"], [trained.checkpoint_path])["predicted_delta_psi"].to_numpy()
    out_table = tmp_path / "C.tsv"
    cli = runner.invoke(
        app,
        [
            "predict",
            "--variants",
            str(folder / "C.parquet"),
            "--checkpoint",
            str(out),
            "--out",
            str(out_table),
            "--device",
            "cpu",
        ],
    )
    assert cli.exit_code == 0, cli.output
    calibrated = pl.read_csv(out_table, separator="\t")
    if method == "quantile":
        np.testing.assert_allclose(calibrated["predicted_delta_psi"].to_numpy(), new, rtol=1e-6)
        np.testing.assert_allclose(calibrated["predicted_delta_psi_hi"].to_numpy(), new + q, rtol=1e-6)
        np.testing.assert_allclose(calibrated["predicted_delta_psi_lo"].to_numpy(), new - q, rtol=1e-6)
    else:
        assert "predicted_delta_psi_lo" not in calibrated.columns
        np.testing.assert_allclose(
            calibrated["predicted_delta_psi"].to_numpy(), fitted.maps["delta_psi_percent"](new), rtol=1e-6
        )

    # refused: its training exons, a calibrated checkpoint again, evaluating it on the exons it was calibrated on
    on_training = runner.invoke(
        app, args[:4] + [str(folder / "A.parquet")] + args[5:-4] + ["--out", str(tmp_path / "x")]
    )
    assert on_training.exit_code == 3 and "held-out" in on_training.output and not (tmp_path / "x").exists()
    twice = runner.invoke(
        app,
        [
            "calibrate",
            "--checkpoint",
            str(out),
            "--variants",
            str(folder / "C.parquet"),
            "--out",
            str(tmp_path / "y"),
            "--device",
            "cpu",
        ],
    )
    assert twice.exit_code == 3 and "already calibrated" in twice.output
    with pytest.raises(InputDataError, match="trained or calibrated on"):
        jobs.evaluate_variant_checkpoint(out, folder / "B_vexseq.csv", device="cpu")
    evaluated = jobs.evaluate_variant_checkpoint(out, folder / "C.parquet", device="cpu")
    assert ("coverage" in evaluated["sets"]["vexseq"]["model"]) == (method == "quantile")
    wrong = runner.invoke(app, args[:-3] + ["--method", "temperature", "--out", str(tmp_path / "z")])
    assert wrong.exit_code == 2


# ---------------------------------------------------------------------------------------------
# the base model of a variant checkpoint
# ---------------------------------------------------------------------------------------------
def test_checkpoint_records_its_base_model(trained, exon_sets, osai80, tmp_path, monkeypatch):
    from meta_layer_cli.base_models.record import BaseModelRecord
    from meta_layer_cli.inference.variant_models import load_variant_predictor, score_sequences_with_models

    sets, _ = exon_sets
    config = json.loads((trained.checkpoint_path / "config.json").read_text())
    assert config["run"]["base_model"] == BaseModelRecord.of(osai80).portable()
    assert "weights" not in config["run"]["base_model"]  # no path of the machine that trained it
    scored = score_sequences_with_models(sets["C"], [trained.checkpoint_path])  # $METALAYER_MODELS (fixture)
    # on another machine, with its own folder of models, the record's lookup finds the same weights
    moved = tmp_path / "moved"
    shutil.copytree(trained.checkpoint_path, moved)
    models = tmp_path / "models" / "openspliceai-mane"
    models.mkdir(parents=True)
    (models / "80nt").symlink_to(SHARED / "models" / "openspliceai-mane" / "80nt")
    monkeypatch.setenv("METALAYER_MODELS", str(tmp_path / "models"))
    with pytest.raises(InputDataError, match="no 10000nt weights"):  # the lookup picks the record's flank ...
        BaseModelRecord.from_dict({**config["run"]["base_model"], "context": 5000}).load(device="cpu")
    again = score_sequences_with_models(sets["C"], [moved])  # ... here 80 nt
    np.testing.assert_allclose(again["predicted_delta_psi"].to_numpy(), scored["predicted_delta_psi"].to_numpy())
    # a checkpoint of an older metalayer (a flat description of the base model) is refused in one line
    legacy = tmp_path / "legacy"
    shutil.copytree(trained.checkpoint_path, legacy)
    old = {
        "base_model": "openspliceai",
        "context": 40,
        "channels": ["neither", "acceptor", "donor"],
        "weights_checksum": osai80.weights_checksum,
        "weights": [],
        "name": None,
    }
    config["run"]["base_model"] = {k: v for k, v in old.items() if k != "name"}
    (legacy / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputDataError, match="older metalayer.*retrain it"):
        load_variant_predictor(legacy)
