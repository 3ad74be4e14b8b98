"""Probes of the pipelines issue, as a user would run them: never a traceback, never exit 0 with wrong output."""

import errno
import json
import threading

import pytest
from typer.testing import CliRunner

from meta_layer_cli.commands.main import app
from meta_layer_cli.runtime.errors import ChangedInputsError
from tests.conftest import GENOME_CHR3, shared_path

runner = CliRunner()


def test_two_different_models_into_one_folder_at_once_never_mix(small_genome, tmp_path):
    from meta_layer_cli.artifacts import read_manifest
    from meta_layer_cli.artifacts.tracks import missing_gene_ids
    from meta_layer_cli.jobs.prepare import prepare

    fasta, gtf = small_genome
    out = tmp_path / "p"
    outcome = {}

    def job(name, weights):
        try:
            prepare(out, name, weights, fasta=fasta, gtf=gtf, genes=GENOME_CHR3[:3], device="cpu", progress=False)
            outcome[name] = "ok"
        except ChangedInputsError:
            outcome[name] = "refused"

    jobs = [
        threading.Thread(target=job, args=("openspliceai", shared_path("models", "openspliceai-mane", "80nt"))),
        threading.Thread(target=job, args=("pangolin", shared_path("models", "pangolin"))),
    ]
    for j in jobs:
        j.start()
    for j in jobs:
        j.join()
    assert sorted(outcome.values()) == ["ok", "refused"]
    winner = next(n for n, o in outcome.items() if o == "ok")
    manifest = read_manifest(out)
    assert manifest["base_model"]["name"] == winner and not missing_gene_ids(out, manifest)
    import polars as pl

    from meta_layer_cli.artifacts.tracks import gene_file_name

    columns = pl.read_parquet(out / "genes" / gene_file_name(GENOME_CHR3[0])).columns
    assert ("heart" in columns) == (winner == "pangolin")


def test_evaluate_refuses_a_half_finished_folder(small_genome, tmp_path):
    fasta, gtf = small_genome
    out = tmp_path / "p"
    weights = str(shared_path("models", "openspliceai-mane", "80nt"))
    genome = ["--fasta", str(fasta), "--gtf", str(gtf), "-b", "openspliceai", "--weights", weights]
    args = ["prepare", *genome, "--genes", ",".join(GENOME_CHR3), "--out", str(out), "--no-progress", "--device", "cpu"]
    assert runner.invoke(app, args).exit_code == 0
    from meta_layer_cli.artifacts.tracks import gene_track_path

    gene_track_path(out, GENOME_CHR3[1]).unlink()  # as if its shard had not run yet
    refused = runner.invoke(app, ["evaluate", "--tracks", str(out), "--json"])
    assert refused.exit_code == 3 and "incomplete" in refused.output and refused.stdout == ""
    partial = runner.invoke(app, ["evaluate", "--tracks", str(out), "--json", "--allow-partial"])
    assert partial.exit_code == 0 and 0 < json.loads(partial.stdout)["n_genes"] < len(GENOME_CHR3)


@pytest.mark.parametrize(
    "error, code, text",
    [
        (OSError(errno.ENOSPC, "No space left on device", "/data/out.parquet"), 1, "no space left on device"),
        (OSError(errno.EROFS, "Read-only file system", "/ro/out"), 1, "read-only file system"),
        (PermissionError(errno.EACCES, "Permission denied", "/root/x"), 1, "permission denied: /root/x"),
        (KeyboardInterrupt(), 130, "interrupted"),
        (ZeroDivisionError("division by zero"), 1, "internal error: ZeroDivisionError"),
    ],
)
def test_system_failures_are_one_line_with_their_exit_code(monkeypatch, tmp_path, error, code, text):
    import meta_layer_cli.jobs.prepare as prepare_job

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(prepare_job, "prepare", fail)
    result = runner.invoke(app, ["prepare", "--dataset", "demo", "--out", str(tmp_path)])
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and text in lines[0]


def test_garbage_checkpoint_and_table_files_are_one_line(tmp_path):
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "config.json").write_text("{not json")
    (ck / "model.safetensors").write_bytes(b"\x00garbage")
    result = runner.invoke(app, ["evaluate", "--checkpoint", str(ck), "--data", str(tmp_path)])
    assert result.exit_code == 3 and len(result.output.strip().splitlines()) == 1, result.output
    table = tmp_path / "t.parquet"
    table.write_bytes(b"PAR1 not really")
    result = runner.invoke(app, ["predict", "--variants", str(table), "--out", str(tmp_path / "o.parquet")])
    assert result.exit_code in (1, 3) and result.output.startswith("error:"), result.output
    assert len(result.output.strip().splitlines()) == 1
