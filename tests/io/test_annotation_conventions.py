"""One reader for the annotation conventions users have: GENCODE, Ensembl, NCBI RefSeq and EMBL/AUGUSTUS, each as GTF
and GFF3 (hand-written excerpts in tests/fixtures/annotations: four or five genes on both strands in each), and the
real A. arenosa GTF/GFF3 pair of ../shared cut to a region at test time."""

from __future__ import annotations

import gzip
import random

import numpy as np
import pytest

from meta_layer_cli.io.gtf import filter_biotypes, filter_genes, genes_from_transcripts, parse_annotation
from meta_layer_cli.runtime.errors import UsageError
from tests.conftest import FIXTURES, shared_path

ANNOTATIONS = FIXTURES / "annotations"
CONVENTIONS = ("gencode", "ensembl", "refseq", "embl_augustus")

# per convention: gene id -> (name, gene biotype, canonical transcript, longest transcript)
EXPECTED = {
    "gencode": {
        "ENSG00000100001.5": ("ALPHA", "protein_coding", "ENST00000200001.3", "ENST00000200002.1"),
        "ENSG00000100002.9": ("BETA", "protein_coding", "ENST00000200003.2", "ENST00000200004.1"),
        "ENSG00000100003.1": ("GAMMA-AS1", "lncRNA", "ENST00000200005.1", "ENST00000200005.1"),
        "ENSG00000100004.2": ("DELTAP1", "processed_pseudogene", "ENST00000200006.1", "ENST00000200006.1"),
    },
    "ensembl": {
        "ENSG00000100001": ("ALPHA", "protein_coding", "ENST00000200001", "ENST00000200002"),
        "ENSG00000100002": ("BETA", "protein_coding", "ENST00000200003", "ENST00000200004"),
        "ENSG00000100003": ("GAMMA-AS1", "lncRNA", "ENST00000200005", "ENST00000200005"),
        "ENSG00000100004": ("ENSG00000100004", "processed_pseudogene", "ENST00000200006", "ENST00000200006"),
    },
    "refseq": {  # MANE Select read from "MANE Select"; no MANE/Ensembl tag on LOC105370002: the longest
        "ALPHA": ("ALPHA", "protein_coding", "NM_000001.4", "XM_047000001.1"),
        "LOC105370002": ("LOC105370002", "protein_coding", "XM_047000002.1", "XM_047000002.1"),
        "GAMMA-AS1": ("GAMMA-AS1", "lncRNA", "NR_000003.1", "NR_000003.1"),
        "DELTAP1": ("DELTAP1", "pseudogene", "DELTAP1", "DELTAP1"),  # exons without a transcript
        "TRNAA-AGC": ("TRNAA-AGC", "tRNA", "TRNAA-AGC", "TRNAA-AGC"),  # GTF: unassigned_transcript_2
    },
    "embl_augustus": {  # transcripts are unassigned_transcript_N in the GTF, rna-LOCUS[-k] in the GFF3
        "EX1A_LOCUS1": ("EX1A_LOCUS1", "protein_coding", "EX1A_LOCUS1", "EX1A_LOCUS1"),
        "EX1A_LOCUS2": ("EX1A_LOCUS2", "protein_coding", "EX1A_LOCUS2", "EX1A_LOCUS2"),
        "EX1A_LOCUS3": ("EX1A_LOCUS3", "pseudogene", "EX1A_LOCUS3", "EX1A_LOCUS3"),
    },
}


def described(transcripts) -> list[tuple]:
    """Everything a transcript says, in a comparable order."""
    return sorted(
        (t.gene_id, t.transcript_id, t.gene_name, t.chrom, t.strand, t.exons, sorted(t.tags), t.biotype)
        for t in transcripts
    )


def assert_same_genes(a, b) -> None:
    """Same transcripts, the same canonical choice per gene, and the same labels."""
    assert described(a) == described(b)
    for rule in ("canonical", "longest"):
        ga, gb = genes_from_transcripts(a, rule), genes_from_transcripts(b, rule)
        assert described(ga) == described(gb)
        for x, y in zip(ga, gb):
            assert np.array_equal(x.labels(), y.labels())
            assert np.array_equal(x.genomic_positions(), y.genomic_positions())


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_each_convention_gives_its_genes_names_biotypes_and_canonical_transcripts(convention):
    for suffix in ("gtf", "gff3"):
        transcripts = parse_annotation(ANNOTATIONS / f"{convention}.{suffix}").transcripts
        for rule, column in (("canonical", 2), ("longest", 3)):
            genes = genes_from_transcripts(transcripts, rule)
            got = {g.gene_id: (g.gene_name, g.biotype, g.transcript_id) for g in genes}
            want = {k: (v[0], v[1], v[column]) for k, v in EXPECTED[convention].items()}
            assert got == want, (suffix, rule)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_the_gtf_and_the_gff3_of_one_annotation_give_the_same_genes(convention):
    gtf = parse_annotation(ANNOTATIONS / f"{convention}.gtf")
    gff3 = parse_annotation(ANNOTATIONS / f"{convention}.gff3")
    assert_same_genes(gtf.transcripts, gff3.transcripts)
    assert gtf.dropped == gff3.dropped == []


def test_tags_of_every_convention_select_the_same_transcript():
    """MANE_Select (GENCODE/Ensembl), "MANE Select" (NCBI GTF and GFF3) and Ensembl_canonical are read alike."""
    for convention, gene in (("gencode", "ENSG00000100001.5"), ("ensembl", "ENSG00000100001"), ("refseq", "ALPHA")):
        for suffix in ("gtf", "gff3"):
            by_id = {t.transcript_id: t for t in parse_annotation(ANNOTATIONS / f"{convention}.{suffix}").transcripts}
            mane = by_id[EXPECTED[convention][gene][2]]
            assert "MANE_Select" in mane.tags, (convention, suffix)
    refseq = {t.transcript_id: t for t in parse_annotation(ANNOTATIONS / "refseq.gff3").transcripts}
    assert refseq["NM_000002.3"].tags == {"RefSeq_Select"}


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_protein_coding_keeps_only_protein_coding_genes(convention):
    """Was: NCBI/EMBL GTFs say the biotype on gene lines only, the GFF3 reader knew only ``biotype=``: every gene
    was kept (264 of 1,439 genes of a RefSeq plant genome were tRNA, snoRNA, lncRNA and pseudogenes)."""
    want = sorted(k for k, v in EXPECTED[convention].items() if v[1] == "protein_coding")
    for suffix in ("gtf", "gff3"):
        genes = genes_from_transcripts(parse_annotation(ANNOTATIONS / f"{convention}.{suffix}").transcripts)
        kept, left_out = filter_biotypes(genes, ["protein_coding"])
        assert sorted(g.gene_id for g in kept) == want and left_out == len(genes) - len(want)


def test_ncbi_gene_ids_are_the_same_in_both_files_and_found_by_genes():
    """Was: the GFF3 gave ``gene-LOC105370002`` where the GTF gives ``LOC105370002``; --genes found it in one only."""
    for suffix in ("gtf", "gff3"):
        genes = genes_from_transcripts(parse_annotation(ANNOTATIONS / f"refseq.{suffix}").transcripts)
        (found,) = filter_genes(genes, ["LOC105370002"])
        assert found.gene_id == "LOC105370002" and found.chrom == "NC_000001.11" and found.strand == "-"
        assert [g.gene_id for g in filter_genes(genes, ["NM_000001.4"])] == ["ALPHA"]


def test_a_biotype_filter_that_cannot_be_applied_is_an_error(tmp_path):
    """Was: an annotation naming no biotypes kept every gene under --biotype protein_coding."""
    plain = tmp_path / "plain.gtf"
    plain.write_text(
        'chr1\tX\texon\t1\t10\t.\t+\t.\tgene_id "G"; transcript_id "T";\n'
        'chr1\tX\texon\t21\t30\t.\t+\t.\tgene_id "G"; transcript_id "T";\n'
    )
    genes = genes_from_transcripts(parse_annotation(plain).transcripts)
    with pytest.raises(UsageError, match="names no gene biotypes"):
        filter_biotypes(genes, ["protein_coding"])
    assert filter_biotypes(genes, None) == (genes, 0)
    refseq = genes_from_transcripts(parse_annotation(ANNOTATIONS / "refseq.gtf").transcripts)
    with pytest.raises(UsageError, match=r"protein-coding is not a gene biotype .* protein_coding \(2\)"):
        filter_biotypes(refseq, ["protein-coding"])


def test_gff3_details(tmp_path):
    """Percent-encoded values, ``.`` strands on non-exon lines (Ensembl's chromosome lines) and a ##FASTA section."""
    path = tmp_path / "a.gff3"
    path.write_text(
        "##gff-version 3\n"
        "c1\tX\tchromosome\t1\t900\t.\t.\t.\tID=chromosome:c1\n"
        "c1\tX\tgene\t101\t400\t.\t-\t.\tID=gene:G%3B1;Name=A%2CB;biotype=protein_coding\n"
        "c1\tX\tmRNA\t101\t400\t.\t-\t.\tID=transcript:T1;Parent=gene:G%3B1;tag=basic,MANE%20Select\n"
        "c1\tX\texon\t101\t200\t.\t-\t.\tParent=transcript:T1\n"
        "c1\tX\texon\t301\t400\t.\t-\t.\tParent=transcript:T1\n"
        "##FASTA\n>c1\nACGTACGTAC\n"
    )
    (t,) = parse_annotation(path).transcripts
    assert (t.gene_id, t.gene_name, t.transcript_id, t.biotype) == ("G;1", "A,B", "T1", "protein_coding")
    assert t.tags == {"basic", "MANE_Select"} and t.exons == ((100, 200), (300, 400))


@pytest.mark.parametrize("start", ["0", "-5"])
def test_an_exon_starting_before_position_1_drops_its_transcript_with_a_reason(tmp_path, start):
    """Was: a GTF exon start <= 0 built a gene reaching position -5, mostly N."""
    from meta_layer_cli.io.gtf import dropped_genes

    path = tmp_path / "neg.gtf"
    path.write_text(
        f'chr1\tX\texon\t{start}\t100\t.\t+\t.\tgene_id "NEG"; transcript_id "TN";\n'
        'chr1\tX\texon\t201\t300\t.\t+\t.\tgene_id "NEG"; transcript_id "TN";\n'
        'chr1\tX\texon\t501\t600\t.\t-\t.\tgene_id "OK"; transcript_id "TO";\n'
    )
    parsed = parse_annotation(path)
    assert [t.gene_id for t in parsed.transcripts] == ["OK"]
    (drop,) = dropped_genes(parsed)
    assert drop["gene_id"] == "NEG" and f"exon {start}-100 starts before position 1 of chr1" in drop["reason"]


def test_a_gtf_of_cds_lines_only_says_so(tmp_path):
    path = tmp_path / "augustus.gtf"
    path.write_text(
        "c1\tAUGUSTUS\tgene\t1\t90\t0.9\t+\t.\tg1\n"
        'c1\tAUGUSTUS\tCDS\t1\t30\t0.9\t+\t0\ttranscript_id "g1.t1"; gene_id "g1";\n'
    )
    with pytest.raises(ValueError, match="CDS lines but no exon lines"):
        parse_annotation(path)


# --- the real A. arenosa annotation (EMBL, AUGUSTUS models), GTF and GFF3, cut to regions at test time ------------
ARENOSA = "data", "genomes", "arabidopsis_arenosa"


def cut(path, windows: list[tuple[str, int, int]], out):
    """The lines of ``path`` lying inside one of ``windows`` (contig, 1-based first, last), headers kept."""
    with gzip.open(path, "rt") as fh, open(out, "w") as dst:
        for line in fh:
            fields = line.split("\t")
            if line.startswith("#") or any(
                fields[0] == c and int(fields[3]) >= lo and int(fields[4]) <= hi for c, lo, hi in windows
            ):
                dst.write(line)
    return out


def test_arenosa_gtf_and_gff3_excerpts_give_the_same_genes(tmp_path):
    """A region of each chromosome (about 25 genes, both strands, genes with two transcripts and a pseudogene) of the
    real annotation, as GTF and as GFF3: the same gene ids, transcripts, exons, biotypes and labels."""
    gtf = shared_path(*ARENOSA, "AARE701a_chr1_chr2.gtf.gz")
    gff = shared_path(*ARENOSA, "AARE701a_chr1_chr2.gff.gz")
    # windows ending between genes: LOCUS1-14 of chr1, the pseudogene LOCUS344 with LOCUS338-347, LOCUS3946-3947 of chr2
    windows = [("LR999451.1", 24_000, 72_000), ("LR999451.1", 1_609_000, 1_655_000), ("LR999452.1", 1, 76_000)]
    a = parse_annotation(cut(gtf, windows, tmp_path / "cut.gtf"))
    b = parse_annotation(cut(gff, windows, tmp_path / "cut.gff3"))
    genes = genes_from_transcripts(a.transcripts)
    assert len(genes) >= 20 and {g.strand for g in genes} == {"+", "-"} and len(a.transcripts) > len(genes)
    assert {g.chrom for g in genes} == {"LR999451.1", "LR999452.1"}
    assert {g.biotype for g in genes} == {"protein_coding", "pseudogene"}
    assert all(g.gene_id.startswith("AARE701A_LOCUS") and g.transcript_id.startswith(g.gene_id) for g in genes)
    assert_same_genes(a.transcripts, b.transcripts)
    kept = [filter_biotypes(genes_from_transcripts(p.transcripts), ["protein_coding"])[0] for p in (a, b)]
    assert described(kept[0]) == described(kept[1]) and 0 < len(kept[0]) < len(genes)
    # and a gene picked at random is found by id in both
    gene = random.Random(0).choice(genes).gene_id
    found = [g.gene_id for p in (a, b) for g in filter_genes(genes_from_transcripts(p.transcripts), [gene])]
    assert found == [gene, gene]
