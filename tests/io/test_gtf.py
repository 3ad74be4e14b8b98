import gzip

import numpy as np
import pytest

from meta_layer_cli.io.gtf import filter_genes, genes_from_transcripts, read_transcripts

GTF = """\
#!genome-build GRCh38
chr1\tHAVANA\tgene\t101\t400\t.\t+\t.\tgene_id "G1"; gene_name "PLUS";
chr1\tHAVANA\ttranscript\t101\t400\t.\t+\t.\tgene_id "G1"; transcript_id "T1"; gene_name "PLUS"; tag "basic";
chr1\tHAVANA\texon\t101\t150\t.\t+\t.\tgene_id "G1"; transcript_id "T1"; gene_name "PLUS";
chr1\tHAVANA\texon\t201\t250\t.\t+\t.\tgene_id "G1"; transcript_id "T1"; gene_name "PLUS";
chr1\tHAVANA\texon\t301\t400\t.\t+\t.\tgene_id "G1"; transcript_id "T1"; gene_name "PLUS";
chr1\tHAVANA\ttranscript\t101\t400\t.\t+\t.\tgene_id "G1"; transcript_id "T2"; gene_name "PLUS"; tag "Ensembl_canonical"; tag "MANE_Select";
chr1\tHAVANA\texon\t101\t150\t.\t+\t.\tgene_id "G1"; transcript_id "T2"; gene_name "PLUS";
chr1\tHAVANA\texon\t301\t400\t.\t+\t.\tgene_id "G1"; transcript_id "T2"; gene_name "PLUS";
chr2\tHAVANA\texon\t1001\t1100\t.\t-\t.\tgene_id "G2"; transcript_id "T3"; gene_name "MINUS";
chr2\tHAVANA\texon\t801\t900\t.\t-\t.\tgene_id "G2"; transcript_id "T3"; gene_name "MINUS";
"""

GFF3 = """\
##gff-version 3
chr2\tEnsembl\tgene\t801\t1100\t.\t-\t.\tID=gene:G2;Name=MINUS
chr2\tEnsembl\tmRNA\t801\t1100\t.\t-\t.\tID=transcript:T3;Parent=gene:G2;tag=basic,MANE_Select
chr2\tEnsembl\texon\t801\t900\t.\t-\t.\tParent=transcript:T3
chr2\tEnsembl\texon\t1001\t1100\t.\t-\t.\tParent=transcript:T3
"""


@pytest.fixture()
def gtf(tmp_path):
    path = tmp_path / "genes.gtf.gz"
    path.write_bytes(gzip.compress(GTF.encode()))
    return path


def test_canonical_transcript_prefers_mane_select(gtf):
    genes = genes_from_transcripts(read_transcripts(gtf))
    assert [g.transcript_id for g in genes] == ["T2", "T3"]
    longest = genes_from_transcripts(read_transcripts(gtf), rule="longest")
    assert longest[0].transcript_id == "T1"


def test_plus_strand_sites_follow_spliceai_convention(gtf):
    t1 = next(t for t in read_transcripts(gtf) if t.transcript_id == "T1")
    # exons [100,150) [200,250) [300,400): donor = last exonic nt, acceptor = first exonic nt
    np.testing.assert_array_equal(t1.donors(), [149, 249])
    np.testing.assert_array_equal(t1.acceptors(), [200, 300])
    labels = t1.labels()
    assert labels[149 - 100] == 2 and labels[200 - 100] == 1 and labels.sum() == 2 * 2 + 2 * 1


def test_minus_strand_sites_are_in_transcript_orientation(gtf):
    t3 = next(t for t in read_transcripts(gtf) if t.transcript_id == "T3")
    # transcript runs 1100 -> 801: exon [1000,1100) first, donor at its lowest base 1000
    np.testing.assert_array_equal(t3.donors(), [1000])
    np.testing.assert_array_equal(t3.acceptors(), [899])
    labels = t3.labels()
    positions = t3.genomic_positions()
    assert positions[0] == 1099 and positions[-1] == 800
    assert labels[np.flatnonzero(positions == 1000)[0]] == 2
    assert labels[np.flatnonzero(positions == 899)[0]] == 1


def test_gff3_matches_gtf(tmp_path, gtf):
    path = tmp_path / "genes.gff3"
    path.write_text(GFF3)
    (t3_gff,) = read_transcripts(path)
    t3_gtf = next(t for t in read_transcripts(gtf) if t.transcript_id == "T3")
    assert t3_gff.exons == t3_gtf.exons and t3_gff.strand == "-"
    assert t3_gff.gene_name == "MINUS" and "MANE_Select" in t3_gff.tags


def test_malformed_line_reports_line_number(tmp_path):
    path = tmp_path / "bad.gtf"
    path.write_text(GTF.splitlines()[0] + "\n" + GTF.splitlines()[1] + "\nchr1\tX\texon\t5\n")
    with pytest.raises(ValueError, match="line 3: expected 9 tab-separated fields"):
        read_transcripts(path)


def test_non_integer_coordinates(tmp_path):
    path = tmp_path / "bad.gtf"
    path.write_text('chr1\tX\texon\tten\t20\t.\t+\t.\tgene_id "G"; transcript_id "T";\n')
    with pytest.raises(ValueError, match="line 1: start/end are not integers"):
        read_transcripts(path)


def test_filter_genes_by_name_or_id(gtf):
    genes = genes_from_transcripts(read_transcripts(gtf))
    assert [g.gene_name for g in filter_genes(genes, ["MINUS", "G1"])] == ["MINUS", "PLUS"]
    with pytest.raises(ValueError, match="NOPE"):
        filter_genes(genes, ["NOPE"])


BROKEN = """\
chr1\tX\texon\t101\t200\t.\t+\t.\tgene_id "A"; transcript_id "TA"; gene_name "TWO_CONTIGS";
chr2\tX\texon\t301\t400\t.\t+\t.\tgene_id "A"; transcript_id "TA"; gene_name "TWO_CONTIGS";
chr1\tX\texon\t101\t200\t.\t+\t.\tgene_id "B"; transcript_id "TB"; gene_name "TWO_STRANDS";
chr1\tX\texon\t301\t400\t.\t-\t.\tgene_id "B"; transcript_id "TB"; gene_name "TWO_STRANDS";
chr1\tX\texon\t101\t200\t.\t+\t.\tgene_id "C"; transcript_id "TC"; gene_name "OVERLAP";
chr1\tX\texon\t150\t300\t.\t+\t.\tgene_id "C"; transcript_id "TC"; gene_name "OVERLAP";
chr1\tX\texon\t101\t200\t.\t+\t.\tgene_id "D"; transcript_id "TD"; gene_name "ABUT";
chr1\tX\texon\t201\t300\t.\t+\t.\tgene_id "D"; transcript_id "TD"; gene_name "ABUT";
chr1\tX\texon\t101\t200\t.\t+\t.\tgene_id "E"; transcript_id "TE"; gene_name "GOOD";
chr1\tX\texon\t301\t400\t.\t+\t.\tgene_id "E"; transcript_id "TE"; gene_name "GOOD";
chr1\tX\texon\t101\t200\t.\t+\t.\tgene_id "E"; transcript_id "TE2"; gene_name "GOOD";
chr1\tX\texon\t151\t400\t.\t+\t.\tgene_id "E"; transcript_id "TE2"; gene_name "GOOD";
"""


def test_transcripts_that_cannot_be_one_structure_are_dropped_with_reasons(tmp_path):
    from meta_layer_cli.io.gtf import dropped_genes, parse_annotation

    path = tmp_path / "broken.gtf"
    path.write_text(BROKEN)
    parsed = parse_annotation(path)
    assert [t.transcript_id for t in parsed.transcripts] == ["TE"]
    reasons = {d["id"]: d["reason"] for d in parsed.dropped}
    assert reasons["TA"].startswith("exons on several contigs (chr1, chr2)")
    assert reasons["TB"] == "exons on both strands"
    assert reasons["TC"] == "overlapping exons 101-200 and 150-300"
    assert reasons["TD"].startswith("abutting exons 101-200 and 201-300")
    assert reasons["TE2"].startswith("overlapping exons")
    # a gene keeps its valid transcripts; genes with none left are reported once each
    assert sorted(d["gene_id"] for d in dropped_genes(parsed)) == ["A", "B", "C", "D"]


def test_truncated_gzip_is_one_clear_error(tmp_path, gtf):
    from meta_layer_cli.runtime.errors import InputDataError

    data = gtf.read_bytes()
    cut = tmp_path / "cut.gtf.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputDataError, match="truncated or corrupt gzip"):
        read_transcripts(cut)


def test_biotype_is_read_from_gtf_and_gff3(tmp_path):
    gtf = tmp_path / "b.gtf"
    gtf.write_text('chr1\tX\texon\t1\t10\t.\t+\t.\tgene_id "G"; transcript_id "T"; gene_type "protein_coding";\n')
    assert read_transcripts(gtf)[0].biotype == "protein_coding"
    gff = tmp_path / "b.gff3"
    gff.write_text(
        "chr1\tX\tgene\t1\t10\t.\t+\t.\tID=gene:G;biotype=lncRNA\n"
        "chr1\tX\ttranscript\t1\t10\t.\t+\t.\tID=transcript:T;Parent=gene:G\n"
        "chr1\tX\texon\t1\t10\t.\t+\t.\tParent=transcript:T\n"
    )
    assert read_transcripts(gff)[0].biotype == "lncRNA"
