"""metalayer pipeline: one config, prepare -> train -> evaluate -> predict -> score-vcf; a rerun does nothing new."""

import json

import yaml
from typer.testing import CliRunner

from meta_layer_cli.commands.main import app
from meta_layer_cli.io.demo import demo_gene_info
from tests.conftest import GENOME_CHR3, pipeline_config, shared_path
from tests.scripts.test_workflow import write_vcf

runner = CliRunner()


def test_pipeline_runs_the_chain_and_a_rerun_skips_it(small_genome, tmp_path):
    fasta, gtf = small_genome
    n_records = write_vcf(tmp_path / "in.vcf", fasta, gtf, n=4)
    config = pipeline_config(
        small_genome,
        tmp_path / "out",
        predict_genes=[demo_gene_info()[GENOME_CHR3[0]]["gene"], GENOME_CHR3[1]],  # a name and an id
        vcf=str(tmp_path / "in.vcf"),
    )
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(config))
    first = runner.invoke(app, ["pipeline", "--config", str(path), "--no-progress"])
    assert first.exit_code == 0, first.output
    summary = json.loads((tmp_path / "out" / "pipeline.json").read_text())
    assert summary["held_out"]["meta"]["n_genes"] == len(GENOME_CHR3)
    import gzip

    import polars as pl

    assert sorted(pl.read_parquet(summary["predictions"])["gene_id"].unique().to_list()) == sorted(GENOME_CHR3[:2])
    with gzip.open(summary["scored_vcf"], "rt") as fh:
        assert sum(1 for line in fh if not line.startswith("#")) == n_records
    # `--set training.epochs=2` (README, --help) reaches the training step: the same value as train_set, so the
    # rerun stays up to date (it failed: "training: unknown key")
    again = runner.invoke(app, ["pipeline", "--config", str(path), "--no-progress", "--set", "training.epochs=2"])
    assert again.exit_code == 0 and "nothing to do" in again.output and "0 predicted now" not in again.output
    bad = runner.invoke(app, ["pipeline", "--config", str(path), "--set", "out_dir=x"])
    assert bad.exit_code == 2 and "out_dir: unknown key" in bad.output


def test_init_config_pipeline_is_a_valid_pipeline_config():
    from meta_layer_cli.jobs.pipeline import PipelineConfig
    from meta_layer_cli.runtime.config import load_yaml_config

    result = runner.invoke(app, ["init-config", "pipeline"])
    assert result.exit_code == 0
    assert load_yaml_config(PipelineConfig, yaml.safe_load(result.stdout)).base_model == "openspliceai"


def test_pipeline_set_sends_training_keys_to_the_training_step(tmp_path):
    from meta_layer_cli.jobs.pipeline import pipeline_settings
    from meta_layer_cli.runtime.errors import UsageError

    config = {"fasta": "g.fa", "annotation": "g.gtf", "train_set": {"training.lr": 0.01}}
    cfg, train_set = pipeline_settings(config, ["training.epochs=5", "model.width=16", "device=cpu"])
    assert train_set == {"training.lr": 0.01, "training.epochs": 5, "model.width": 16} and cfg.device == "cpu"
    import pytest

    with pytest.raises(UsageError, match="out_dir: unknown key"):
        pipeline_settings(config, ["out_dir=x"])


def test_pipeline_refuses_an_impossible_split_before_preparing(small_genome, tmp_path):
    """All genes on the default test chromosomes: stopped before the base model predicts anything (it ran
    `prepare` first, then failed in training)."""
    fasta, gtf = small_genome
    path = tmp_path / "p.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "fasta": str(fasta),
                "annotation": str(gtf),
                "out": str(tmp_path / "out"),
                "weights": str(shared_path("models", "openspliceai-mane", "80nt")),
            }
        )
    )
    result = runner.invoke(app, ["pipeline", "--config", str(path), "--no-progress"])
    assert result.exit_code == 3, result.output
    assert "0 training genes are too few" in result.output and "test_chromosomes: [chr3]" in result.output
    assert not (tmp_path / "out" / "prepared").exists()
