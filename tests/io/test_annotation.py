"""Gene annotations: one sniffer and one parser for SpliceAI-style tables, behind both readers."""

from __future__ import annotations

import gzip

import pytest

from meta_layer_cli.io.annotation import (
    GeneIndex,
    builtin_annotation_path,
    read_annotation_table,
    read_gene_annotation,
    read_variant_annotation,
)

HEADER = "#NAME\tCHROM\tSTRAND\tTX_START\tTX_END\tEXON_START\tEXON_END\n"
# a minus-strand gene with three exons, 0-based starts, 1-based ends
ROW = "G1\tchr7\t-\t100\t900\t100,400,800,\t250,500,900,\n"


def write(path, text: str, gz: bool = False):
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def both(path):
    """The gene as each reader sees it: (strand, 0-based half-open exons) from both."""
    (t,) = read_gene_annotation(path)
    (g,) = read_variant_annotation(path)
    return (t.strand, t.exons), (g.strand, tuple((int(a) - 1, int(b)) for a, b in g.exons))


def test_builtin_grch37_table_reads_real_genes():
    genes = read_gene_annotation("grch37")
    assert len(genes) > 20_000
    by_name = {g.gene_name: g for g in genes}
    g = by_name["AL627309.1"]  # second row of the table: minus strand, two exons
    assert g.strand == "-" and g.chrom == "1"
    assert g.exons == ((134900, 135802), (137620, 139379))
    assert list(g.donors()) == [137620] and list(g.acceptors()) == [135801]
    table = read_annotation_table(builtin_annotation_path("grch37"))
    assert [t.exons for t in genes] == [v.transcript().exons for v in table]


@pytest.mark.parametrize("build, end", [("grch37", 41_277_500), ("grch38", 43_125_483)])
def test_builtin_tables_place_brca1_on_their_assembly(build, end):
    """BRCA1 (minus strand, chr17) ends at 41,277,500 in GRCh37 and 43,125,483 in GRCh38 (Ensembl gene
    coordinates); each built-in table puts it on its own assembly."""
    genes = read_variant_annotation(build)
    assert len(genes) > 15000
    (brca1,) = [g for g in genes if g.name == "BRCA1"]
    assert brca1.chrom.removeprefix("chr") == "17" and brca1.strand == "-"
    assert brca1.tx_end == end and len(brca1.exons) > 20


def test_builtin_annotation_and_gene_lookup():
    genes = read_variant_annotation("grch37")
    assert len(genes) > 15000
    index = GeneIndex(genes)
    brca1 = next(g for g in genes if g.name == "BRCA1")
    hits = index.overlapping("chr" + brca1.chrom, brca1.tx_start)  # chr prefix ignored
    assert brca1 in [genes[i] for i in hits]
    assert brca1 not in [genes[i] for i in index.overlapping(brca1.chrom, brca1.tx_start - 1)]


def test_exon_lists_without_a_trailing_comma_keep_their_last_exon(tmp_path):
    """Was: both readers kept it, by different code; score_vcf documents it (SpliceAI itself drops it)."""
    expected = ("-", ((100, 250), (400, 500), (800, 900)))
    with_comma = write(tmp_path / "a.txt", HEADER + ROW)
    without = write(tmp_path / "b.txt", HEADER + ROW.replace(",\t", "\t").replace(",\n", "\n"))
    assert both(with_comma) == both(without) == (expected, expected)
    (g,) = read_variant_annotation(without)
    assert g.boundaries.tolist() == [101, 250, 401, 500, 801, 900] and (g.tx_start, g.tx_end) == (101, 900)


def test_unequal_exon_lists_are_an_error_in_both_readers(tmp_path):
    """Was: read_gene_annotation refused the row, score_vcf's reader silently dropped the unpaired start."""
    ragged = write(tmp_path / "r.txt", HEADER + ROW + "G2\tchr7\t+\t1000\t2000\t1000,1500,\t1200,\n")
    for reader in (read_gene_annotation, read_variant_annotation):
        with pytest.raises(ValueError, match="r.txt line 3: 2 exon starts but 1 exon ends"):
            reader(ragged)


@pytest.mark.parametrize(
    "name, gz", [("genes.tsv", False), ("genes", False), ("genes.txt.gz", True), ("genes.gtf", False)]
)
def test_a_table_is_known_by_its_header_whatever_its_name(tmp_path, name, gz):
    """Was: read_gene_annotation took only *.txt / *.txt.gz as tables (anything else went to the GTF reader),
    score_vcf's reader took ``#NAME`` files (but not gzip). Now: ``#NAME`` first, plain or gzip."""
    path = write(tmp_path / name, HEADER + ROW, gz)
    expected = ("-", ((100, 250), (400, 500), (800, 900)))
    assert both(path) == (expected, expected)


def test_a_gtf_named_txt_is_read_as_gtf(tmp_path):
    """Was: read_gene_annotation parsed any *.txt as a table (and failed on a GTF)."""
    attrs = 'gene_id "G1"; transcript_id "T1";'
    lines = [f"chr7\tx\texon\t{s}\t{e}\t.\t-\t.\t{attrs}\n" for s, e in ((101, 250), (401, 500))]
    gtf = write(tmp_path / "genes.txt", "".join(lines))
    expected = ("-", ((100, 250), (400, 500)))
    assert both(gtf) == (expected, expected)


def test_columns_are_found_by_the_header(tmp_path):
    """Was: read_gene_annotation read the first seven columns by position."""
    order = [0, 6, 3, 1, 5, 2, 4]  # #NAME first (it marks a table), the others shuffled, one column more
    columns, values = HEADER.rstrip("\n").split("\t"), ROW.rstrip("\n").split("\t")
    text = "\t".join([columns[i] for i in order] + ["SOURCE"]) + "\n"
    text += "\t".join([values[i] for i in order] + ["ensembl"]) + "\n"
    expected = ("-", ((100, 250), (400, 500), (800, 900)))
    assert both(write(tmp_path / "p.tsv", text)) == (expected, expected)


def test_headerless_and_broken_tables_are_clear_errors(tmp_path):
    """Was: read_gene_annotation read a headerless *.txt by position; now a table needs its header line."""
    headerless = write(tmp_path / "h.txt", ROW)
    for reader in (read_gene_annotation, read_variant_annotation):
        with pytest.raises(ValueError, match="SpliceAI annotation table without its header line"):
            reader(headerless)
    missing = write(tmp_path / "m.txt", "#NAME\tCHROM\tSTRAND\n")
    with pytest.raises(ValueError, match="header needs #NAME CHROM STRAND TX_START TX_END EXON_START EXON_END"):
        read_gene_annotation(missing)
    for row, message in (
        (ROW.replace("\t-\t", "\t.\t"), "strand '.'"),
        (ROW.replace("400", "4x0"), "malformed"),
        ("G3\tchr7\t+\t1\t9\t\t\n", "no exons"),
    ):
        with pytest.raises(ValueError, match=f"line 2: {message}"):
            read_variant_annotation(write(tmp_path / "e.txt", HEADER + row))
    with pytest.raises(FileNotFoundError, match="grch37, grch38"):
        read_variant_annotation(tmp_path / "nope.txt")
