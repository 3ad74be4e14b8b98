"""Canonical training end to end on real genes with a fast base model: on the demo set (library call) and on
a genome the project has never seen (the command line, prepare -> train-canonical -> evaluate -> calibrate ->
predict)."""

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from meta_layer_cli.commands.main import app
from meta_layer_cli.io.demo import demo_gene_info
from meta_layer_cli.jobs.canonical import (
    builtin_config,
    default_demo_genes,
    evaluate_checkpoint,
    run_canonical_training,
)
from meta_layer_cli.models.checkpoint import CanonicalCheckpoint
from tests.conftest import (
    GENOME_CHR3,
    SMALL_DEMO_GENES,
    TINY_MODEL,
    TINY_TRAINING,
    chr3_held_out_args,
    shared_path,
    tiny_sets,
)

KEYS = {
    "pr_auc_acceptor",
    "pr_auc_donor",
    "pr_auc_macro",
    "topk_acceptor",
    "topk_donor",
    "fp_at_0.5",
    "fn_at_0.5",
    "fp_at_f1opt",
    "fn_at_f1opt",
    "ece",
}
runner = CliRunner()
TINY_SETS = tiny_sets()


# short real genes (1.7-3 kb each), so that a run's tracks, evaluation and decoder fit take seconds
RUN_TRAIN, RUN_TEST = SMALL_DEMO_GENES[:6], ["26", "157"]


def _small_run(output_dir, cache, **changes):
    overrides = {f"model.{k}": v for k, v in TINY_MODEL.items()} | {
        f"training.{k}": v for k, v in TINY_TRAINING.items()
    }
    overrides.update(changes)
    return run_canonical_training(
        base_model="openspliceai",
        base_weights=str(shared_path("models", "openspliceai-mane", "80nt")),
        epochs=2,
        output_dir=output_dir,
        train_genes=RUN_TRAIN,
        test_genes=RUN_TEST,
        tracks_cache=str(cache),
        device="cpu",
        overrides=overrides,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = _small_run(out / "run", out / "cache")
    result.cache = out / "cache"
    return result


def test_result_has_meta_and_base_metrics_on_the_same_genes(run):
    assert KEYS <= set(run.canonical_test_metrics) and KEYS <= set(run.base_test_metrics)
    assert run.split["test"] == RUN_TEST
    assert not set(run.split["validation"]) & set(run.split["test"])
    assert set(run.split["validation"]) <= set(RUN_TRAIN)
    assert run.checkpoint_path.joinpath("model.safetensors").is_file()
    assert run.variant_evaluation is None
    saved = json.loads((run.output_dir / "metrics.json").read_text())
    assert saved["meta"] == pytest.approx(run.canonical_test_metrics)
    assert (run.output_dir / "report.html").is_file() and (run.output_dir / "train.log").is_file()


def test_a_rerun_of_the_config_trains_the_same_model(run, tmp_path):
    """The config's seed alone decides the run: the model's initialisation does not depend on what this
    process drew from torch's generator before (another run, base-model loading)."""
    import torch
    from safetensors.torch import load_file

    torch.rand(4321)
    again = _small_run(tmp_path / "again", run.output_dir.parent / "cache")
    first = load_file(str(run.checkpoint_path / "model.safetensors"))
    second = load_file(str(again.checkpoint_path / "model.safetensors"))
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert again.canonical_test_metrics == run.canonical_test_metrics


def test_train_canonical_loads_its_best_model_once_and_writes_each_file_once(run, tmp_path, monkeypatch):
    """It wrote its model and reloaded it up to three times, and wrote config.json and metrics.json twice: the
    best model is loaded once and passed on (decoder fit, evaluation, report)."""
    from meta_layer_cli.jobs import canonical
    from meta_layer_cli.models import checkpoint

    calls = {"load_model": 0, "update_checkpoint_config": 0, "metrics.json": 0}
    real_load, real_update = checkpoint.load_model, checkpoint.update_checkpoint_config
    real_write = canonical.write_json_atomic

    def load_model(*args, **kwargs):
        calls["load_model"] += 1
        return real_load(*args, **kwargs)

    def update_checkpoint_config(*args, **kwargs):
        calls["update_checkpoint_config"] += 1
        return real_update(*args, **kwargs)

    def write_json_atomic(path, *args, **kwargs):
        calls["metrics.json"] += Path(path).name == "metrics.json"
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "load_model", load_model)
    monkeypatch.setattr(checkpoint, "update_checkpoint_config", update_checkpoint_config)
    monkeypatch.setattr(canonical, "write_json_atomic", write_json_atomic)
    again = _small_run(tmp_path / "again", run.output_dir.parent / "cache")
    assert calls == {"load_model": 1, "update_checkpoint_config": 1, "metrics.json": 1}, calls
    assert again.canonical_test_metrics == run.canonical_test_metrics


def test_checkpoint_holds_no_machine_local_paths(run):
    text = (run.checkpoint_path / "config.json").read_text()
    assert str(run.output_dir.parent / "cache") not in text  # the tracks cache is looked up, not recorded
    base = json.loads(text)["run"]["base_models"][0]
    assert set(base) == {"name", "weights_checksum", "context", "channels"}  # no weights path: looked up


def test_evaluate_checkpoint_reproduces_the_run(run):
    meta, base = evaluate_checkpoint(run.checkpoint_path, device="cpu", models_dir=shared_path("models"))
    assert {k: v for k, v in meta.items() if k != "n_genes"} == pytest.approx(run.canonical_test_metrics)
    assert base == pytest.approx(run.base_test_metrics)


def test_evaluating_a_demo_checkpoint_predicts_its_test_genes_only(run, tmp_path, monkeypatch):
    """evaluate --checkpoint DEMO without --data predicted every gene of the run (202 for the demo, 12 min) into
    an empty cache: it needs the test genes' tracks only."""
    from meta_layer_cli.artifacts.tracks import finished_gene_ids, read_manifest

    monkeypatch.setenv("METALAYER_CACHE", str(tmp_path / "cache"))
    meta, _ = evaluate_checkpoint(run.checkpoint_path, device="cpu", models_dir=shared_path("models"))
    assert {k: v for k, v in meta.items() if k != "n_genes"} == pytest.approx(run.canonical_test_metrics)
    (folder,) = (tmp_path / "cache" / "tracks").iterdir()
    assert sorted(finished_gene_ids(folder, read_manifest(folder))) == sorted(RUN_TEST)


def test_predict_on_demo_genes_reads_the_track_cache_the_run_filled(run, tmp_path, monkeypatch):
    """predict --dataset demo predicted the base model's tracks again into OUT.base/, though the run (and
    `metalayer demo`) had them in its track cache: now it reads and fills that cache."""
    from meta_layer_cli.base_models.base import NeuralBaseModel
    from meta_layer_cli.jobs.predict import predict_genes

    def refuse(*args, **kwargs):
        raise AssertionError("the base model ran: the cached tracks were not used")

    monkeypatch.setattr(NeuralBaseModel, "predict_genes", refuse)
    out = tmp_path / "demo.parquet"
    predict_genes(
        run.checkpoint_path,
        out,
        dataset="demo",
        genes=[RUN_TEST[0]],
        cache=run.cache,
        device="cpu",
        progress=False,
        models_dir=shared_path("models"),
    )
    assert not (tmp_path / "demo.parquet.base").exists()
    table = pl.read_parquet(out)
    assert set(table["gene_id"]) == {RUN_TEST[0]} and table["meta_acceptor"].is_finite().all()
    # the name beside the id (the walk-through asked for names and found only ids)
    assert set(table["gene_name"]) == {demo_gene_info()[RUN_TEST[0]]["gene"]}


def test_the_trainer_logs_one_line_per_epoch(run):
    log = (run.output_dir / "train.log").read_text()
    assert log.count("validation PR-AUC") == len(run.history) == 2
    # and ends with the result (README: "one line per epoch, the result")
    meta = run.canonical_test_metrics["pr_auc_macro"]
    assert "result on 2 held-out test genes: PR-AUC macro base " in log and f"meta-layer {meta:.4f}" in log


def test_the_start_of_run_estimate_covers_the_whole_run(run, monkeypatch, caplog):
    import meta_layer_cli.training.trainer as trainer_module
    from meta_layer_cli.artifacts import load_gene_arrays
    from meta_layer_cli.jobs.canonical import estimate_finishing_seconds

    best, _ = run.loaded
    channels, genes = load_gene_arrays(run.tracks_dirs, run.split["validation"] + run.split["test"])
    val, test = genes[: len(run.split["validation"])], genes[len(run.split["validation"]) :]
    before = {k: v.clone() for k, v in best.state_dict().items()}
    assert estimate_finishing_seconds(best, channels, (val, test), "cpu") > 0
    assert estimate_finishing_seconds(best, channels, ([], []), "cpu") == 0
    assert all(torch.equal(v, best.state_dict()[k]) for k, v in before.items())  # probed on a copy
    # the run says it once its first steps are timed (here: the first step)
    monkeypatch.setattr(trainer_module, "ESTIMATE_AFTER_STEPS", 1)
    with caplog.at_level("INFO"):
        _small_run(run.output_dir.parent / "estimated", run.cache, **{"training.progress": True})
    (line,) = [m for m in caplog.messages if "s per step" in m]
    assert "then the validation genes (decoder fit, thresholds) and the test evaluation" in line
    assert "the whole run about" in line


# ---------------------------------------------------------------------------------------------
# a genome the project has never seen, through the command line
# ---------------------------------------------------------------------------------------------
def genome_run_args(prepared: Path, out: Path) -> list[str]:
    """The genome run's train-canonical command: OpenSpliceAI 80 nt, chr3 held out, tiny model, 3 epochs (the
    last two words, so that a test can change the epochs)."""
    weights = str(shared_path("models", "openspliceai-mane", "80nt"))
    model = ["--base-model", "openspliceai", "--weights", weights]
    return [*chr3_held_out_args(prepared, out, *model, sets=TINY_SETS), "--set", "training.epochs=3"]


def with_checkpoint(command: str, checkpoint: Path | str, prepared: Path, *options: str) -> list[str]:
    """``command --checkpoint checkpoint --data prepared`` and ``options``."""
    return [command, "--checkpoint", str(checkpoint), "--data", str(prepared), *options]


@pytest.fixture(scope="module")
def genome_run(tmp_path_factory, small_genome_prepared):
    out = tmp_path_factory.mktemp("genome_run") / "R"
    result = runner.invoke(app, genome_run_args(small_genome_prepared, out))
    assert result.exit_code == 0, result.output
    return out, small_genome_prepared, result


def test_train_canonical_holds_out_the_named_chromosome(genome_run):
    out, _, result = genome_run
    split = CanonicalCheckpoint.read(out / "checkpoints" / "best").split
    assert sorted(split["test"]) == sorted(GENOME_CHR3)
    assert not set(split["validation"]) & set(GENOME_CHR3)
    assert "held-out genes" in result.output and (out / "report.html").is_file()


def test_meta_layer_beats_the_base_model_on_the_held_out_chromosome(genome_run):
    out, prepared, _ = genome_run
    best = out / "checkpoints" / "best"
    result = runner.invoke(app, with_checkpoint("evaluate", best, prepared, "--json", "--device", "cpu"))
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["meta"]["n_genes"] == len(GENOME_CHR3)
    # the network alone (before the gene-structure decoder) is reported too, as metrics.json holds it
    saved = json.loads((out / "metrics.json").read_text())
    assert metrics["meta_per_nucleotide"] == pytest.approx(saved["meta_per_nucleotide"])
    assert metrics["meta"]["pr_auc_macro"] > metrics["base"]["pr_auc_macro"] + 0.05
    assert metrics["meta"]["topk_mean"] > metrics["base"]["topk_mean"]
    # the network alone must learn too (issue 21): the gain may not rest on the decoder alone
    alone, base = metrics["meta_per_nucleotide"], metrics["base"]
    assert alone["pr_auc_macro"] > base["pr_auc_macro"], (alone["pr_auc_macro"], base["pr_auc_macro"])
    # the table prints ECE (~1e-4 per nucleotide) with its exponent, not rounded to 0.0000
    table = runner.invoke(app, with_checkpoint("evaluate", best, prepared, "--device", "cpu"))
    assert table.exit_code == 0 and f"{metrics['meta']['ece']:.2e}" in table.output, table.output
    assert "network alone" in table.stdout and f"{metrics['meta_per_nucleotide']['ece']:.2e}" in table.stdout


def test_error_anatomy_counts_what_evaluate_measures(genome_run):
    """scripts/error_anatomy.py (issue 21's error breakdown) reads the checkpoint as evaluate does: the same PR-AUC
    per source on the test genes, every annotated site a true positive or a false negative of each source."""
    import subprocess
    import sys

    out, prepared, _ = genome_run
    script = Path(__file__).resolve().parents[2] / "scripts" / "error_anatomy.py"
    command = [sys.executable, str(script), "--checkpoint", str(out / "checkpoints" / "best"), "--data", str(prepared)]
    done = subprocess.run([*command, "--json", "--device", "cpu"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    saved = json.loads((out / "metrics.json").read_text())
    assert result["genes"] == len(GENOME_CHR3) and set(result["sources"]) == {"meta", "meta_per_nucleotide", "base"}
    sites = {name: s["tp"] + s["fn"] for name, s in result["sources"].items()}
    assert len(set(sites.values())) == 1 and sites["meta"] > 0, sites
    for name, s in result["sources"].items():
        assert s["pr_auc_macro"] == pytest.approx(saved[name]["pr_auc_macro"], abs=1e-6), name
        assert 0 <= s["fn_base_below_0.01"] <= s["fn"] and 0 <= s["fp_canonical_dinucleotide"] <= s["fp"]
    # the top-k breakdown reproduces evaluate's top-k of network + decoder; each intruder pushes one site out
    for name, t in result["topk"].items():
        assert t["topk"] == pytest.approx(saved["meta"][f"topk_{name}"], abs=1e-12), name
        assert t["intruders"] == t["missed_sites"] == round((1 - t["topk"]) * t["sites"]), name
        assert t["kth_score"] > 1e-3  # above what the breakdown keeps
        for key in ("base_at_least_0.5", "base_below_0.01", "canonical_dinucleotide", "within_10nt_of_a_site"):
            assert 0 <= t[f"intruders_{key}"] <= t["intruders"], key


def test_gene_rate_script_finds_the_same_probabilities_at_every_padding(genome_run):
    """scripts/gene_rate.py (the new-input-length cost, RESULTS) runs on a trained checkpoint and its data, and
    every padding it times gives the unpadded probabilities."""
    import subprocess
    import sys

    out, prepared, _ = genome_run
    script = Path(__file__).resolve().parents[2] / "scripts" / "gene_rate.py"
    command = [sys.executable, str(script), "--checkpoint", str(out / "checkpoints" / "best"), "--data", str(prepared)]
    done = subprocess.run(
        [*command, "--genes", "3", "--profile", "1", "--buckets", "1024", "4096"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split("|") for line in done.stdout.splitlines() if line.startswith("| ") and "bucket" not in line]
    assert [int(r[1]) for r in rows] == [0, 1024, 4096], done.stdout
    assert all(float(r[6]) <= 1e-5 for r in rows), done.stdout  # max abs diff against no padding
    assert "profile of 1 genes not run before" in done.stdout


def test_calibrate_then_predict_use_the_calibrated_checkpoint(genome_run, tmp_path):
    out, prepared, _ = genome_run
    calibrated, best = tmp_path / "C", out / "checkpoints" / "best"
    result = runner.invoke(
        app, with_checkpoint("calibrate", best, prepared, "--out", str(calibrated), "--device", "cpu")
    )
    assert result.exit_code == 0, result.output
    assert "ECE on calibration genes" in result.stdout and (calibrated / "reliability.png").is_file()
    assert "fitted: temperature: acceptor T = " in result.stdout  # what was fitted, not only its effect
    config = json.loads((calibrated / "config.json").read_text())
    assert config["calibration"]["method"] == "temperature"
    # refuses the checkpoint's test genes
    refused = runner.invoke(
        app, with_checkpoint("calibrate", best, prepared, "--out", str(tmp_path / "X"), "--genes", GENOME_CHR3[0])
    )
    assert refused.exit_code == 3 and "test genes" in refused.output
    from meta_layer_cli.io.demo import demo_gene_info

    name = demo_gene_info()[GENOME_CHR3[0]]["gene"]
    by_name = runner.invoke(
        app, with_checkpoint("calibrate", best, prepared, "--out", str(tmp_path / "Y"), "--genes", name)
    )
    assert by_name.exit_code == 3 and "test genes" in by_name.output  # the name is that test gene, refused too
    table = tmp_path / "p.parquet"
    genes, bigwig = ",".join(GENOME_CHR3[:2]), str(tmp_path / "bw" / "m")
    options = ["--genes", genes, "--out", str(table), "--bigwig", bigwig, "--no-progress", "--device", "cpu"]
    result = runner.invoke(app, with_checkpoint("predict", calibrated, prepared, *options))
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(table)
    from meta_layer_cli.artifacts import load_gene_arrays
    from meta_layer_cli.models.apply import CanonicalPredictor

    predictor = CanonicalPredictor.load(calibrated)
    assert predictor.calibration is not None
    _, genes = load_gene_arrays(prepared, GENOME_CHR3[:2])
    for g in genes:
        rows = frame.filter(pl.col("gene_id") == g.gene_id)
        expected = predictor(g.codes, g.tracks)
        np.testing.assert_allclose(
            rows.select("meta_neither", "meta_acceptor", "meta_donor").to_numpy(), expected, atol=1e-6
        )
    assert sorted(p.name for p in (tmp_path / "bw").iterdir()) == [
        "m.acceptor.minus.bw",
        "m.acceptor.plus.bw",
        "m.donor.minus.bw",
        "m.donor.plus.bw",
    ]
    # each bigWig holds the table's probabilities at the genes' 1-based genomic positions, on their strand
    import pyBigWig

    for kind in ("acceptor", "donor"):
        for strand, label in (("+", "plus"), ("-", "minus")):
            rows = frame.filter(pl.col("strand") == strand)
            bw = pyBigWig.open(str(tmp_path / "bw" / f"m.{kind}.{label}.bw"))
            for chrom in rows["chrom"].unique().to_list():
                part = rows.filter(pl.col("chrom") == chrom).sort("position")
                got = bw.values(chrom, int(part["position"].min()) - 1, int(part["position"].max()), numpy=True)
                want = np.full(len(got), np.nan)
                want[part["position"].to_numpy() - int(part["position"].min())] = part[f"meta_{kind}"].to_numpy()
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
            bw.close()


def test_predict_takes_gene_names_and_sizes_bigwig_contigs_by_the_genome(genome_run, small_genome, tmp_path):
    """`predict --genes` takes names as `prepare --genes` does (it knew ids only), and the bigWig header holds
    each contig's real length (it held the last gene's end)."""
    import pyBigWig

    from meta_layer_cli.io.demo import demo_gene_info
    from meta_layer_cli.io.fasta import Fasta

    out, prepared, _ = genome_run
    name = demo_gene_info()[GENOME_CHR3[0]]["gene"]
    assert name and name != GENOME_CHR3[0]
    table = tmp_path / "named.parquet"
    best = out / "checkpoints" / "best"
    options = ["--genes", f"{name},{GENOME_CHR3[1]}", "--out", str(table), "--bigwig", str(tmp_path / "bw" / "m")]
    result = runner.invoke(app, with_checkpoint("predict", best, prepared, *options, "--no-progress"))
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(table)["gene_id"].unique(maintain_order=True).to_list() == GENOME_CHR3[:2]
    fasta = Fasta(small_genome[0])
    chrom = demo_gene_info()[GENOME_CHR3[0]]["chrom"]
    for path in (tmp_path / "bw").iterdir():
        bw = pyBigWig.open(str(path))
        assert bw.chroms() == {chrom: fasta.lengths[chrom]}, path.name
        bw.close()
    fasta.close()
    unknown = runner.invoke(
        app, with_checkpoint("predict", best, prepared, "--genes", "NOT_A_GENE", "--out", str(tmp_path / "x.parquet"))
    )
    assert unknown.exit_code == 3 and "NOT_A_GENE" in unknown.output


def test_predict_from_fasta_matches_predict_from_the_prepared_folder(genome_run, small_genome, tmp_path):
    out, prepared, _ = genome_run
    fasta, gtf = small_genome
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    common = [
        "predict",
        "--checkpoint",
        str(out / "checkpoints" / "best"),
        "--genes",
        GENOME_CHR3[3],
        "--no-progress",
        "--device",
        "cpu",
        "--models-dir",
        str(shared_path("models")),
    ]
    assert runner.invoke(app, [*common, "--data", str(prepared), "--out", str(a)]).exit_code == 0
    result = runner.invoke(app, [*common, "--fasta", str(fasta), "--gtf", str(gtf), "--out", str(b)])
    assert result.exit_code == 0, result.output
    from_folder, from_fasta = pl.read_parquet(a), pl.read_parquet(b)
    np.testing.assert_array_equal(from_folder["meta_donor"].to_numpy(), from_fasta["meta_donor"].to_numpy())


def test_a_rerun_into_the_finished_folder_is_refused_or_skipped(genome_run):
    out, prepared, _ = genome_run
    args = genome_run_args(prepared, out)
    refused = runner.invoke(app, args)
    assert refused.exit_code == 3 and "finished" in refused.output
    skipped = runner.invoke(app, [*args, "--if-changed"])
    assert skipped.exit_code == 5 and "nothing to do" in skipped.output
    assert "error" not in skipped.output  # up to date is the normal outcome of a cron rerun, not a failure
    changed = runner.invoke(app, [*args[:-1], "training.epochs=4"])
    assert changed.exit_code == 3 and "config:" in changed.output


def test_a_split_that_cannot_be_made_says_how_to_fix_it(small_genome_prepared, tmp_path):
    """Every gene of the genome on SpliceAI's test chromosomes: the message names them, where the genes lie and
    the options that fix it (it said only "0 training genes are too few to hold out 2 for validation")."""
    result = runner.invoke(
        app, ["train-canonical", "--data", str(small_genome_prepared), "--out", str(tmp_path / "R"), "--device", "cpu"]
    )
    assert result.exit_code == 3, result.output
    line = result.output.strip()
    assert line.startswith("error: 0 training genes are too few") and "\n" not in line
    for part in (
        "test chromosomes 1, 3, 5, 7, 9 (SpliceAI's, the default) hold 21 of the 21 genes",
        "chr1 (14 genes), chr3 (7 genes)",
        "--test-chroms chr3",
        "--split gene --test-fraction",
    ):
        assert part in line, part


def test_evaluate_refuses_unknown_genes_and_an_empty_list(genome_run):
    out, prepared, _ = genome_run
    base = with_checkpoint("evaluate", out / "checkpoints" / "best", prepared, "--json")
    unknown = runner.invoke(app, [*base, "--genes", f"{GENOME_CHR3[0]},nope"])
    assert unknown.exit_code == 3 and "nope" in unknown.output
    empty = runner.invoke(app, [*base, "--genes", ","])
    assert empty.exit_code == 2
    from meta_layer_cli.io.demo import demo_gene_info

    named = runner.invoke(app, [*base, "--genes", demo_gene_info()[GENOME_CHR3[0]]["gene"]])  # a name, as --help says
    assert named.exit_code == 0, named.output
    assert json.loads(named.stdout)["meta"]["n_genes"] == 1


def test_train_canonical_under_torchrun_splits_the_genes_between_ranks(small_genome_prepared, tmp_path):
    """Two CPU processes (gloo): every rank holds only its share of the training genes; rank 0 writes the run."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "R"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={port}",
        "-m",
        "meta_layer_cli",
        *chr3_held_out_args(small_genome_prepared, out, sets=TINY_SETS),
        "--set",
        "training.epochs=1",
        "--set",
        "structure=false",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    split = CanonicalCheckpoint.read(out / "checkpoints" / "best").split
    n_train = len(split["train"])
    shares = sorted(
        int(line.split(": ")[1].split(" of ")[0])
        for line in result.stderr.splitlines()
        if "training genes sampled by this rank" in line
    )
    assert shares == sorted([len(split["train"][0::2]), len(split["train"][1::2])]) and sum(shares) == n_train
    assert (out / "metrics.json").is_file()


def test_predict_refuses_tracks_of_other_weights_or_the_wrong_number_of_folders(genome_run, small_genome, tmp_path):
    from meta_layer_cli.jobs.prepare import prepare

    out, prepared, _ = genome_run
    fasta, gtf = small_genome
    other = tmp_path / "osai400"  # the same genes, the 400-nt OpenSpliceAI: other weights
    prepare(
        other,
        "openspliceai",
        shared_path("models", "openspliceai-mane", "400nt"),
        fasta=fasta,
        gtf=gtf,
        genes=GENOME_CHR3[:1],
        device="cpu",
        progress=False,
    )
    checkpoint = str(out / "checkpoints" / "best")
    result = runner.invoke(app, with_checkpoint("predict", checkpoint, other, "--out", str(tmp_path / "x.parquet")))
    assert result.exit_code == 3 and "weights_checksum" in result.output and not (tmp_path / "x.parquet").exists()
    twice = with_checkpoint(
        "predict", checkpoint, prepared, "--data", str(prepared), "--out", str(tmp_path / "y.parquet")
    )
    result = runner.invoke(app, twice)
    assert result.exit_code == 2 and "trained on 1 base model(s); got 2" in result.output
    result = runner.invoke(app, with_checkpoint("evaluate", checkpoint, other))
    assert result.exit_code == 3 and "weights_checksum" in result.output


def _tiny_lightweight_config(folder) -> Path:
    """The shipped lightweight config (what `metalayer demo` trains) with the tiny model and training settings:
    the demo command's wiring is tested here; the real demo runs once in CI (.ci/run, README command 1)."""
    import yaml

    config = yaml.safe_load(builtin_config("lightweight").read_text())
    config["model"].update(TINY_MODEL)
    config["training"].update(TINY_TRAINING)
    path = Path(folder) / "lightweight.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_demo_command_end_to_end(tmp_path, monkeypatch):
    """`metalayer demo` on a few short genes: SpliceAI tracks cached, the lightweight config trained (tiny
    settings, one epoch), the report written; a rerun reuses the cached tracks and keeps the finished demo (it
    deleted the checkpoint, metrics and report at start and trained again)."""
    from meta_layer_cli.jobs import demo

    tiny = _tiny_lightweight_config(tmp_path)
    monkeypatch.setattr(demo, "builtin_config", lambda name: tiny if name == "lightweight" else builtin_config(name))
    genes = ",".join(default_demo_genes(10))  # the ten shortest (1-2 kb each): SpliceAI's 10-kb context dominates
    args = ["demo", "--out", str(tmp_path / "d"), "--genes", genes, "--epochs", "1", "--device", "cpu", "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "held-out genes" in result.output and (tmp_path / "d" / "report.html").is_file()
    report = (tmp_path / "d" / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 4 and "metalayer demo" in report  # with the training curve
    metrics = json.loads((tmp_path / "d" / "run" / "metrics.json").read_text())
    assert sorted(metrics["split"]["train"] + metrics["split"]["validation"] + metrics["split"]["test"]) == sorted(
        genes.split(",")
    )
    config = json.loads((tmp_path / "d" / "run" / "checkpoints" / "best" / "config.json").read_text())
    assert config["model"]["width"] == TINY_MODEL["width"] and len(metrics["history"]) == 1
    finished = {
        p: p.stat().st_mtime_ns
        for p in (tmp_path / "d").rglob("*")
        if p.is_file() and "cache" not in p.parts and p.name != ".metalayer.lock"
    }
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "showing the finished demo's results" in again.output and "held-out genes" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # nothing deleted, rewritten or retrained
    log = (tmp_path / "d" / "cache" / "tracks").glob("*/log.jsonl")
    counts = [json.loads(line)["predicted_genes"] for f in log for line in f.read_text().splitlines()]
    assert counts[0] == 10 and set(counts[1:]) == {0}  # later lookups found every gene in the cache


def test_the_default_cache_is_announced_the_first_time_it_is_written(osai80, tmp_path, monkeypatch, caplog):
    """Tracks cached in ~/.cache/metalayer grew without a word: the first write of a process says where, how big
    and how to move it; later writes, and reads of what is there, say nothing."""
    import logging

    from meta_layer_cli.jobs.canonical import demo_tracks

    monkeypatch.delenv("METALAYER_CACHE", raising=False)  # the default cache, in a home of its own
    monkeypatch.setenv("HOME", str(tmp_path))
    with caplog.at_level(logging.INFO, logger="meta_layer_cli"):
        demo_tracks(osai80, ["148"], None, progress=False)
        demo_tracks(osai80, ["148", "150"], None, progress=False)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("caching")]
    assert len(said) == 1, said
    assert f"in {tmp_path / '.cache' / 'metalayer'} (now empty;" in said[0] and "set $METALAYER_CACHE" in said[0]
