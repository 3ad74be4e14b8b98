"""The command line as a user meets it: prepare and evaluate, one-line errors with documented exit codes,
global options anywhere, --version."""

import json
import logging

import pytest
from typer.testing import CliRunner

from meta_layer_cli.artifacts.tracks import gene_file_name
from meta_layer_cli.commands.main import app, hoist_global_options
from tests.conftest import shared_path

runner = CliRunner()


def test_help_lists_the_commands_and_version():
    result = runner.invoke(app, ["--help"])
    for name in (
        "prepare",
        "train-canonical",
        "train-delta",
        "evaluate",
        "predict",
        "calibrate",
        "score-vcf",
        "demo",
        "init-config",
    ):
        assert name in result.output
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("metalayer ")


@pytest.mark.parametrize(
    "command", ["prepare", "train-canonical", "evaluate", "predict", "calibrate", "score-vcf", "train-delta", "demo"]
)
def test_every_command_shows_an_example(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Example" in result.output and "metalayer " in result.output


def test_prepare_and_evaluate_demo_genes(tmp_path):
    weights = shared_path("models", "openspliceai-mane", "80nt")
    out = tmp_path / "tracks"
    args = [
        "prepare",
        "-b",
        "openspliceai",
        "--weights",
        str(weights),
        "--dataset",
        "demo",
        "--genes",
        "4,5",
        "--out",
        str(out),
        "--no-progress",
        "--device",
        "cpu",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "genes").iterdir()) == sorted([gene_file_name("4"), gene_file_name("5")])
    again = runner.invoke(app, args)
    assert "0 predicted now" in again.stdout  # the summary is the command's result: stdout, as README says
    result = runner.invoke(app, ["evaluate", "--tracks", str(out), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["n_genes"] == 2 and 0 <= metrics["topk_acceptor"] <= 1


def _one_line_error(result, text, code):
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and text in lines[0], result.output


def test_missing_weights_path(tmp_path):
    result = runner.invoke(
        app,
        [
            "prepare",
            "-b",
            "pangolin",
            "--weights",
            "/nope",
            "--dataset",
            "demo",
            "--genes",
            "4",
            "--out",
            str(tmp_path),
        ],
    )
    _one_line_error(result, "pangolin weights not found: --weights /nope does not exist", 3)


def test_weights_lookup_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.delenv("METALAYER_MODELS", raising=False)
    result = runner.invoke(
        app, ["prepare", "-b", "openspliceai", "--dataset", "demo", "--genes", "4", "--out", str(tmp_path)]
    )
    _one_line_error(result, "looked at --weights (not given), config models_dir (not set), $METALAYER_MODELS", 3)


def test_openspliceai_weights_from_the_environment_pick_10000nt(tmp_path, monkeypatch, caplog):
    from meta_layer_cli.base_models.weights import find_weights

    monkeypatch.setenv("METALAYER_MODELS", str(shared_path("models")))
    with caplog.at_level(logging.INFO, logger="meta_layer_cli"):
        assert find_weights("openspliceai") == shared_path("models", "openspliceai-mane", "10000nt")
    # the default is said, with how to choose another (it was silent, and the 10,000-nt model is slow on a CPU)
    assert "using the 10,000-nt model" in caplog.text and "--flank 80|400|2000" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="meta_layer_cli"):
        find_weights("openspliceai", flank=10000)
    assert "flank sizes" not in caplog.text
    assert find_weights("openspliceai", flank=80) == shared_path("models", "openspliceai-mane", "80nt")
    assert find_weights("pangolin") == shared_path("models", "pangolin")
    folder = shared_path("models", "openspliceai-mane")
    assert find_weights("openspliceai", folder, flank=400) == folder / "400nt"
    with pytest.raises(ValueError, match="no 123nt weights .* 80, 400, 2000, 10000"):
        find_weights("openspliceai", folder, flank=123)


def test_unknown_demo_gene(tmp_path):
    result = runner.invoke(
        app, ["prepare", "-b", "spliceai", "--dataset", "demo", "--genes", "4,99999", "--out", str(tmp_path)]
    )
    _one_line_error(result, "requested gene(s) not available: 99999", 3)


def test_fasta_without_gtf_and_missing_fasta(tmp_path):
    result = runner.invoke(app, ["prepare", "--fasta", str(tmp_path / "x.fa"), "--out", str(tmp_path)])
    _one_line_error(result, "--fasta needs --gtf", 2)
    result = runner.invoke(
        app, ["prepare", "--fasta", str(tmp_path / "x.fa"), "--gtf", "grch37", "--out", str(tmp_path)]
    )
    _one_line_error(result, "FASTA not found", 3)


def test_unknown_contig_in_gtf(tmp_path):
    fa = tmp_path / "ref.fa"
    fa.write_text(">chr1\n" + "ACGT" * 100 + "\n")
    gtf = tmp_path / "g.gtf"
    gtf.write_text('chrZ\tx\texon\t10\t50\t.\t+\t.\tgene_id "G"; transcript_id "T"; gene_name "G";\n')
    result = runner.invoke(app, ["prepare", "--fasta", str(fa), "--gtf", str(gtf), "--out", str(tmp_path / "o")])
    _one_line_error(result, "none of the 1 contigs", 3)


def test_evaluate_on_a_non_tracks_directory(tmp_path):
    _one_line_error(runner.invoke(app, ["evaluate", "--tracks", str(tmp_path)]), "not a metalayer tracks folder", 3)


def test_config_errors_are_usage_errors(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("training:\n  epochs: 3\ntraining:\n  lr: 0.1\n")
    result = runner.invoke(app, ["train-canonical", "--config", str(cfg), "--out", str(tmp_path / "r")])
    _one_line_error(result, "key 'training' appears twice", 2)
    result = runner.invoke(app, ["train-canonical", "--set", "training.epochs=true", "--out", str(tmp_path / "r")])
    _one_line_error(result, "training.epochs: Input should be a valid integer (got True)", 2)
    result = runner.invoke(app, ["train-canonical", "--set", "training.lr=[oops", "--out", str(tmp_path / "r")])
    _one_line_error(result, "not valid YAML", 2)


def test_global_options_after_the_command_are_hoisted():
    assert hoist_global_options(["prepare", "--out", "x", "-v", "--log-file", "a.log", "--quiet"]) == [
        "-v",
        "--log-file",
        "a.log",
        "--quiet",
        "prepare",
        "--out",
        "x",
    ]
    assert hoist_global_options(["score-vcf", "-I", "-", "--log-file=l"]) == ["--log-file=l", "score-vcf", "-I", "-"]


def test_verbose_shows_the_traceback_and_log_file_gets_every_line(tmp_path):
    log = tmp_path / "run.log"
    result = runner.invoke(app, ["--verbose", "--log-file", str(log), "evaluate", "--tracks", str(tmp_path / "n")])
    assert result.exit_code == 3 and "Traceback" in result.output
    assert "not a metalayer tracks folder" in log.read_text()
    logging.getLogger("meta_layer_cli").handlers.clear()


def test_init_config_writes_a_valid_starter(tmp_path):
    from meta_layer_cli.training.config import load_run_config

    out = tmp_path / "my.yaml"
    assert runner.invoke(app, ["init-config", "canonical", "--out", str(out)]).exit_code == 0
    assert load_run_config(out).model.width == 32
    again = runner.invoke(app, ["init-config", "canonical", "--out", str(out)])
    assert again.exit_code == 2 and "exists" in again.output
    profile = runner.invoke(app, ["init-config", "gpu"])
    assert "device: cuda" in profile.stdout


def test_evaluate_warns_at_the_end_when_the_meta_layer_is_worse_than_its_base(monkeypatch):
    """Seen on a real run: PR-AUC 0.9878 (meta) vs 0.9899 (base) with no word; now the last line says so."""
    import meta_layer_cli.jobs.canonical as canonical
    import meta_layer_cli.models.checkpoint as checkpoint

    base = {"pr_auc_macro": 0.9899, "topk_mean": 0.95}
    meta = {"pr_auc_macro": 0.9878, "topk_mean": 0.96, "n_genes": 40}
    monkeypatch.setattr(checkpoint, "read_checkpoint_config", lambda path: {"run": {}})
    monkeypatch.setattr(canonical, "evaluate_checkpoint_metrics", lambda *a, **k: {"meta": meta, "base": base})
    for extra in ([], ["--json"]):
        result = runner.invoke(app, ["evaluate", "--checkpoint", "ckpt", "--data", "prepared", *extra])
        assert result.exit_code == 0, result.output
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("warning: the meta-layer is WORSE than its base model on the 40 held-out genes")
        assert "PR-AUC macro 0.9878 vs base 0.9899" in last and "top-k" not in last
    meta["pr_auc_macro"] = 0.99
    assert "WORSE" not in runner.invoke(app, ["evaluate", "--checkpoint", "ckpt", "--data", "prepared"]).output
