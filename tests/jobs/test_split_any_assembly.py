"""Splits on any assembly's names: RefSeq accessions found by chromosome number (prepare records it from the FASTA
headers), a message listing the contigs when no test chromosome matches, and --split gene|block on the command line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from meta_layer_cli.commands.main import app
from meta_layer_cli.jobs.canonical import TrainingData, gene_table, resolve_canonical_config, split_for, training_data
from meta_layer_cli.models.checkpoint import CanonicalCheckpoint
from meta_layer_cli.runtime.errors import InputDataError
from tests.conftest import GENOME_CHR1, GENOME_CHR3, shared_path

runner = CliRunner()
ACCESSIONS = {f"NC_0000{n:02d}.{10 + n % 3}": str(n) for n in range(1, 11)}  # NC_000001.11 is chromosome 1, ...


def refseq_data(named: bool = True, genes_per_contig: int = 12) -> TrainingData:
    """Genes on ten RefSeq accessions; ``named``: prepare found their chromosome numbers in the FASTA headers."""
    genes = [(f"{contig}-g{i}", contig, 5000 * i) for contig in ACCESSIONS for i in range(genes_per_contig)]
    table = gene_table(
        {
            "gene_id": [g for g, _, _ in genes],
            "chrom": [c for _, c, _ in genes],
            "start": [s for _, _, s in genes],
            "end": [s + 3000 for _, _, s in genes],
            "length": [3000] * len(genes),
        }
    )
    ids = [g for g, _, _ in genes]
    return TrainingData([], [], ids, True, {}, None, table, dict(ACCESSIONS) if named else {})


def config(**arguments):
    return resolve_canonical_config(None, None, None, data=["prepared"], **arguments)


def test_the_default_split_finds_refseq_accessions_by_chromosome_number():
    """Was: SpliceAI's test chromosomes 1, 3, 5, 7, 9 matched nothing on NC_0000xx accessions (an error)."""
    data = refseq_data()
    split = split_for(config(), data)
    assert {data.chromosomes()[g] for g in split.test} == {
        "NC_000001.11",
        "NC_000003.10",
        "NC_000005.12",
        "NC_000007.11",
        "NC_000009.10",
    }
    chromosomes = data.chromosomes()
    assert not {chromosomes[g] for g in split.train + split.validation} & {chromosomes[g] for g in split.test}
    by_number = split_for(config(test_chroms=["chr2"]), data)
    by_name = split_for(config(test_chroms=["NC_000002.12"]), data)
    assert by_number == by_name and {data.chromosomes()[g] for g in by_name.test} == {"NC_000002.12"}


def test_when_no_test_chromosome_matches_the_message_lists_the_contigs_and_the_ways_out():
    data = refseq_data(named=False)
    with pytest.raises(InputDataError) as err:
        split_for(config(), data)
    message = str(err.value)
    assert "no genes on the test chromosomes 1, 3, 5, 7, 9" in message
    assert all(f"{contig} (12 genes)" in message for contig in ACCESSIONS)
    assert "--test-chroms" in message and "--split gene" in message and "--split block" in message
    named = refseq_data()
    with pytest.raises(InputDataError, match=r"NC_000001.11 \(chromosome 1, 12 genes\)"):
        split_for(config(test_chroms=["11"]), named)


@pytest.mark.parametrize("method", ["gene", "block"])
def test_gene_and_block_splits_on_a_one_contig_genome(method):
    """Was: only ``--set split.method=gene`` split a one-chromosome genome; no block split."""
    one = refseq_data(genes_per_contig=60)
    keep = [g for g in one.gene_ids if one.chromosomes()[g] == "NC_000001.11"]
    one.gene_ids = keep
    split = split_for(config(split=method, test_fraction=0.25), one)
    assert len(split.test) == 15 if method == "gene" else 15 <= len(split.test) < 15 + 6
    assert set(split.validation) <= set(keep) - set(split.test) and len(split.validation) >= 1
    assert split == split_for(config(split=method, test_fraction=0.25), one)  # seeded
    if method == "block":  # whole blocks of neighbours: a few contiguous runs
        order = sorted(keep, key=lambda g: one.loci()[g][1])
        held = [g in split.test for g in order]
        assert sum(1 for x, y in zip([False, *held], held) if y and not x) <= 3


def test_prepare_records_accession_chromosomes_and_training_uses_them(small_genome, tmp_path):
    """The small genome renamed as RefSeq names it (NC_000001.11 / NC_000003.12 with NCBI's FASTA headers):
    prepare records the mapping in the manifest and --test-chroms 3 holds out the NC_000003.12 genes."""
    from meta_layer_cli.jobs.prepare import prepare

    fasta, gtf = small_genome
    names = {
        "chr1": ("NC_000001.11", "Homo sapiens chromosome 1, GRCh38.p14 Primary Assembly"),
        "chr3": ("NC_000003.12", "Homo sapiens chromosome 3, GRCh38.p14 Primary Assembly"),
    }
    text = fasta.read_text()
    for old, (new, description) in names.items():
        text = text.replace(f">{old}\n", f">{new} {description}\n")
    renamed_fasta = tmp_path / "GCF_genomic.fna"
    renamed_fasta.write_text(text)
    lines = [
        names[line.split("\t")[0]][0] + line[len(line.split("\t")[0]) :] if "\t" in line else line
        for line in gtf.read_text().splitlines(keepends=True)
    ]
    renamed_gtf = tmp_path / "genomic.gtf"
    renamed_gtf.write_text("".join(lines))
    out = tmp_path / "prepared"
    genes = GENOME_CHR1[:3] + GENOME_CHR3[:3]
    manifest = prepare(
        out,
        "openspliceai",
        shared_path("models", "openspliceai-mane", "80nt"),
        fasta=renamed_fasta,
        gtf=renamed_gtf,
        genes=genes,
        device="cpu",
        progress=False,
    )
    assert manifest["source"]["chromosomes"] == {"NC_000001.11": "1", "NC_000003.12": "3"}
    cfg = config(test_chroms=["3"])
    cfg.data = [str(out)]
    split = split_for(cfg, training_data(cfg, progress=False))
    assert sorted(split.test) == sorted(GENOME_CHR3[:3])
    result = runner.invoke(app, ["calibrate", "--data", str(out), "--out", str(tmp_path / "cal"), "--test-chroms", "3"])
    assert result.exit_code == 0, result.output
    calibrated = CanonicalCheckpoint.read(tmp_path / "cal").split
    assert sorted(calibrated["test"]) == sorted(GENOME_CHR3[:3])


def test_the_command_line_split_options(small_genome_prepared, tmp_path):
    base = ["train-canonical", "--data", str(small_genome_prepared), "--out", str(tmp_path / "run"), "--device", "cpu"]
    unmatched = runner.invoke(app, [*base, "--test-chroms", "5"])
    assert unmatched.exit_code == 3, unmatched.output
    assert "chr1 (14 genes), chr3 (7 genes)" in unmatched.output and "--split gene" in unmatched.output
    assert runner.invoke(app, [*base, "--split", "exon"]).exit_code == 2
    too_much = runner.invoke(app, [*base, "--split", "block", "--test-fraction", "1.5"])
    assert too_much.exit_code == 2 and "split.test" in too_much.output, too_much.output
    assert not (tmp_path / "run").exists()
