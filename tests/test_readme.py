"""README.md cannot drift from the tool: every ``metalayer`` command in its ``bash`` blocks is parsed by the real
command line (the command and each option exist, values have the right type, required options are given), every
command's ``--help`` works, and, marked slow, the "Your genome" block runs as written on a tiny genome.

Placeholders the slow test substitutes (the README says which commands are illustrative): the genome and
annotation files (``GRCh38.fa.gz``, ``gencode.v44.annotation.gtf.gz``) by a small real-sequence genome, the
genes ``BRCA1,TP53`` by two of its genes, ``--profile gpu`` by ``--profile cpu`` on a machine without CUDA, and
the training settings by tiny ones (``--set``), so that the chain runs in CI time.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from meta_layer_cli.commands.main import GLOBAL_FLAGS, GLOBAL_VALUED, app, hoist_global_options
from tests.conftest import SHARED, TINY_MODEL, TINY_TRAINING, shared_path

README = Path(__file__).resolve().parents[1] / "README.md"
ENTRY_POINTS = ("metalayer", ".venv/bin/metalayer")
SEPARATORS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "(", ")"}


def bash_blocks(text: str) -> list[str]:
    """The bodies of the ```bash fenced blocks, in order."""
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)


def command_lines(block: str) -> list[str]:
    """Shell lines of a block, ``\\`` continuations joined, comment-only lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def invocations(line: str) -> list[list[str]]:
    """The argument lists of every ``metalayer`` (or ``-m meta_layer_cli``) call on one shell line; ``...``
    (README's "the options above") is dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    segments, current = [], []
    for token in lexer:
        if token in SEPARATORS:
            segments.append(current)
            current = []
        else:
            current.append(token)
    segments.append(current)
    out = []
    for words in segments:
        if words and words[0] in ENTRY_POINTS:
            out.append([w for w in words[1:] if w != "..."])
        elif "meta_layer_cli" in words and words[words.index("meta_layer_cli") - 1] == "-m":
            out.append([w for w in words[words.index("meta_layer_cli") + 1 :] if w != "..."])
    return out


def readme_invocations() -> list[list[str]]:
    return [
        args for block in bash_blocks(README.read_text()) for line in command_lines(block) for args in invocations(line)
    ]


def parse(args: list[str]) -> None:
    """Parse ``metalayer ARGS`` as the console script would, without running it: global options, the command,
    then its options (typer raises a TyperException on an unknown command or option, a bad value or a missing
    required option)."""
    words = hoist_global_options(list(args))
    i = 0
    while i < len(words) and (words[i] in GLOBAL_FLAGS or words[i].split("=")[0] in GLOBAL_VALUED):
        i += 1 if words[i] in GLOBAL_FLAGS or "=" in words[i] else 2
    assert i < len(words), f"no command in: metalayer {shlex.join(args)}"
    group = typer.main.get_command(app)
    command = group.get_command(None, words[i])  # type: ignore[arg-type]
    if command is None:
        raise typer.BadParameter(f"no such command {words[i]!r}")
    command.make_context(words[i], words[i + 1 :])


def test_the_readme_has_the_commands_this_test_reads():
    calls = readme_invocations()
    used = {args[0] for args in calls if args and not args[0].startswith("-")} | {
        a for args in calls for a in args if a in ("prepare", "train-canonical", "score-vcf")
    }
    assert {
        "prepare",
        "train-canonical",
        "evaluate",
        "calibrate",
        "predict",
        "score-vcf",
        "merge-vcf",
        "train-delta",
        "demo",
    } <= used, used
    assert len(calls) >= 20


@pytest.mark.parametrize("args", readme_invocations(), ids=lambda a: " ".join(a)[:60])
def test_every_readme_command_parses(args):
    """An option README shows that the command line does not have (or a wrong value type) fails here."""
    parse(args)


def test_a_misspelt_option_would_fail():
    """The parse check above can fail: an option the command line lacks is an error."""
    from typer.exceptions import TyperException

    with pytest.raises(TyperException, match="No such option"):
        parse(["train-canonical", "--data", "x", "--no-such-option"])
    with pytest.raises(TyperException, match="no such command"):
        parse(["no-such-command"])
    with pytest.raises(typer.BadParameter):
        parse(["score-vcf", "-I", "a", "-O", "b", "-R", "c", "-A", "d", "-D", "many"])


@pytest.mark.parametrize("command", sorted(typer.main.get_command(app).commands))  # type: ignore[attr-defined]
def test_every_command_has_help(command):
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


# ---------------------------------------------------------------------------------------------
# the "Your genome" block, as written, on a tiny genome
# ---------------------------------------------------------------------------------------------
def your_genome_block() -> list[str]:
    text = README.read_text()
    section = text.split("### Your genome: prepare, train, evaluate", 1)[1]
    return command_lines(bash_blocks(section)[0])


def test_the_your_genome_block_is_the_chain_the_slow_test_runs():
    lines = your_genome_block()
    assert [args[0] for line in lines for args in invocations(line)] == [
        "prepare",
        "train-canonical",
        "evaluate",
        "calibrate",
        "predict",
    ]
    assert lines[0].startswith("export METALAYER_MODELS=../shared/models")


@pytest.mark.slow
def test_the_your_genome_block_runs_as_written(tmp_path, monkeypatch):
    """prepare -> train-canonical -> evaluate -> calibrate -> predict exactly as README shows them (the
    OpenSpliceAI weights found through $METALAYER_MODELS: the 10,000-nt model), on 21 real genes laid on two
    chromosomes (one of SpliceAI's test chromosomes, one other), with the substitutions of the module docstring."""
    import torch

    from meta_layer_cli.commands.main import app as cli
    from meta_layer_cli.io.demo import demo_gene_info, write_demo_genome
    from tests.conftest import GENOME_CHR1, GENOME_CHR3

    shared_path("models", "openspliceai-mane", "10000nt")
    fasta, gtf = write_demo_genome(tmp_path / "genome", GENOME_CHR1 + GENOME_CHR3, spacer=3000)
    # chr3 -> chr2: SpliceAI's default test chromosomes (1, 3, 5, 7, 9) then hold out chr1 and train on chr2
    for path in (fasta, gtf):
        path.write_text(re.sub(r"^(>?)chr3\b", r"\1chr2", path.read_text(), flags=re.M))
    names = [demo_gene_info()[g]["gene"] for g in GENOME_CHR1[:2]]
    tiny = [f"--set=model.{k}={json.dumps(v)}" for k, v in TINY_MODEL.items()]
    tiny += [f"--set=training.{k}={json.dumps(v)}" for k, v in TINY_TRAINING.items()]
    substitutions = {
        "../shared/models": str(SHARED / "models"),
        "GRCh38.fa.gz": str(fasta),
        "gencode.v44.annotation.gtf.gz": str(gtf),
        "BRCA1,TP53": ",".join(names),
    }
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for line in your_genome_block():
        for old, new in substitutions.items():
            line = line.replace(old, new)
        if line.startswith("export "):
            key, value = line.removeprefix("export ").split("=", 1)
            monkeypatch.setenv(key, value)
            continue
        (args,) = invocations(line)
        if args[0] == "train-canonical":
            args += tiny
            if not torch.cuda.is_available():
                args[args.index("gpu")] = "cpu"
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, f"metalayer {shlex.join(args)}\n{result.output}"
    import polars as pl

    table = pl.read_parquet(tmp_path / "brca1_tp53.parquet")
    assert sorted(table["gene_id"].unique().to_list()) == sorted(GENOME_CHR1[:2])
    assert len(list((tmp_path / "tracks").glob("meta.*.bw"))) >= 2
