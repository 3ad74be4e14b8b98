"""run_validated_delta_training end to end on small real subsets (Vex-seq, MaPSy, WT1) with OpenSpliceAI-80nt."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from meta_layer_cli.commands.main import app
from meta_layer_cli.evaluation.variant_metrics import base_delta_metrics, regression_metrics
from meta_layer_cli.features.variants import BASE_DELTA_COLUMNS
from meta_layer_cli.jobs.canonical import builtin_config
from meta_layer_cli.jobs.variants import resolve_variant_config, run_validated_delta_training
from meta_layer_cli.runtime.errors import InputDataError
from meta_layer_cli.training.variant_config import load_variant_config
from tests.conftest import SHARED
from tests.variant_helpers import (
    TINY_ARCHITECTURE,
    TINY_HARDWARE,
    TINY_TRAINING,
    mapsy_path,
    osai80_weights,
    vexseq_path,
)

runner = CliRunner()


@pytest.fixture(autouse=True)
def models_from_the_environment(monkeypatch):
    """Checkpoints record no weights path: applying one finds the base model as a user's shell would."""
    monkeypatch.setenv("METALAYER_MODELS", str(SHARED / "models"))


def data_specs(vexseq_rows: int = 40, mapsy_rows: int = 24) -> list[dict]:
    return [
        {"loader": "vexseq", "path": vexseq_path(), "max_rows": vexseq_rows},
        {"loader": "mapsy", "path": mapsy_path(), "max_rows": mapsy_rows},
    ]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("variants")
    result = run_validated_delta_training(
        base_model="openspliceai",
        weights=osai80_weights(),
        train=data_specs(),
        model="validated",
        output_dir=out / "run",
        folds=2,
        evaluate=[{"loader": "wt1_saturation", "max_rows": 12}],
        cache=str(out / "cache"),
        **TINY_ARCHITECTURE,
        **TINY_TRAINING,
        **TINY_HARDWARE,
    )
    return result


def test_cross_validation_metrics_and_files(run):
    assert set(run.cv_metrics) == {"vexseq", "mapsy"} and set(run.base_metrics) == {"vexseq", "mapsy"}
    for source, threshold in (("vexseq", 20.0), ("mapsy", 1.0)):
        m = run.cv_metrics[source]
        assert {"pearson", "spearman", "auroc", "auprc", "n", "n_positive"} <= set(m) and m["threshold"] == threshold
        base = run.base_metrics[source]
        assert base["best"] in base and base[base["best"]]["n"] == m["n"]
    assert run.cv_metrics["vexseq"]["n"] == 40
    assert set(run.evaluation_metrics) == {"wt1_saturation"}
    assert run.evaluation_metrics["wt1_saturation"]["model"]["n"] == 12
    metrics = json.loads((run.output_dir / "metrics.json").read_text())  # strict JSON (NaN written as null)
    assert set(metrics) >= {"cv", "base", "evaluation", "folds", "final_model", "timing", "config"}
    table = run.summary()
    assert "exon-grouped CV" in table and "openspliceai raw" in table and "wt1_saturation" in table
    # every row predicted once, out of fold; no exon in two folds
    pred = run.predictions
    assert (pred["fold"] >= 0).all() and pred["predicted_delta"].is_not_null().all()
    assert pred.group_by("group").agg(pl.col("fold").n_unique())["fold"].max() == 1
    saved = pl.read_parquet(run.output_dir / "cv_predictions.parquet")
    assert saved.equals(pred)
    # the reported metrics are those of the saved out-of-fold predictions, row for row
    for source, threshold in (("vexseq", 20.0), ("mapsy", 1.0)):
        rows = saved.filter(pl.col("source") == source)
        target = rows["target"].to_numpy()
        assert run.cv_metrics[source]["n"] == int(np.isfinite(target).sum())  # MaPSy has rows without a target
        again = regression_metrics(rows["predicted_delta"].to_numpy(), target, threshold)
        assert again == pytest.approx(run.cv_metrics[source], nan_ok=True)
        assert metrics["cv"][source]["pearson"] == pytest.approx(again["pearson"])
        base = base_delta_metrics({k: rows[f"base_{k}"].to_numpy() for k in BASE_DELTA_COLUMNS}, target, threshold)
        best = run.base_metrics[source]["best"]
        assert base["best"] == best and base[best] == pytest.approx(run.base_metrics[source][best], nan_ok=True)
    assert sum(f["test_rows"] for f in run.folds) == pred.height


def test_checkpoint_scores_new_sequences(run):
    from meta_layer_cli.inference.variant_models import load_variant_predictor, score_sequences_with_models

    predictor = load_variant_predictor(run.checkpoint_path)
    assert predictor.model.config.target_kinds == ["delta_psi_percent", "log2_ratio"]
    assert set(predictor.p_map) == {"delta_psi_percent", "log2_ratio"}
    assert sorted(p.name for p in run.checkpoint_path.iterdir()) == ["config.json", "model.safetensors"]
    from meta_layer_cli.io.assays import load_vexseq

    table = load_vexseq(vexseq_path()).head(6).select("id", "ref_seq", "alt_seq", "exon_start", "exon_end")
    scored = score_sequences_with_models(table, [run.checkpoint_path])  # base model from the checkpoint
    assert {"delta_acceptor", "predicted_delta_psi", "predicted_log2_ratio", "p_splice_altering"} <= set(scored.columns)
    p = scored["p_splice_altering"].to_numpy()
    assert np.all((p >= 0) & (p <= 1))
    other = str(osai80_weights()).replace("80nt", "400nt")  # another model: its tracks are not what it learned
    with pytest.raises(InputDataError, match="was made with base model openspliceai .*context 40.*not openspliceai"):
        score_sequences_with_models(table, [run.checkpoint_path], base_model="openspliceai", weights=other)
    # the same row ids and order as the input
    assert scored["id"].to_list() == table["id"].to_list()


def test_vcf_variants_get_variant_model_outputs(run, tmp_path):
    """score_vcf --checkpoint with a delta predictor: P_SA and DPSI near exons, '.' far from them."""
    from meta_layer_cli.inference.vcf_models import MAX_EXON_DISTANCE
    from meta_layer_cli.io.annotation import read_variant_annotation
    from meta_layer_cli.io.fasta import Fasta
    from tests.inference.vcf_fixtures import copy_genome, info_of, score_fixture_vcf, write_input

    genome = copy_genome(tmp_path)
    genes = read_variant_annotation(genome / "annotation.txt")

    def exon_distance(symbol: str, pos: int) -> int:
        """nt between POS and the gene's nearest exon (0 inside an exon)."""
        gene = next(g for g in genes if g.name == symbol)
        return int(np.maximum(np.maximum(gene.exons[:, 0] - pos, pos - gene.exons[:, 1]), 0).min())

    # chr2:7046 lies in C1orf35's intron 6744-7349, 303 nt past one exon and 304 before the next
    far_pos = 7046
    assert exon_distance("C1orf35", far_pos) > MAX_EXON_DISTANCE
    fasta = Fasta(genome / "ref.fa")
    far_ref = fasta.fetch("chr2", far_pos - 1, far_pos)
    fasta.close()
    far = f"2\t{far_pos}\tfar_intron\t{far_ref}\t{'A' if far_ref != 'A' else 'G'}\t50\tPASS\t."
    ids = ["acceptor_snv", "exonic", "minus_donor", "minus_del_acceptor", "deep_intron"]
    body = write_input(tmp_path / "in.vcf", ids, malformed=False, extra=[far])
    out = tmp_path / "out.vcf"
    score_fixture_vcf(
        tmp_path, genome, out, base_model="openspliceai", weights=osai80_weights(), checkpoints=[run.checkpoint_path]
    )
    lines = [ln for ln in out.read_text().splitlines() if not ln.startswith("#")]
    assert len(lines) == len(body)
    fields, positions = {}, {}
    for ln in lines:
        cols = ln.split("\t")
        info = info_of(cols)
        if "SpliceAI" in info:
            assert len(info["SpliceAI"].split(",")) == len(info["MetaLayer"].split(","))
            fields[cols[2]] = [e.split("|") for e in info["MetaLayer"].split(",")]
            positions[cols[2]] = int(cols[1])
    assert set(ids) | {"far_intron"} <= set(fields)
    near = 0
    for vid, entries in fields.items():
        for entry in entries:
            assert entry[2:10] == ["."] * 8  # no meta-layer checkpoint given
            if exon_distance(entry[1], positions[vid]) <= MAX_EXON_DISTANCE:
                assert 0 <= float(entry[10]) <= 1 and entry[11] == "." and np.isfinite(float(entry[12])), vid
                near += 1
            else:
                assert entry[10:] == [".", ".", "."], f"{vid} is too far from an exon for the variant models"
    assert near >= 5 and fields["far_intron"][0][10:] == [".", ".", "."]
    assert exon_distance("PSMB4", positions["deep_intron"]) == 127  # beyond the exon's flank, still within reach


def test_classifier_run_and_cli(run, tmp_path, osai80):
    config = {
        "base_model": "openspliceai",
        "base_weights": osai80_weights(),
        "model": "unified",
        "train": data_specs(32, 16),
        "output_dir": str(tmp_path / "clf"),
        "folds": 2,
        "cache": str(tmp_path / "c"),
        "architecture": {**TINY_ARCHITECTURE, "calibration": "temperature"},
        "training": TINY_TRAINING,
        "hardware": TINY_HARDWARE,
    }
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["train-delta", "--config", str(path), "--set", "training.epochs=1"])
    assert result.exit_code == 0, result.output
    assert "unified (exon-grouped CV)" in result.output and "checkpoint:" in result.output
    saved = json.loads((tmp_path / "clf" / "checkpoint" / "config.json").read_text())
    assert saved["calibration"]["temperature"]["temperature"] > 0
    # predict --variants with a delta predictor and a classifier
    from meta_layer_cli.io.assays import load_vexseq

    load_vexseq(vexseq_path()).head(4).select("id", "ref_seq", "alt_seq", "exon_start", "exon_end").write_csv(
        tmp_path / "in.csv"
    )
    out = tmp_path / "out.tsv"
    checkpoints = ["--checkpoint", str(run.checkpoint_path), "--checkpoint", str(tmp_path / "clf" / "checkpoint")]
    args = ["predict", "--variants", str(tmp_path / "in.csv"), "--out", str(out), *checkpoints]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    scored = pl.read_csv(out, separator="\t")
    assert {"predicted_delta_psi", "p_splice_altering", "effect_type", "p_effect_type"} <= set(scored.columns)
    assert scored["id"].to_list() == pl.read_csv(tmp_path / "in.csv")["id"].to_list()
    # with a classifier given, p_splice_altering is its temperature-scaled probability (not the delta
    # predictor's estimate), effect_type its most likely class: recomputed here from the checkpoint
    from meta_layer_cli.features.variants import EFFECT_TYPES, build_variant_dataset
    from meta_layer_cli.inference.variant_models import load_variant_predictor
    from meta_layer_cli.models.variant import predict_variants

    clf = load_variant_predictor(tmp_path / "clf" / "checkpoint")
    ds = build_variant_dataset(pl.read_csv(tmp_path / "in.csv"), osai80, window=clf.window)
    raw = predict_variants(clf.model, ds, kind=clf.readout_kind())
    t, t_effect = saved["calibration"]["temperature"]["temperature"], saved["calibration"]["effect_temperature"]
    np.testing.assert_allclose(scored["p_splice_altering"].to_numpy(), 1 / (1 + np.exp(-raw["logit"] / t)), rtol=1e-5)
    z = raw["effect_logits"] / t_effect["temperature"]
    probs = np.exp(z - z.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    assert scored["effect_type"].to_list() == [EFFECT_TYPES[i] for i in probs.argmax(1)]
    np.testing.assert_allclose(scored["p_effect_type"].to_numpy(), probs.max(1), rtol=1e-5)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["architecture.widht=3"], "architecture.widht: unknown key"),
        (["trainig.epochs=3"], "trainig: unknown key"),
        (["folds=1"], "folds"),
        (["model=lstm"], "model"),
        (["train=[{loader: vexseq}]"], "needs a path"),
        (["thresholds={psi: 3}"], "psi"),
        (["model=validated", "architecture.calibration=temperature"], "temperature"),
        (["epochs"], "--set expects key=value"),
    ],
)
def test_config_errors_name_the_key(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_variant_config(builtin_config("variants"), overrides)


def test_shipped_config_and_cli_errors(tmp_path):
    cfg = load_variant_config(builtin_config("variants"))
    assert cfg.model == "site_logit" and [s.loader for s in cfg.train] == ["vexseq", "mapsy"]
    assert resolve_variant_config(cfg, width=16, lr=0.01, folds=3).architecture.width == 16
    with pytest.raises(ValueError, match="unknown option 'widht'"):
        resolve_variant_config(cfg, widht=16)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: validated\nfoo: 1\n")
    result = runner.invoke(app, ["train-delta", "--config", str(bad)])
    assert result.exit_code == 2 and "foo: unknown key" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("name, calibration", [("simple_cnn", "quantile"), ("delta", "isotonic")])
def test_calibrated_delta_models(tmp_path, name, calibration):
    from meta_layer_cli.inference.variant_models import score_sequences_with_models
    from meta_layer_cli.io.assays import load_vexseq

    vexseq = load_vexseq(vexseq_path()).sample(n=30, seed=2)
    result = run_validated_delta_training(
        base_model="openspliceai",
        weights=osai80_weights(),
        train=[vexseq],
        model=name,
        output_dir=tmp_path,
        folds=2,
        epochs=1,
        calibration=calibration,
        **{k: v for k, v in TINY_ARCHITECTURE.items()},
    )
    assert result.cv_metrics["vexseq"]["n"] == 30
    saved = json.loads((result.checkpoint_path / "config.json").read_text())
    scored = score_sequences_with_models(vexseq.head(3), [result.checkpoint_path])
    if calibration == "quantile":
        assert {"q10", "q50", "q90"} <= set(result.predictions.columns)
        assert {"predicted_delta_psi_q10", "predicted_delta_psi_q90"} <= set(scored.columns)
    else:
        iso = saved["calibration"]["isotonic"]["delta_psi_percent"]
        assert iso["name"] == "isotonic" and np.all(np.diff(iso["y"]) >= 0)
        _predict_variants_applies_the_isotonic_map(result.checkpoint_path, vexseq.head(3), tmp_path)
    assert scored["predicted_delta_psi"].is_not_null().all()


def _predict_variants_applies_the_isotonic_map(checkpoint, table, tmp_path):
    """`predict --variants` with an isotonic checkpoint writes the checkpoint's isotonic map of the model's raw
    delta (computed here without the inference path), not the raw delta."""
    from meta_layer_cli.features.variants import build_variant_dataset
    from meta_layer_cli.inference.variant_models import load_variant_predictor
    from meta_layer_cli.models.variant import predict_variants

    predictor = load_variant_predictor(checkpoint)
    dataset = build_variant_dataset(
        table,
        predictor.record.load(device="cpu"),
        window=predictor.window,
        delta_window=predictor.run.get("delta_window", 50),
    )
    raw = predict_variants(predictor.model, dataset, kind="delta_psi_percent")["delta"]
    mapped = predictor.calibration["isotonic"]["delta_psi_percent"](raw)
    assert not np.allclose(mapped, raw)  # the map moves these rows, so a path that skips it fails below
    table.write_parquet(tmp_path / "rows.parquet")
    result = runner.invoke(
        app,
        [
            "predict",
            "--variants",
            str(tmp_path / "rows.parquet"),
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(tmp_path / "rows.tsv"),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    written = pl.read_csv(tmp_path / "rows.tsv", separator="\t")["predicted_delta_psi"].to_numpy()
    np.testing.assert_allclose(written, mapped, rtol=1e-6)


def test_site_logit_end_to_end_reads_the_reference_psi(tmp_path):
    from meta_layer_cli.inference.variant_models import score_sequences_with_models
    from meta_layer_cli.io.assays import load_vexseq

    vexseq = load_vexseq(vexseq_path()).sample(n=30, seed=2)
    result = run_validated_delta_training(
        base_model="openspliceai",
        weights=osai80_weights(),
        train=[vexseq],
        model="site_logit",
        output_dir=tmp_path,
        folds=2,
        epochs=2,
    )
    assert result.cv_metrics["vexseq"]["n"] == 30
    model = json.loads((result.checkpoint_path / "config.json").read_text())["model"]
    assert model["link"] == "logit_psi"
    # the median of the final model's training rows (validation exons held out), not the default 50
    assert model["reference_psi"] in set(vexseq["ref_psi"].to_list()) or (
        vexseq["ref_psi"].min() < model["reference_psi"] < vexseq["ref_psi"].max() and model["reference_psi"] != 50
    )
    table = vexseq.head(8)
    ref = table["ref_psi"].to_numpy()
    with_ref = score_sequences_with_models(table, [result.checkpoint_path])["predicted_delta_psi"].to_numpy()
    without = score_sequences_with_models(table.drop("ref_psi"), [result.checkpoint_path])["predicted_delta_psi"]
    assert ((with_ref >= -ref - 1e-3) & (with_ref <= 100 - ref + 1e-3)).all()  # bounded by the exon's own PSI
    median = model["reference_psi"]
    assert ((without >= -median - 1e-3) & (without <= 100 - median + 1e-3)).all()
    moved = np.abs(with_ref) > 1e-3
    assert moved.any() and not np.allclose(with_ref[moved], without.to_numpy()[moved])
