"""score_vcf: SpliceAI= fields equal the official spliceai 1.3.1 output, nothing is lost, batching is exact.

The reference output (tests/fixtures/spliceai_vcf_reference/expected.json) was made once with the
official code by scripts/make_spliceai_vcf_reference.py.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from meta_layer_cli.inference.variants import (
    GeneIndex,
    gain_loss_entry,
    read_variant_annotation,
    score_vcf,
    spliceai_normalize,
)
from meta_layer_cli.io.vcf import read_vcf
from tests.conftest import FIXTURES
from tests.inference.stub_models import StubModel

REF_DIR = FIXTURES / "spliceai_vcf_reference"
EXPECTED = json.loads((REF_DIR / "expected.json").read_text())["records"]
BY_ID = {r["line"].split("\t")[2]: r for r in EXPECTED}
SKIP_REASON = {
    "ref_mismatch": "ref_mismatch",
    "lowercase_ref": "ref_mismatch",
    "symbolic": "symbolic_allele",
    "partly_symbolic": "symbolic_allele",
    "outside_genes": "outside_genes",
    "ref_too_long": "ref_too_long",
    "no_alt": "no_alt",
    "near_contig_end": "near_contig_end",
    "unknown_contig": "contig_not_in_fasta",
    "contig_not_in_fasta": "contig_not_in_fasta",
}
# a handful of records the real SpliceAI scores in CI time: + strand SNV, - strand deletion and insertion
FAST_IDS = ["donor_plus1", "minus_del_acceptor", "minus_ins_donor"]
MALFORMED = "1\tnot_a_number\tbad_pos\tA\tG\t50\tPASS\t."


@pytest.fixture()
def genome(tmp_path) -> Path:
    """ref.fa + annotation in a writable directory (the FASTA index is created beside it)."""
    for name in ("ref.fa", "annotation.txt"):
        shutil.copy(REF_DIR / name, tmp_path / name)
    return tmp_path


def write_input(path: Path, ids: list[str] | None, malformed: bool = True) -> list[str]:
    """The fixture VCF restricted to ``ids`` (plus every unscorable record and a malformed line)."""
    lines = (REF_DIR / "input.vcf").read_text().splitlines()
    header = [ln for ln in lines if ln.startswith("#")]
    body = [ln for ln in lines if not ln.startswith("#")]
    if ids is not None:
        keep = set(ids) | set(SKIP_REASON)
        body = [ln for ln in body if ln.split("\t")[2] in keep]
    if malformed:
        body.insert(1, MALFORMED)
    path.write_text("\n".join(header + body) + "\n")
    return body


def info_of(columns: list[str]) -> dict[str, str | None]:
    entries = [] if columns[7] == "." else columns[7].split(";")
    return {e.split("=", 1)[0]: (e.split("=", 1)[1] if "=" in e else None) for e in entries}


def check_against_official(out_path: Path, body: list[str], mask: int) -> None:
    header, records = read_vcf(out_path)
    assert any(m.startswith("##INFO=<ID=SpliceAI,") for m in header.meta)
    assert any(m.startswith("##INFO=<ID=MetaLayerSkip,") for m in header.meta)
    assert len(records) == len(body), "every input record must appear in the output"
    for line, record in zip(body, records):
        original = line.split("\t")
        assert record.columns[:7] == original[:7], "original fields are kept, in order"
        info = info_of(record.columns)
        kept = {k: v for k, v in info_of(original).items()}
        assert {k: info[k] for k in kept} == kept, "original INFO entries are kept"
        vid = original[2]
        if line == MALFORMED:
            assert info.get("MetaLayerSkip") == "malformed"
            continue
        official = BY_ID[vid][f"spliceai_m{mask}"]
        assert info.get("SpliceAI") == official, f"{vid}: SpliceAI field differs from the official tool"
        assert info.get("MetaLayerSkip") == SKIP_REASON.get(vid), vid


def test_spliceai_matches_official_on_a_handful(spliceai, genome, tmp_path, caplog):
    body = write_input(tmp_path / "in.vcf", FAST_IDS)
    cache = tmp_path / "cache"
    for mask in (0, 1):  # the second run is served from the prediction cache
        out = tmp_path / f"out{mask}.vcf.gz"
        summary = score_vcf(
            tmp_path / "in.vcf",
            out,
            genome / "ref.fa",
            genome / "annotation.txt",
            base_model=spliceai,
            mask=bool(mask),
            progress=False,
            cache=cache,
        )
        with gzip.open(out, "rt") as fh:  # bgzip output is valid gzip
            assert fh.readline().startswith("##fileformat")
        check_against_official(out, body, mask)
        assert summary["records"] == len(body)
        assert summary["skipped"]["malformed"] == 1
    assert any("malformed" in r.getMessage() and "line " in r.getMessage() for r in caplog.records)


@pytest.mark.slow
@pytest.mark.parametrize("mask", [0, 1])
def test_spliceai_matches_official_on_every_record(spliceai, genome, tmp_path, mask):
    body = write_input(tmp_path / "in.vcf", None)
    out = tmp_path / "out.vcf"
    score_vcf(tmp_path / "in.vcf", out, genome / "ref.fa", genome / "annotation.txt", base_model=spliceai,
              mask=bool(mask), progress=False)  # fmt: skip
    check_against_official(out, body, mask)


@pytest.mark.parametrize("mask", [False, True])
def test_shared_reference_batching_equals_one_at_a_time(osai80, genome, tmp_path, mask):
    """Real weights (OpenSpliceAI 80 nt, cheap), every record of the fixture: batched == naive, entry for entry."""
    body = write_input(tmp_path / "in.vcf", None)
    outs = {}
    for batched, incremental in ((True, True), (True, False), (False, False)):
        outs[batched, incremental] = tmp_path / f"out_{batched}_{incremental}.vcf"
        score_vcf(tmp_path / "in.vcf", outs[batched, incremental], genome / "ref.fa", genome / "annotation.txt",
                  base_model=osai80, mask=mask, progress=False, batched=batched, incremental=incremental,
                  batch_size=3)  # fmt: skip
    batched_lines = outs[True, True].read_text().splitlines()
    assert batched_lines == outs[False, False].read_text().splitlines()
    assert batched_lines == outs[True, False].read_text().splitlines()
    scored = [ln for ln in batched_lines if "SpliceAI=" in ln and not ln.startswith("#")]
    assert len(scored) >= 15
    assert len([ln for ln in batched_lines if not ln.startswith("#")]) == len(body)


def test_stub_batched_equals_naive_both_model_kinds(genome, tmp_path):
    write_input(tmp_path / "in.vcf", None)
    for channels in (("neither", "acceptor", "donor"), ("heart", "liver", "brain", "testis")):
        model = StubModel(channels, context=7)
        lines = []
        for batched in (True, False):
            out = tmp_path / f"{len(channels)}_{batched}.vcf"
            score_vcf(tmp_path / "in.vcf", out, genome / "ref.fa", genome / "annotation.txt", base_model=model,
                      distance=20, progress=False, batched=batched)  # fmt: skip
            lines.append(out.read_text())
        assert lines[0] == lines[1]
        fields = [
            e.split("|")
            for ln in lines[0].splitlines()
            if not ln.startswith("#")
            for k, v in info_of(ln.split("\t")).items()
            if k == "SpliceAI"
            for e in v.split(",")
        ]
        numeric = [f for f in fields if f[2] != "."]
        assert numeric and all(-20 <= int(p) <= 20 for f in numeric for p in f[6:])
        if len(channels) == 4:  # tissue models: gain fills AG and DG, loss fills AL and DL
            assert all(f[2] == f[4] and f[3] == f[5] and f[6] == f[8] and f[7] == f[9] for f in numeric)


def test_gtf_annotation_gives_the_same_scores_as_the_table(genome, tmp_path):
    write_input(tmp_path / "in.vcf", None, malformed=False)
    gtf = tmp_path / "genes.gtf"
    with open(gtf, "w") as fh:
        for gene in read_variant_annotation(genome / "annotation.txt"):
            ends = sorted(gene.boundaries.tolist())
            exons = list(zip(ends[0::2], ends[1::2]))  # boundaries alternate start, end
            gid = f'gene_id "{gene.name}"; transcript_id "{gene.name}.1"; gene_name "{gene.name}";'
            for s, e in exons:
                fh.write(f"{gene.chrom}\ttest\texon\t{s}\t{e}\t.\t{gene.strand}\t.\t{gid}\n")
    model = StubModel(context=5)
    outs = []
    for annotation in (genome / "annotation.txt", gtf):
        out = tmp_path / f"{Path(annotation).suffix}.vcf"
        score_vcf(tmp_path / "in.vcf", out, genome / "ref.fa", annotation, base_model=model, progress=False)
        outs.append(out.read_text())
    assert outs[0] == outs[1]


def test_builtin_annotation_and_gene_lookup():
    genes = read_variant_annotation("grch37")
    assert len(genes) > 15000
    index = GeneIndex(genes)
    brca1 = next(g for g in genes if g.name == "BRCA1")
    hits = index.overlapping("chr" + brca1.chrom, brca1.tx_start)  # chr prefix ignored
    assert brca1 in [genes[i] for i in hits]
    assert brca1 not in [genes[i] for i in index.overlapping(brca1.chrom, brca1.tx_start - 1)]


def test_spliceai_encoding_quirks():
    # SpliceAI: case-insensitive; N -> zeros; other letters -> the base their byte code % 5 selects
    assert spliceai_normalize("acgtnACGTN") == "ACGTNACGTN"
    assert spliceai_normalize("RYKM") == "CTNC"  # R=82%5=2->C, Y=89%5=4->T, K=75%5=0->N, M=77%5=2->C


def test_gain_loss_entry_masks_like_pangolin():
    y_ref = np.zeros((5, 2), np.float32)
    y_alt = np.zeros((5, 2), np.float32)
    y_alt[1, 0] = 0.6  # gain at offset -1, tissue 0
    y_alt[3, 1] = -0.4  # loss at offset +1, tissue 1
    y_alt[4, 0] = 0.3
    assert gain_loss_entry("T", "G", y_ref, y_alt, 1, None, False) == "T|G|0.60|0.40|0.60|0.40|-1|1|-1|1"
    annotated = np.array([False, True, False, False, False])  # gain at an annotated site is masked
    assert gain_loss_entry("T", "G", y_ref, y_alt, 1, annotated, True) == "T|G|0.30|0.00|0.30|0.00|2|-2|2|-2"


def test_no_chrom_header_is_a_clear_error(genome, tmp_path):
    bad = tmp_path / "bad.vcf"
    bad.write_text("1\t100\t.\tA\tG\t.\t.\t.\n")
    with pytest.raises(ValueError, match="line 1"):
        score_vcf(bad, tmp_path / "o.vcf", genome / "ref.fa", genome / "annotation.txt", base_model=StubModel(),
                  progress=False)  # fmt: skip
    assert not (tmp_path / "o.vcf").exists()
