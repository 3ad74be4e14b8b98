import pytest

from meta_layer_cli.io.demo import demo_gene_ids, demo_gene_info
from meta_layer_cli.training import split_genes


def test_gene_split_is_disjoint_seeded_and_complete():
    ids = demo_gene_ids()
    a = split_genes(ids, seed=3)
    b = split_genes(ids, seed=3)
    assert a == b and split_genes(ids, seed=4) != a
    parts = [set(a.train), set(a.validation), set(a.test)]
    assert sum(len(p) for p in parts) == len(ids) and set().union(*parts) == set(ids)
    assert len(a.test) == round(0.2 * len(ids))


def test_explicit_test_genes_draw_validation_from_training():
    ids = [str(i) for i in range(1, 41)]
    s = split_genes(ids, train_genes=ids[:30], test_genes=ids[30:], validation=0.1)
    assert s.test == ids[30:] and set(s.validation) <= set(ids[:30]) and not set(s.train) & set(s.validation)
    with pytest.raises(ValueError, match="both train and test"):
        split_genes(ids, train_genes=ids[:31], test_genes=ids[30:])


def test_chromosome_split_keeps_chromosomes_apart():
    ids = demo_gene_ids()
    info = demo_gene_info()
    chroms = {g: info.get(g, {}).get("chrom") for g in ids}
    s = split_genes(ids, chromosomes=chroms, test_chromosomes=["chr3"])
    assert {chroms[g] for g in s.test} == {"chr3"}
    assert "chr3" not in {chroms[g] for g in s.train + s.validation}
