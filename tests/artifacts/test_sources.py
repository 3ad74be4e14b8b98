"""FastaSource on the annotation conventions users have (hand-written excerpts of tests/fixtures/annotations on a
random genome with each convention's contig names): biotype filters, gene ids, invalid genes, chromosome names from
FASTA headers, the parse cache."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from meta_layer_cli.artifacts import FastaSource
from meta_layer_cli.runtime.errors import UsageError
from tests.conftest import FIXTURES

ANNOTATIONS = FIXTURES / "annotations"
# each convention's contig names, and the FASTA header an assembly of that source carries
CONTIGS = {
    "gencode": [("chr1", ""), ("chr2", "")],
    "ensembl": [
        ("1", "dna:chromosome chromosome:GRCh38:1:1:248956422:1 REF"),
        ("2", "dna:chromosome chromosome:GRCh38:2:1:242193529:1 REF"),
    ],
    "refseq": [
        ("NC_000001.11", "Homo sapiens chromosome 1, GRCh38.p14 Primary Assembly"),
        ("NC_000002.12", "Homo sapiens chromosome 2, GRCh38.p14 Primary Assembly"),
    ],
    "embl_augustus": [("OU000001.1", "Example species genome assembly, chromosome: 1")],
}
PROTEIN_CODING = {
    "gencode": ["ENSG00000100001.5", "ENSG00000100002.9"],
    "ensembl": ["ENSG00000100001", "ENSG00000100002"],
    "refseq": ["ALPHA", "LOC105370002"],
    "embl_augustus": ["EX1A_LOCUS1", "EX1A_LOCUS2"],
}


def write_genome(path, contigs, length: int = 12_000):
    rng = np.random.default_rng(0)
    with open(path, "w") as fh:
        for name, description in contigs:
            fh.write(f">{name} {description}".rstrip() + "\n")
            seq = "".join(rng.choice(list("ACGT"), length))
            fh.writelines(seq[i : i + 60] + "\n" for i in range(0, length, 60))
    return path


@pytest.mark.parametrize("suffix", ["gtf", "gff3"])
@pytest.mark.parametrize("convention", list(CONTIGS))
def test_biotype_protein_coding_works_on_every_convention(tmp_path, convention, suffix):
    """Was: on NCBI and EMBL annotations (biotype on gene lines only) and GFF3s with gene_biotype=, every gene was
    kept; now the same genes from the GTF and the GFF3, found by the same ids."""
    fasta = write_genome(tmp_path / "genome.fa", CONTIGS[convention])
    source = FastaSource(fasta, ANNOTATIONS / f"{convention}.{suffix}", biotype=["protein_coding"], cache=False)
    assert sorted(e.gene_id for e in source.entries) == PROTEIN_CODING[convention]
    others = {"gencode": 2, "ensembl": 2, "refseq": 3, "embl_augustus": 1}
    assert source.info["filtered_by_biotype"] == others[convention]
    for gene_id in PROTEIN_CODING[convention]:
        assert [e.gene_id for e in source.select([gene_id]).entries] == [gene_id]


def test_a_biotype_filter_on_an_annotation_without_biotypes_stops_with_one_line(tmp_path):
    """Was: kept every gene (exit 0). Now exit 2 before any model is loaded."""
    from meta_layer_cli.commands.main import app

    fasta = write_genome(tmp_path / "genome.fa", CONTIGS["gencode"])
    plain = tmp_path / "plain.gtf"
    plain.write_text(
        "".join(
            f'chr1\tX\texon\t{s}\t{e}\t.\t+\t.\tgene_id "G"; transcript_id "T";\n' for s, e in ((101, 200), (301, 400))
        )
    )
    with pytest.raises(UsageError, match="names no gene biotypes"):
        FastaSource(fasta, plain, biotype=["protein_coding"], cache=False)
    result = CliRunner().invoke(
        app,
        [
            "prepare",
            "--fasta",
            str(fasta),
            "--gtf",
            str(plain),
            "--biotype",
            "protein_coding",
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ],
    )
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "names no gene biotypes" in lines[0], result.output
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_genes_before_position_1_are_dropped_by_name(tmp_path):
    """Was: a GTF exon start <= 0 (or a table's negative start) built a gene reaching position -5, mostly N."""
    fasta = write_genome(tmp_path / "genome.fa", CONTIGS["gencode"])
    gtf = tmp_path / "neg.gtf"
    gtf.write_text(
        (ANNOTATIONS / "gencode.gtf").read_text()
        + 'chr2\tX\texon\t-5\t100\t.\t+\t.\tgene_id "NEG"; transcript_id "TN";\n'
        + 'chr2\tX\texon\t201\t300\t.\t+\t.\tgene_id "NEG"; transcript_id "TN";\n'
    )
    source = FastaSource(fasta, gtf, cache=False)
    assert "NEG" not in {e.gene_id for e in source.entries} and len(source.entries) == 4
    reasons = {d["gene_id"]: d["reason"] for d in source.dropped}
    assert reasons["NEG"] == "transcript TN: exon -5-100 starts before position 1 of chr2"
    with pytest.raises(ValueError, match=r"NEG \(dropped: transcript TN: exon -5-100 starts before position 1"):
        source.select(["NEG"])
    table = tmp_path / "genes.txt"
    table.write_text(
        "#NAME\tCHROM\tSTRAND\tTX_START\tTX_END\tEXON_START\tEXON_END\n"
        "NEGT\tchr1\t+\t-6\t300\t-6,200,\t100,300,\n"
        "OKT\tchr1\t-\t500\t900\t500,800,\t600,900,\n"
    )
    source = FastaSource(fasta, table, cache=False)
    assert [e.gene_id for e in source.entries] == ["OKT"]
    assert source.dropped == [{"gene_id": "NEGT", "reason": "starts at -5, before position 1 of chr1"}]


def test_fasta_headers_name_the_chromosomes_of_accessions(tmp_path):
    """prepare records which chromosome an accession is (its FASTA header says so), for the split."""
    fasta = write_genome(tmp_path / "genome.fa", CONTIGS["refseq"])
    source = FastaSource(fasta, ANNOTATIONS / "refseq.gff3", cache=False)
    assert source.info["chromosomes"] == {"NC_000001.11": "1", "NC_000002.12": "2"}
    ensembl = FastaSource(write_genome(tmp_path / "e.fa", CONTIGS["ensembl"]), ANNOTATIONS / "ensembl.gtf", cache=False)
    assert ensembl.info["chromosomes"] == {}  # "1" is chromosome 1 already


def test_a_parse_cached_by_an_older_reader_is_not_reused(tmp_path):
    """Was: the cache was keyed by file checksum and rule only, so a whole-genome GFF3 parsed before a reader fix kept
    giving the old genes (``gene-LOC..`` ids, no biotypes)."""
    from meta_layer_cli.artifacts.sources import load_annotation_genes
    from meta_layer_cli.runtime.fingerprint import file_checksum

    annotation = ANNOTATIONS / "refseq.gff3"
    stale = tmp_path / "annotations" / f"{file_checksum(annotation)}-canonical.json.gz"
    stale.parent.mkdir()
    old = {
        "transcript_id": "rna-NM_000001.4",
        "gene_id": "gene-ALPHA",
        "gene_name": "ALPHA",
        "chrom": "NC_000001.11",
        "strand": "+",
        "exons": [[1000, 1200]],
        "tags": [],
        "biotype": "",
    }
    stale.write_bytes(gzip.compress(json.dumps({"genes": [old], "dropped": []}).encode()))
    genes, _, _ = load_annotation_genes(annotation, cache=tmp_path)
    assert "ALPHA" in {g.gene_id for g in genes} and "gene-ALPHA" not in {g.gene_id for g in genes}
    again, _, _ = load_annotation_genes(annotation, cache=tmp_path)  # now from this reader's cache entry
    assert again == genes


def test_a_folder_prepared_by_an_older_annotation_reader_is_refused(tmp_path):
    """The same GFF3 gives other gene ids and biotypes with this reader (gene-ALPHA -> ALPHA): a rerun into a folder
    an older reader prepared would plan both; it is refused naming the reader."""
    from meta_layer_cli.jobs.prepare import prepare
    from meta_layer_cli.runtime.errors import ChangedInputsError
    from tests.conftest import shared_path

    fasta = write_genome(tmp_path / "genome.fa", CONTIGS["refseq"])
    out, weights = tmp_path / "prepared", shared_path("models", "openspliceai-mane", "80nt")
    args = dict(fasta=fasta, gtf=ANNOTATIONS / "refseq.gff3", genes=["TRNAA-AGC"], device="cpu", progress=False)
    manifest = prepare(out, "openspliceai", weights, **args)
    assert manifest["fingerprint"]["annotation reader"] >= 2
    old = json.loads((out / "manifest.json").read_text())
    del old["fingerprint"]["annotation reader"]  # as the reader before version 2 wrote it
    (out / "manifest.json").write_text(json.dumps(old))
    with pytest.raises(ChangedInputsError, match=r"made from other inputs \(annotation reader: null -> \d+\)"):
        prepare(out, "openspliceai", weights, **args)


def test_the_default_cache_is_announced_once_and_a_chosen_one_never(tmp_path, monkeypatch, caplog):
    import logging

    from meta_layer_cli.artifacts import sources

    monkeypatch.setattr(sources, "_announced", set())
    monkeypatch.setenv("METALAYER_CACHE", str(tmp_path / "chosen"))
    with caplog.at_level(logging.INFO, logger=sources.logger.name):
        sources.announce_cache("the parsed annotation")
    assert "caching" not in caplog.text
    monkeypatch.delenv("METALAYER_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    with caplog.at_level(logging.INFO, logger=sources.logger.name):
        sources.announce_cache("the parsed annotation")
        sources.announce_cache("tracks")
    assert caplog.text.count("caching") == 1 and str(tmp_path / ".cache" / "metalayer") in caplog.text
