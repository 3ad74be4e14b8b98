from meta_layer_cli.io.annotation import builtin_annotation_path, read_annotation_table


def test_builtin_grch37_table_reads_real_genes():
    genes = read_annotation_table(builtin_annotation_path("grch37"))
    assert len(genes) > 20_000
    by_name = {g.gene_name: g for g in genes}
    g = by_name["AL627309.1"]  # second row of the table: minus strand, two exons
    assert g.strand == "-" and g.chrom == "1"
    assert g.exons == ((134900, 135802), (137620, 139379))
    assert list(g.donors()) == [137620] and list(g.acceptors()) == [135801]
