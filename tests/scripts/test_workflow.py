"""The Snakemake workflow (scripts/workflow/Snakefile) end to end on the small genome: 2 prepare shards into one
folder, train, evaluate, 2 predict shards."""

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.conftest import GENOME_CHR1, GENOME_CHR3, TINY_MODEL, TINY_TRAINING, shared_path

ROOT = Path(__file__).resolve().parents[2]
SNAKEFILE = ROOT / "scripts" / "workflow" / "Snakefile"


def write_vcf(path: Path, fasta: Path, gtf: Path, n: int = 12) -> int:
    """SNVs at exon ends of the genome's genes (REF from the FASTA), sorted; returns the record count."""
    import pysam

    from meta_layer_cli.io.gtf import genes_from_transcripts, read_transcripts

    reference = pysam.FastaFile(str(fasta))
    records = []
    for t in genes_from_transcripts(read_transcripts(gtf))[:n]:
        pos = t.exons[0][1]  # 1-based: the last base of the first exon
        ref = reference.fetch(t.chrom, pos - 1, pos).upper()
        alt = "A" if ref != "A" else "C"
        records.append((t.chrom, pos, ref, alt))
    records.sort()
    lines = [
        "##fileformat=VCFv4.2",
        "##contig=<ID=chr1>",
        "##contig=<ID=chr3>",
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ]
    lines += [f"{c}\t{p}\tv{i}\t{r}\t{a}\t.\t.\t." for i, (c, p, r, a) in enumerate(records)]
    path.write_text("\n".join(lines) + "\n")
    return len(records)


def test_workflow_runs_locally_end_to_end(small_genome, tmp_path):
    pytest.importorskip("snakemake")
    fasta, gtf = small_genome
    n_records = write_vcf(tmp_path / "in.vcf", fasta, gtf)
    metalayer = Path(sys.executable).parent / "metalayer"
    config = {
        "fasta": str(fasta),
        "gtf": str(gtf),
        "base_model": "openspliceai",
        "weights": str(shared_path("models", "openspliceai-mane", "80nt")),
        "out": str(tmp_path / "out"),
        "shards": 2,
        "test_chroms": "chr3",
        "device": "cpu",
        "metalayer": str(metalayer),
        "vcf": str(tmp_path / "in.vcf"),
        "train_set": [f"model.{k}={json.dumps(v)}" for k, v in TINY_MODEL.items()]
        + [f"training.{k}={json.dumps(v)}" for k, v in TINY_TRAINING.items()],
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(SNAKEFILE),
            "--configfile",
            str(tmp_path / "config.yaml"),
            "--cores",
            "2",
            "--directory",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = tmp_path / "out"
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["meta"]["n_genes"] == len(GENOME_CHR3)
    assert json.loads((out / "base_metrics.json").read_text())["n_genes"] == len(GENOME_CHR1 + GENOME_CHR3)
    predicted = pl.scan_parquet(str(out / "predictions" / "*.parquet")).select("gene_id").collect()
    assert sorted(predicted["gene_id"].unique().to_list()) == sorted(GENOME_CHR1 + GENOME_CHR3)
    assert (out / "logs" / "train.log").read_text().count("validation PR-AUC") >= 1
    import gzip

    with gzip.open(out / "scored.vcf.gz", "rt") as fh:
        body = [line for line in fh if not line.startswith("#")]
    assert len(body) == n_records and all("SpliceAI=" in line and "MetaLayer=" in line for line in body)
