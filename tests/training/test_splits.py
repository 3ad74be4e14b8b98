import numpy as np
import pytest

from meta_layer_cli.io.demo import demo_gene_ids, demo_gene_info
from meta_layer_cli.training import split_genes
from meta_layer_cli.training.splits import grouped_holdout, grouped_kfold


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


@pytest.mark.parametrize("folds", [2, 3, 5])
def test_grouped_kfold_never_shares_an_exon(folds):
    rng = np.random.default_rng(folds)
    groups = np.array([f"exon{g}" for g in rng.integers(0, 23, size=400)], dtype=object)
    splits = grouped_kfold(groups, folds, seed=1)
    tested = np.concatenate([test for _, test in splits])
    assert sorted(tested.tolist()) == list(range(len(groups)))  # every row tested exactly once
    for train, test in splits:
        assert not set(groups[train]) & set(groups[test])
        assert len(train) + len(test) == len(groups)
    sizes = [len(test) for _, test in splits]
    assert max(sizes) - min(sizes) <= 60  # balanced in rows
    assert [t.tolist() for _, t in grouped_kfold(groups, folds, seed=1)] == [t.tolist() for _, t in splits]
    with pytest.raises(ValueError, match="cannot be split"):
        grouped_kfold(groups[:3], 5)


def test_grouped_holdout():
    groups = np.array(["a"] * 10 + ["b"] * 5 + ["c"] * 5 + ["d"] * 20, dtype=object)
    keep, held = grouped_holdout(groups, 0.2, seed=0)
    assert not set(groups[keep]) & set(groups[held]) and len(keep) + len(held) == len(groups)
    assert len(held) > 0 and len(keep) > 0
    with pytest.raises(ValueError, match="two exon groups"):
        grouped_holdout(np.array(["a", "a"], dtype=object), 0.5)


def _tandem_genome():
    """Two contigs of genes 3 kb apart; every 41st gene reaches over its neighbour (overlapping genes)."""
    loci = {}
    for contig, n in (("NC_000001.11", 130), ("scaffold_7", 70)):
        for i in range(n):
            start = 3000 * i
            loci[f"{contig}:g{i}"] = (contig, start, start + 2000 + (4000 if i % 41 == 5 else 0))
    return loci


def test_block_split_holds_out_whole_blocks_of_neighbours_seeded_and_complete():
    from meta_layer_cli.training.splits import BLOCK_GENES, gene_blocks

    loci = _tandem_genome()
    ids = list(loci)
    a = split_genes(ids, seed=3, test=0.2, loci=loci)
    assert a == split_genes(ids, seed=3, test=0.2, loci=loci) and a != split_genes(ids, seed=4, test=0.2, loci=loci)
    parts = [set(a.train), set(a.validation), set(a.test)]
    assert sum(len(p) for p in parts) == len(ids) and set().union(*parts) == set(ids)
    assert 0.2 * len(ids) <= len(a.test) < 0.2 * len(ids) + BLOCK_GENES
    blocks = gene_blocks(ids, loci)
    assert sorted(g for b in blocks for g in b) == sorted(ids)
    for block in blocks:
        assert len({loci[g][0] for g in block}) == 1  # never across contigs
        assert set(block) <= set(a.test) or not set(block) & set(a.test)  # a block is held out whole or not at all
    # overlapping neighbours are never cut apart, on either side of the split
    for contig in ("NC_000001.11", "scaffold_7"):
        on = sorted((g for g in ids if loci[g][0] == contig), key=lambda g: loci[g][1])
        for left, right in zip(on, on[1:]):
            if loci[right][1] < loci[left][2]:
                assert (left in a.test) == (right in a.test)
    # the held-out genes are contiguous runs, not scattered genes: far fewer runs than genes
    held = [g in a.test for g in sorted(ids, key=lambda g: (loci[g][0], loci[g][1]))]
    runs = sum(1 for x, y in zip([False, *held], held) if y and not x)
    assert runs <= len(a.test) / 5


def test_block_split_of_few_genes_and_genes_without_coordinates():
    from meta_layer_cli.training.splits import gene_blocks

    loci = {f"g{i}": ("chr1", 1000 * i, 1000 * i + 500) for i in range(30)}
    blocks = gene_blocks([*loci, "nowhere"], loci)
    assert [len(b) for b in blocks] == [3] * 10 + [1] and blocks[-1] == ["nowhere"]  # a tenth of 31 genes per block
    s = split_genes([*loci, "nowhere"], seed=0, test=0.2, validation=0.1, loci=loci)
    assert 6 <= len(s.test) <= 9 and len(s.validation) >= 1
    with pytest.raises(ValueError, match="too few"):
        split_genes(["a"], loci={"a": ("c", 0, 10)})
