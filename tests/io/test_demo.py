import numpy as np
import pytest

from meta_layer_cli.io.demo import demo_gene_ids, load_demo_gene


def test_demo_has_610_genes_with_gaps_in_ids():
    ids = demo_gene_ids()
    assert len(ids) == 610 and ids[0] == "1" and "7" not in ids


def test_demo_gene_is_transcript_oriented_with_canonical_dinucleotides():
    gene = load_demo_gene("3")  # LIN9, a minus-strand gene, stored 5' -> 3'
    assert gene.gene_name == "LIN9" and gene.strand == "-"
    donors = np.flatnonzero(gene.labels == 2)
    acceptors = np.flatnonzero(gene.labels == 1)
    assert len(donors) == len(acceptors) > 10
    assert all(gene.sequence[d + 1 : d + 3] in ("GT", "GC") for d in donors)
    assert all(gene.sequence[a - 2 : a] == "AG" for a in acceptors)


def test_unknown_demo_gene():
    with pytest.raises(ValueError, match="demo gene '7' does not exist"):
        load_demo_gene("7")
