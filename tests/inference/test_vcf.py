"""score_vcf: SpliceAI= fields equal the official spliceai 1.3.1 output on every fixture record, nothing
is lost, the tool's own INFO fields are never left stale."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from meta_layer_cli.inference.vcf import score_vcf
from meta_layer_cli.io.annotation import read_variant_annotation
from meta_layer_cli.io.vcf import read_vcf
from tests.inference.stub_models import StubModel
from tests.inference.vcf_fixtures import BY_ID, MALFORMED, SKIP_REASON, info_of, without_command, write_input


def check_against_official(out_path: Path, body: list[str], mask: int) -> int:
    """Every output record against the official tool's; returns how many records carry a SpliceAI entry."""
    header, records = read_vcf(out_path)
    assert any(m.startswith("##INFO=<ID=SpliceAI,") for m in header.meta)
    assert any(m.startswith("##INFO=<ID=MetaLayerSkip,") for m in header.meta)
    assert len(records) == len(body), "every input record must appear in the output"
    scored = 0
    for line, record in zip(body, records):
        original = line.split("\t")
        assert record.columns[:7] == original[:7], "original fields are kept, in order"
        info = info_of(record.columns)
        kept = dict(info_of(original))
        assert {k: info[k] for k in kept} == kept, "original INFO entries are kept"
        vid = original[2]
        if line == MALFORMED:
            assert info.get("MetaLayerSkip") == "malformed"
            continue
        official = BY_ID[vid][f"spliceai_m{mask}"]
        assert info.get("SpliceAI") == official, f"{vid} -M {mask}: SpliceAI field differs from the official tool"
        assert info.get("MetaLayerSkip") == SKIP_REASON.get(vid), vid
        scored += official is not None
    return scored


def test_spliceai_matches_official_on_every_record(spliceai, genome, tmp_path, caplog):
    """All 29 fixture records, -M 0 and -M 1 (the second run served from the prediction cache), bgzip out."""
    body = write_input(tmp_path / "in.vcf", None)
    cache = tmp_path / "cache"
    for mask in (0, 1):
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
        scored = check_against_official(out, body, mask)
        assert scored == summary["scored"] == sum(r[f"spliceai_m{mask}"] is not None for r in BY_ID.values())
        assert summary["records"] == len(body) and summary["skipped"]["malformed"] == 1
    assert any("malformed" in r.getMessage() and "line " in r.getMessage() for r in caplog.records)


def test_the_official_comparison_covers_every_kind_of_record(genome):
    """What the comparison above sees, read from the fixture itself (not from metalayer's output)."""
    lines = {r["line"].split("\t")[2]: r["line"].split("\t") for r in BY_ID.values()}
    official = {vid for vid, r in BY_ID.items() if r["spliceai_m0"] is not None}
    genes = read_variant_annotation(genome / "annotation.txt")

    def strands(vid: str) -> set[str]:
        chrom, pos = lines[vid][0], int(lines[vid][1])
        return {g.strand for g in genes if g.chrom.removeprefix("chr") == chrom and g.tx_start <= pos <= g.tx_end}

    ref = lambda vid: lines[vid][3]  # noqa: E731
    alts = lambda vid: lines[vid][4].split(",")  # noqa: E731
    minus_snvs = {v for v in official if strands(v) == {"-"} and len(ref(v)) == 1 and all(len(a) == 1 for a in alts(v))}
    assert len(minus_snvs) >= 2
    assert {v for v in official if len(alts(v)) > 1} >= {"multi_snv", "del_and_complex", "ins_and_snv"}
    complex_ = {v for v in official if any(len(ref(v)) > 1 and len(a) > 1 for a in alts(v))}
    assert complex_ and all(".|.|.|.|.|.|.|." in BY_ID[v]["spliceai_m0"] for v in complex_)
    plus_ins = {v for v in official if "+" in strands(v) and len(ref(v)) == 1 and any(len(a) > 1 for a in alts(v))}
    assert plus_ins >= {"ins_acceptor", "ins_and_snv"}
    minus_indels = {v for v in official if strands(v) == {"-"} and any(len(a) != len(ref(v)) for a in alts(v))}
    assert minus_indels >= {"minus_del_acceptor", "minus_ins_donor"}
    contigs: dict[str, list[str]] = {}  # the FASTA as written, soft-masking kept
    for line in (genome / "ref.fa").read_text().splitlines():
        if line.startswith(">"):
            contigs[line[1:].split()[0]] = seq = []
        else:
            seq.append(line)
    raw = {name: "".join(parts) for name, parts in contigs.items()}
    context = {v: raw["chr" + lines[v][0]][int(lines[v][1]) - 51 : int(lines[v][1]) + 50] for v in official}
    assert any(any(c.islower() for c in s) for s in context.values()), "a scored record in soft-masked context"
    assert any("N" in s.upper() for s in context.values()), "a scored record with N in its window"
    assert any(ref(v) == "N" for v in official)
    differ = {v for v in official if BY_ID[v]["spliceai_m0"] != BY_ID[v]["spliceai_m1"]}
    assert len(differ) >= 5, "-M 1 changes some scores, so comparing both masks tests the masking"


def test_gtf_annotation_gives_the_same_scores_as_the_table(genome, tmp_path):
    write_input(tmp_path / "in.vcf", None, malformed=False)
    gtf = tmp_path / "genes.gtf"
    with open(gtf, "w") as fh:
        for gene in read_variant_annotation(genome / "annotation.txt"):
            gid = f'gene_id "{gene.name}"; transcript_id "{gene.name}.1"; gene_name "{gene.name}";'
            for s, e in gene.exons:
                fh.write(f"{gene.chrom}\ttest\texon\t{s}\t{e}\t.\t{gene.strand}\t.\t{gid}\n")
    model = StubModel(context=5)
    outs = []
    for annotation in (genome / "annotation.txt", gtf):
        out = tmp_path / f"{Path(annotation).suffix}.vcf"
        score_vcf(tmp_path / "in.vcf", out, genome / "ref.fa", annotation, base_model=model, progress=False)
        outs.append(without_command(out))
    assert outs[0] == outs[1]


def test_no_chrom_header_is_a_clear_error(genome, tmp_path):
    bad = tmp_path / "bad.vcf"
    bad.write_text("1\t100\t.\tA\tG\t.\t.\t.\n")
    with pytest.raises(ValueError, match="line 1"):
        score_vcf(
            bad,
            tmp_path / "o.vcf",
            genome / "ref.fa",
            genome / "annotation.txt",
            base_model=StubModel(),
            progress=False,
        )
    assert not (tmp_path / "o.vcf").exists()


VCF_WITH_SAMPLES = """##fileformat=VCFv4.2
##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2
1\t6195\tclean\tG\tA\t50\tPASS\tDP=11\tGT:AD\t0/1:6,5\t1/1:0,9
1\t6195\tstale\tG\tA\t50\tPASS\tDP=11;SpliceAI=A|OLD|0.99|0.99|0.99|0.99|1|1|1|1;MetaLayerSkip=ref_mismatch;\
MetaLayer=A|OLD|.|.|.|.|.|.|.|.|0.5|normal|1.0\tGT:AD\t0/1:6,5\t1/1:0,9
2\t6609\tminus_stale\tC\tT\t50\tPASS\tSpliceAI=T|OLD|0.99|0.99|0.99|0.99|1|1|1|1\tGT\t./.\t0|1
1\t5700\tskipped_stale\tC\tT\t50\tPASS\tMetaLayer=T|OLD|.|.|.|.|.|.|.|.|.|.|.;MetaLayerSkip=no_alt;DP=3\tGT\t0/0\t0/1
"""


@pytest.mark.parametrize("with_checkpoint", [False, True])
def test_samples_kept_and_the_tools_own_fields_replaced(genome, tmp_path, with_checkpoint):
    """Through score_vcf: FORMAT and sample columns unchanged; an existing SpliceAI= value replaced in place;
    MetaLayer= / MetaLayerSkip= of an earlier run replaced, or removed where this run writes none."""
    from tests.inference.test_vcf_models import meta_checkpoint

    vcf = tmp_path / "in.vcf"
    vcf.write_text(VCF_WITH_SAMPLES)
    model = StubModel(context=5)
    checkpoints = [meta_checkpoint(tmp_path / "meta", model)] if with_checkpoint else None
    out = tmp_path / "out.vcf"
    score_vcf(
        vcf,
        out,
        genome / "ref.fa",
        genome / "annotation.txt",
        base_model=model,
        progress=False,
        checkpoints=checkpoints,
    )
    _, records = read_vcf(out)
    given = [ln.split("\t") for ln in VCF_WITH_SAMPLES.splitlines() if not ln.startswith("#")]
    assert [r.columns[:7] + r.columns[8:] for r in records] == [g[:7] + g[8:] for g in given]
    info = {r.columns[2]: info_of(r.columns) for r in records}
    clean, stale = info["clean"], info["stale"]
    assert "OLD" not in clean["SpliceAI"] and stale["SpliceAI"] == clean["SpliceAI"]
    assert list(stale) == list(clean), "replaced in place: DP first, then this run's fields, nothing stale"
    assert "MetaLayerSkip" not in stale
    if with_checkpoint:
        assert stale["MetaLayer"] == clean["MetaLayer"] and "OLD" not in clean["MetaLayer"]
    else:
        assert "MetaLayer" not in stale and "MetaLayer" not in clean
    assert "OLD" not in info["minus_stale"]["SpliceAI"] and info["minus_stale"]["SpliceAI"].startswith("T|C1orf35|")
    skipped = info["skipped_stale"]
    assert skipped == {"MetaLayerSkip": "outside_genes", "DP": "3"}
