"""Nothing lost, nothing silently wrong (issue 18): each case as a user meets it on the command line, with the small
real genome of the demo genes. Refusals are one ``error:`` line with their documented exit code, before anything is
written or computed."""

from __future__ import annotations

import errno
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meta_layer_cli.commands.main import app
from tests.conftest import (
    GENOME_CHR3,
    SHARED,
    chr3_held_out_args,
    pipeline_config,
    shared_path,
    tiny_sets,
    tiny_train_set,
)

runner = CliRunner()
OSAI80 = ["-b", "openspliceai", "--weights", str(SHARED / "models" / "openspliceai-mane" / "80nt")]
TINY_SETS = tiny_sets(epochs=1)


def one_error_line(result, code: int, text: str = "") -> str:
    """The result is exit ``code`` with exactly one line on stderr/stdout, an ``error:`` line holding ``text``."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == code, result.output
    assert len(lines) == 1 and lines[0].startswith("error:") and text in lines[0], result.output
    return lines[0]


def digest(path: Path) -> dict[str, str]:
    """Every file under ``path`` (or the file itself) -> its SHA-256: what must survive a refused command."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, small_genome_prepared):
    """A one-epoch train-canonical run on the small genome (chr3 held out): (run folder, prepared folder)."""
    shared_path("models", "openspliceai-mane", "80nt")
    out = tmp_path_factory.mktemp("robust_run") / "R"
    result = runner.invoke(app, chr3_held_out_args(small_genome_prepared, out, *OSAI80, sets=TINY_SETS))
    assert result.exit_code == 0, result.output
    return out, small_genome_prepared


@pytest.fixture()
def own_copy(tiny_run, tmp_path):
    """A copy of the run and its prepared folder that a test may lose (the refusals below must keep them)."""
    run, prepared = tiny_run
    shutil.copytree(run, tmp_path / "R")
    shutil.copytree(prepared, tmp_path / "P")
    return tmp_path / "R", tmp_path / "P"


# ---------------------------------------------------------------------------------------------
# data lost: no command deletes or overwrites its own inputs
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["run folder", "checkpoint", "data"])
def test_calibrate_never_deletes_its_own_inputs(own_copy, target):
    run, prepared = own_copy
    checkpoint = run / "checkpoints" / "best"
    out = {"run folder": run, "checkpoint": checkpoint, "data": prepared}[target]
    before = {**digest(run), **digest(prepared)}
    result = runner.invoke(
        app, ["calibrate", "--checkpoint", str(checkpoint), "--data", str(prepared), "--out", str(out), "--overwrite"]
    )
    one_error_line(result, 2, "would destroy that input")
    assert {**digest(run), **digest(prepared)} == before


def test_base_only_calibrate_and_prepare_never_replace_their_data(own_copy):
    _, prepared = own_copy
    before = digest(prepared)
    calibrate = runner.invoke(
        app, ["calibrate", "--data", str(prepared), "--out", str(prepared), "--overwrite", "--test-chroms", "chr3"]
    )
    one_error_line(calibrate, 2, f"--out {prepared} is the input --data {prepared}")
    prepare = runner.invoke(
        app,
        [
            "prepare",
            "--data",
            str(prepared),
            "--out",
            str(prepared),
            "--overwrite",
            *OSAI80,
            "--no-progress",
            "--device",
            "cpu",
        ],
    )
    one_error_line(prepare, 2, "would destroy that input")
    assert digest(prepared) == before


def test_score_vcf_and_merge_vcf_never_write_over_an_input(genome, tmp_path):
    from tests.inference.vcf_fixtures import REF_DIR, score_vcf_args

    vcf = tmp_path / "in.vcf"
    shutil.copy(REF_DIR / "input.vcf", vcf)
    before = digest(vcf)
    for output in (vcf, genome / "ref.fa", genome / "annotation.txt"):
        args = score_vcf_args(vcf, output, genome / "ref.fa", genome / "annotation.txt", *OSAI80, "--no-progress")
        result = runner.invoke(app, args)
        one_error_line(result, 2, "would destroy that input")
    link = tmp_path / "link.vcf"
    link.symlink_to(vcf)
    merged = runner.invoke(app, ["merge-vcf", "-O", str(link), str(vcf)])
    one_error_line(merged, 2, "would destroy that input")
    assert digest(vcf) == before


# ---------------------------------------------------------------------------------------------
# silently wrong, exit 0
# ---------------------------------------------------------------------------------------------
def test_evaluate_on_another_annotation_holds_out_by_locus(tiny_run, small_genome, tmp_path):
    """The same genome under other gene ids: the checkpoint's training and validation genes are still seen."""
    run, _ = tiny_run
    fasta, gtf = small_genome
    renamed = tmp_path / "renamed.gtf"
    text = gtf.read_text()
    renamed.write_text(re.sub(r'(gene_id|transcript_id) "', r'\1 "other_', text))
    prepared = tmp_path / "other"
    result = runner.invoke(
        app,
        [
            "prepare",
            "--fasta",
            str(fasta),
            "--gtf",
            str(renamed),
            *OSAI80,
            "--out",
            str(prepared),
            "--no-progress",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    evaluated = runner.invoke(
        app, ["evaluate", "--checkpoint", str(run / "checkpoints" / "best"), "--data", str(prepared), "--json"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["meta"]["n_genes"] == len(GENOME_CHR3)  # the chr3 genes only


def test_merge_vcf_refuses_shards_of_another_input(genome, tmp_path):
    from meta_layer_cli.inference.vcf import score_vcf
    from meta_layer_cli.inference.vcf_shards import merge_vcf
    from meta_layer_cli.runtime.errors import InputDataError
    from tests.inference.stub_models import StubModel
    from tests.inference.vcf_fixtures import REF_DIR

    lines = (REF_DIR / "input.vcf").read_text().splitlines()
    header, body = [x for x in lines if x.startswith("#")], [x for x in lines if not x.startswith("#")]
    first, second = tmp_path / "a.vcf", tmp_path / "b.vcf"
    first.write_text("\n".join(header + body) + "\n")
    second.write_text("\n".join(header + body[::-1]) + "\n")  # same header, same number of lines, other records
    shards = []
    for k, source in ((1, first), (2, second)):
        shards.append(tmp_path / f"s{k}.vcf")
        score_vcf(
            source,
            shards[-1],
            genome / "ref.fa",
            genome / "annotation.txt",
            base_model=StubModel(context=5),
            progress=False,
            shard=f"{k}/2",
        )
    with pytest.raises(InputDataError, match="another input VCF"):
        merge_vcf(shards, tmp_path / "merged.vcf")
    assert not (tmp_path / "merged.vcf").exists()


@pytest.fixture()
def unfinished(tiny_run, tmp_path):
    """A copy of the prepared folder with one gene's tracks missing (a shard that has not run)."""
    _, prepared = tiny_run
    copy = tmp_path / "unfinished"
    shutil.copytree(prepared, copy)
    from meta_layer_cli.artifacts.tracks import gene_track_path

    gene_track_path(copy, GENOME_CHR3[0]).unlink()
    return copy


def test_every_reader_of_an_unfinished_folder_refuses_it_unless_allow_partial(tiny_run, unfinished, tmp_path):
    run, _ = tiny_run
    checkpoint = str(run / "checkpoints" / "best")
    commands = {
        "predict": [
            "predict",
            "--checkpoint",
            checkpoint,
            "--data",
            str(unfinished),
            "--out",
            str(tmp_path / "p.parquet"),
            "--no-progress",
        ],
        "base-only calibrate": [
            "calibrate",
            "--data",
            str(unfinished),
            "--out",
            str(tmp_path / "c"),
            "--test-chroms",
            "chr3",
        ],
        "prepare --data": [
            "prepare",
            "--data",
            str(unfinished),
            *OSAI80,
            "--out",
            str(tmp_path / "again"),
            "--no-progress",
            "--device",
            "cpu",
        ],
        "evaluate": ["evaluate", "--checkpoint", checkpoint, "--data", str(unfinished)],
        "train-canonical": [
            "train-canonical",
            "--data",
            str(unfinished),
            "--out",
            str(tmp_path / "t"),
            "--test-chroms",
            "chr3",
            *TINY_SETS,
        ],
    }
    for name, args in commands.items():
        one_error_line(runner.invoke(app, args), 3, "is incomplete")
        assert not (tmp_path / "p.parquet").exists(), name
    partial = runner.invoke(app, [*commands["predict"], "--allow-partial"])
    assert partial.exit_code == 0, partial.output
    import polars as pl

    assert GENOME_CHR3[0] not in pl.read_parquet(tmp_path / "p.parquet")["gene_id"].unique().to_list()


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n   \n"])
def test_a_genes_file_naming_no_gene_is_an_error(tiny_run, tmp_path, content):
    run, prepared = tiny_run
    genes = tmp_path / "genes.txt"
    genes.write_text(content)
    out = tmp_path / "p.parquet"
    result = runner.invoke(
        app,
        [
            "predict",
            "--checkpoint",
            str(run / "checkpoints" / "best"),
            "--data",
            str(prepared),
            "--out",
            str(out),
            "--genes-file",
            str(genes),
        ],
    )
    one_error_line(result, 2, "names no gene")
    stdin = runner.invoke(
        app,
        ["prepare", "--data", str(prepared), *OSAI80, "--out", str(tmp_path / "x"), "--genes-file", "-"],
        input=content,
    )
    one_error_line(stdin, 2, "names no gene")
    assert not out.exists() and not (tmp_path / "x").exists()


def test_if_changed_sees_a_change_of_the_tracks_dtype(small_genome_prepared, tmp_path):
    """The same genes and base model, tracks stored in bfloat16: not the data a float32 run was trained on."""
    from meta_layer_cli.jobs.canonical import resolve_canonical_config, run_fingerprint, training_data
    from meta_layer_cli.runtime.fingerprint import differences

    other = tmp_path / "bf16"
    shutil.copytree(small_genome_prepared, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["dtype"] = manifest["fingerprint"]["dtype"] = "bfloat16"
    (other / "manifest.json").write_text(json.dumps(manifest))
    prints = [
        run_fingerprint(cfg, training_data(cfg, progress=False))
        for cfg in (
            resolve_canonical_config(data=[str(d)], test_chroms=["chr3"]) for d in (small_genome_prepared, other)
        )
    ]
    assert prints[0] != prints[1]
    assert any("dtype: float32 -> bfloat16" in d for d in differences(*prints))


def test_evaluate_tracks_shows_the_base_model_and_every_json_row(small_genome_prepared):
    table = runner.invoke(app, ["evaluate", "--tracks", str(small_genome_prepared), "--threshold", "0.3"])
    as_json = runner.invoke(app, ["evaluate", "--tracks", str(small_genome_prepared), "--threshold", "0.3", "--json"])
    assert table.exit_code == 0 and as_json.exit_code == 0, table.output
    metrics = json.loads(as_json.stdout)
    header = next(line for line in table.stdout.splitlines() if "metric" in line)
    assert "base" in header and "meta" not in header
    for key in ("fp_acceptor", "fn_acceptor", "fp_donor", "fn_donor", "pr_auc_macro"):
        row = next(line for line in table.stdout.splitlines() if key in line)
        value = metrics[key]
        assert (f"{value:.4f}" if isinstance(value, float) else str(value)) in row, row
    for bad in ("7", "nan", "-0.1"):
        result = runner.invoke(app, ["evaluate", "--tracks", str(small_genome_prepared), "--threshold", bad])
        one_error_line(result, 2, "--threshold")


# ---------------------------------------------------------------------------------------------
# inputs validated before use
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, text",
    [
        (lambda rows: rows[3].__setitem__(3, "nan"), "is not a probability"),
        (lambda rows: rows[3].__setitem__(4, "1.5"), "is not a probability"),
        (lambda rows: rows.insert(4, list(rows[3])), "appears more than once"),
        (lambda rows: rows[3].__setitem__(1, "twelve"), "is not an integer"),
    ],
)
def test_precomputed_score_tables_are_checked(tmp_path, change, text):
    from meta_layer_cli import load_base_model
    from meta_layer_cli.runtime.errors import InputDataError

    rows = [["chr1", str(p), "+", "0.9", "0.05", "0.05"] for p in range(1, 10)]
    change(rows)
    path = tmp_path / "scores.tsv"
    path.write_text("chrom\tpos\tstrand\tneither\tacceptor\tdonor\n" + "".join("\t".join(r) + "\n" for r in rows))
    with pytest.raises(InputDataError, match=text):
        load_base_model("precomputed", path=path)


@pytest.mark.parametrize(
    "where, value",
    [
        (("run", "thresholds", "meta", "1"), float("nan")),
        (("run", "thresholds", "base", "2"), -0.2),
        (("structure", "min_exon"), -3),
        (("structure", "threshold"), float("inf")),
        (("model", "width"), -8),
    ],
)
def test_checkpoint_numbers_are_checked(own_copy, where, value):
    run, prepared = own_copy
    checkpoint = run / "checkpoints" / "best"
    config = json.loads((checkpoint / "config.json").read_text())
    node = config
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    (checkpoint / "config.json").write_text(json.dumps(config))
    result = runner.invoke(app, ["evaluate", "--checkpoint", str(checkpoint), "--data", str(prepared)])
    one_error_line(result, 3, where[-1])


REF = "CAGGTAAGTACTTACCTTTCAGGAGCTGCAGGTGAGTACGTAGCTAGCTAACAGG"


@pytest.mark.parametrize(
    "row, text",
    [
        (f"v1,XYZ,{REF},5,20", "invalid character 'X'"),
        (f"v1,{REF},{REF[:-1]}T,30,20", "exon_start 30 is not before exon_end 20"),
        (f"v1,{REF},{REF[:-1]}T,abc,20", "exon_start 'abc' is not an integer"),
        (f"v1,{REF},{REF[:-1]}T,5,20,high", "target 'high' is not a number"),
    ],
)
def test_variant_tables_are_checked_before_scoring(tmp_path, row, text):
    table = tmp_path / "variants.csv"
    columns = "id,ref_seq,alt_seq,exon_start,exon_end" + (",target" if row.count(",") == 5 else "")
    table.write_text(f"{columns}\n{row}\n")
    result = runner.invoke(app, ["predict", "--variants", str(table), "--out", str(tmp_path / "o.parquet"), *OSAI80])
    one_error_line(result, 3, text)


def test_a_corrupt_table_is_bad_input_not_an_internal_error(tmp_path, small_genome_prepared):
    from meta_layer_cli.artifacts.tracks import gene_track_path

    table = tmp_path / "t.parquet"
    table.write_bytes(gene_track_path(small_genome_prepared, GENOME_CHR3[0]).read_bytes()[:300])
    result = runner.invoke(app, ["predict", "--variants", str(table), "--out", str(tmp_path / "o.parquet")])
    one_error_line(result, 3, "cannot read it")


@pytest.mark.parametrize("size", ["0", "-3"])
def test_score_vcf_batch_size_must_be_positive(genome, tmp_path, size):
    from tests.inference.vcf_fixtures import REF_DIR, score_vcf_args

    inputs = [REF_DIR / "input.vcf", tmp_path / "o.vcf", genome / "ref.fa", genome / "annotation.txt"]
    result = runner.invoke(app, score_vcf_args(*inputs, *OSAI80, "--batch-size", size))
    assert result.exit_code == 2 and not (tmp_path / "o.vcf").exists(), result.output


def test_score_vcf_drops_the_fields_of_the_tools_former_name(genome, tmp_path):
    from meta_layer_cli.inference.vcf import score_vcf
    from meta_layer_cli.io.vcf import read_vcf
    from tests.inference.stub_models import StubModel
    from tests.inference.vcf_fixtures import REF_DIR

    lines = (REF_DIR / "input.vcf").read_text().splitlines()
    header = [x for x in lines if x.startswith("#")]
    body = [x for x in lines if not x.startswith("#")]
    header = header[:-1] + [
        '##INFO=<ID=MetaSpliceSkip,Number=1,Type=String,Description="old">',
        "##metasplice_score_vcf=<base_model=spliceai>",
        "##metasplice_version=0.0.1",
        header[-1],
    ]

    def with_former_fields(line: str) -> str:
        columns = line.split("\t")
        columns[7] = ";".join([e for e in columns[7].split(";") if e != "."] + ["MetaSpliceSkip=old", "MetaSplice=A|x"])
        return "\t".join(columns)

    body = [with_former_fields(x) if i % 2 and len(x.split("\t")) >= 8 else x for i, x in enumerate(body)]
    source, out = tmp_path / "in.vcf", tmp_path / "out.vcf"
    source.write_text("\n".join(header + body) + "\n")
    score_vcf(
        source, out, genome / "ref.fa", genome / "annotation.txt", base_model=StubModel(context=5), progress=False
    )
    text = out.read_text()
    assert "MetaSplice" not in text and "metasplice" not in text
    assert len(read_vcf(out)[1]) == len(body)


def test_init_config_to_stdout_with_dash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init-config", "lightweight", "-o", "-"])
    assert result.exit_code == 0 and "training:" in result.stdout
    assert not (tmp_path / "-").exists()


# ---------------------------------------------------------------------------------------------
# late aborts: every input and output checked before the expensive steps
# ---------------------------------------------------------------------------------------------
def test_score_vcf_into_a_folder_fails_before_scoring(genome, tmp_path):
    from meta_layer_cli.inference.vcf import score_vcf
    from meta_layer_cli.runtime.errors import UsageError
    from tests.inference.stub_models import StubModel
    from tests.inference.vcf_fixtures import REF_DIR

    model = StubModel(context=5)
    with pytest.raises(UsageError, match="is a folder"):
        score_vcf(
            REF_DIR / "input.vcf",
            tmp_path,
            genome / "ref.fa",
            genome / "annotation.txt",
            base_model=model,
            progress=False,
        )
    assert model.calls == 0


def _pipeline_config(small_genome, tmp_path, **changes) -> Path:
    import yaml

    config = pipeline_config(small_genome, tmp_path / "out", **{"train_set": tiny_train_set(epochs=1), **changes})
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    "changes, code, text",
    [
        ({"vcf": "missing.vcf"}, 3, "pipeline vcf: missing.vcf does not exist"),
        ({"train_config": "missing.yaml"}, 3, "pipeline train_config"),
        ({"predict_genes": ["NO_SUCH_GENE"]}, 3, "NO_SUCH_GENE"),
        ({"train_set": {"model.kernel": 4}}, 2, "kernel must be odd"),
    ],
)
def test_pipeline_checks_everything_before_its_first_step(small_genome, tmp_path, changes, code, text):
    result = runner.invoke(
        app, ["pipeline", "--config", str(_pipeline_config(small_genome, tmp_path, **changes)), "--no-progress"]
    )
    one_error_line(result, code, text)
    assert not (tmp_path / "out" / "prepared").exists()


def test_pipeline_interrupted_during_training_resumes_on_rerun(small_genome, tmp_path, monkeypatch):
    from meta_layer_cli.training.trainer import Trainer

    config = _pipeline_config(small_genome, tmp_path)
    fit = Trainer.fit

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", interrupted)
    first = runner.invoke(app, ["pipeline", "--config", str(config), "--no-progress"])
    assert first.exit_code == 130, first.output
    monkeypatch.setattr(Trainer, "fit", fit)
    again = runner.invoke(app, ["pipeline", "--config", str(config), "--no-progress"])
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "out" / "run" / "run.json").read_text())["status"] == "finished"


# ---------------------------------------------------------------------------------------------
# errors and exit codes
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [
        ["evaluate", "--tracks", "x"],
        ["init-config", "cpu"],
        ["merge-vcf", "-O", "o.vcf", "a.vcf"],
        ["prepare", "--out", "x"],
    ],
)
@pytest.mark.parametrize("log_file", ["{tmp}", "/proc/no/such/dir/x.log", "{tmp}/file/below/a/file.log"])
def test_a_bad_log_file_is_one_line_for_every_command(tmp_path, command, log_file):
    (tmp_path / "file").write_text("")
    result = runner.invoke(app, ["--log-file", log_file.format(tmp=tmp_path), *command])
    one_error_line(result, 2, "--log-file")


@pytest.mark.parametrize(
    "args, code, text",
    [
        (
            ["train-canonical", "--set", "model.kernel=4", "--data", "{prepared}", "--test-chroms", "chr3"],
            2,
            "kernel must be odd",
        ),
        (["train-canonical", "--set", "base_model=nope", "--data", "{prepared}"], 2, "unknown base model 'nope'"),
    ],
)
def test_bad_config_values_are_usage_errors(small_genome_prepared, tmp_path, args, code, text):
    args = [a.format(prepared=small_genome_prepared) for a in args] + ["--out", str(tmp_path / "r")]
    one_error_line(runner.invoke(app, args), code, text)
    assert not (tmp_path / "r" / "checkpoints").exists()


@pytest.mark.parametrize(
    "error, code, text",
    [
        (ValueError("something internal"), 1, "this is a bug"),
        (KeyError("internal_key"), 1, "this is a bug"),
        (RuntimeError("internal state"), 1, "this is a bug"),
        (OSError(errno.ENOSPC, "No space left on device", "/full/out"), 1, "no space left on device"),
    ],
)
def test_untyped_errors_are_bugs_not_the_users_fault(monkeypatch, tmp_path, error, code, text):
    import meta_layer_cli.jobs.prepare as prepare_job

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(prepare_job, "prepare", fail)
    result = runner.invoke(app, ["prepare", "--dataset", "demo", "--out", str(tmp_path)])
    line = one_error_line(result, code, text)
    assert "bad input" not in line


@pytest.mark.parametrize("extra", [["--data", "prepared"], ["--genes", "TP53"]])
def test_evaluate_variants_refuses_options_it_would_ignore(tmp_path, extra):
    """--variants with --data or --genes silently ignored them: a user who asked for a subset got all rows."""
    result = CliRunner().invoke(
        app, ["evaluate", "--checkpoint", str(tmp_path), "--variants", str(tmp_path / "v.csv"), *extra]
    )
    assert result.exit_code == 2 and "without --tracks, --data or --genes" in result.output
