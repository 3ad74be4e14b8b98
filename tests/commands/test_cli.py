import json

from typer.testing import CliRunner

from meta_layer_cli.commands.main import app
from tests.conftest import shared_path

runner = CliRunner()


def test_predict_and_evaluate_demo_genes(tmp_path):
    weights = shared_path("models", "openspliceai-mane", "80nt")
    out = tmp_path / "tracks"
    args = [
        "predict",
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
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "genes").iterdir()) == ["4.parquet", "5.parquet"]
    again = runner.invoke(app, args)
    assert "0 predicted now" in again.output
    result = runner.invoke(app, ["evaluate", "--tracks", str(out), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["n_genes"] == 2 and 0 <= metrics["topk_acceptor"] <= 1


def _one_line_error(result, text):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "error:" in lines[0] and text in lines[0], result.output


def test_missing_weights_path(tmp_path):
    result = runner.invoke(
        app,
        [
            "predict",
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
    _one_line_error(result, "Pangolin weights not found: /nope")


def test_unknown_demo_gene(tmp_path):
    result = runner.invoke(
        app, ["predict", "-b", "spliceai", "--dataset", "demo", "--genes", "4,99999", "--out", str(tmp_path)]
    )
    _one_line_error(result, "demo gene '99999' does not exist")


def test_fasta_without_gtf_and_missing_fasta(tmp_path):
    result = runner.invoke(
        app, ["predict", "-b", "spliceai", "--fasta", str(tmp_path / "x.fa"), "--out", str(tmp_path)]
    )
    _one_line_error(result, "--fasta needs --gtf")
    result = runner.invoke(
        app, ["predict", "-b", "spliceai", "--fasta", str(tmp_path / "x.fa"), "--gtf", "grch37", "--out", str(tmp_path)]
    )
    _one_line_error(result, "FASTA not found")


def test_unknown_contig_in_gtf(tmp_path):
    fa = tmp_path / "ref.fa"
    fa.write_text(">chr1\n" + "ACGT" * 100 + "\n")
    gtf = tmp_path / "g.gtf"
    gtf.write_text('chrZ\tx\texon\t10\t50\t.\t+\t.\tgene_id "G"; transcript_id "T"; gene_name "G";\n')
    result = runner.invoke(
        app, ["predict", "-b", "spliceai", "--fasta", str(fa), "--gtf", str(gtf), "--out", str(tmp_path / "o")]
    )
    _one_line_error(result, "none of the 1 contigs")


def test_evaluate_on_a_non_tracks_directory(tmp_path):
    _one_line_error(runner.invoke(app, ["evaluate", "--tracks", str(tmp_path)]), "not a metalayer tracks directory")
