"""Genes on one strand whose context windows overlap share one base-model pass: same scores as separate passes,
fewer positions computed, and prepare groups them by the plan (shards still end with one clean run's bytes)."""

import numpy as np
import pytest

from meta_layer_cli.artifacts.prediction import plan_packs, window_clusters
from meta_layer_cli.artifacts.sources import FastaSource, GeneEntry
from meta_layer_cli.base_models import load_base_model
from meta_layer_cli.base_models.base import pack_genes
from tests.conftest import shared_path

# the first twelve genes of Arabidopsis arenosa chromosome 1 (AUGUSTUS annotation): LOCUS5 and LOCUS6 (minus
# strand) are 65 nt apart, so their 40-nt windows overlap; with 200 nt of context LOCUS4-5-6 and LOCUS10-11 do too
ARENOSA_GENES = [f"AARE701A_LOCUS{i}" for i in range(1, 13)]


@pytest.fixture(scope="module")
def arenosa():
    folder = shared_path("data", "genomes", "arabidopsis_arenosa")
    source = FastaSource(folder / "AARE701a_chr1_chr2.fna.gz", folder / "AARE701a_chr1_chr2.gtf.gz")
    return source.select(ARENOSA_GENES)


@pytest.mark.parametrize("flank", ["80nt", "400nt"])
def test_shared_windows_give_the_scores_of_separate_passes(arenosa, flank):
    model = load_base_model("openspliceai", shared_path("models", "openspliceai-mane", flank))
    genes = list(arenosa.genes(model.context))
    shared = pack_genes(genes, model.context)
    separate = pack_genes(genes, model.context, share_windows=False)
    # fewer positions computed: the overlaps of same-strand windows once, not twice
    overlap = 0
    for a, b in zip(arenosa.entries, arenosa.entries[1:]):
        if a.strand == b.strand and b.start - a.end < 2 * model.context:
            overlap += 2 * model.context - (b.start - a.end)
    assert overlap > 0
    assert separate.computed_nt - shared.computed_nt == overlap
    together = model.predict_genes(genes)
    one_by_one = model.predict_genes(genes, share_windows=False)
    for g, a, b in zip(genes, together, one_by_one):
        assert a.shape == (len(g.sequence), 3)
        np.testing.assert_allclose(a, b, atol=1e-6, err_msg=g.gene_id)
    # and each equals the gene predicted alone, with its own flanks
    for g, a in zip(genes[3:6], together[3:6]):
        np.testing.assert_allclose(a, model.predict_gene(g), atol=1e-6, err_msg=g.gene_id)


def test_windows_that_disagree_are_not_merged(arenosa, osai80):
    """A stored flank shorter than the context (N where the neighbour has bases) keeps its own window."""
    genes = list(arenosa.genes(osai80.context))
    i = ARENOSA_GENES.index("AARE701A_LOCUS6")
    genes[i].downstream = genes[i].downstream[:10]  # LOCUS6 is upstream of LOCUS5 on the minus strand
    assert pack_genes(genes, osai80.context).computed_nt == pack_genes(genes, 40, share_windows=False).computed_nt
    for a, g in zip(osai80.predict_genes(genes), genes):
        np.testing.assert_allclose(a, osai80.predict_gene(g), atol=1e-6)


def _entry(gene_id, start, end, strand="+", chrom="c1"):
    return GeneEntry(gene_id, gene_id, chrom, strand, end - start, start, end)


def test_plan_keeps_overlapping_windows_in_one_pack():
    entries = [
        _entry("a", 0, 100),
        _entry("b", 150, 250, "-"),
        _entry("c", 180, 300),
        _entry("d", 5000, 5100),
        _entry("e", 5130, 5200),
        _entry("f", 9000, 9100),
    ]
    # windows of 50 nt: a-c (gap 80 < 100) and d-e (gap 30) overlap; b is on the other strand
    assert window_clusters(entries, 50) == [[0, 2], [1], [3, 4], [5]]
    packs = [[e.gene_id for e in p] for p in plan_packs(entries, 150, 50)]
    assert packs == [["a", "c"], ["b", "d", "e"], ["f"]]
    # without overlaps (no context) the plan is the old one: consecutive genes, in order
    assert [[e.gene_id for e in p] for p in plan_packs(entries, 150, 0)] == [["a", "b"], ["c", "d"], ["e", "f"]]
    # a cluster longer than a pack is cut between genes, in genomic order
    chain = [_entry(f"g{i}", 100 * i, 100 * i + 90) for i in range(10)]
    assert [len(p) for p in plan_packs(chain, 300, 50)] == [4, 4, 2]


def test_prepare_shards_with_shared_windows_equal_one_clean_run(arenosa, tmp_path):
    from meta_layer_cli.jobs.prepare import prepare

    folder = shared_path("data", "genomes", "arabidopsis_arenosa")
    fasta, gtf = folder / "AARE701a_chr1_chr2.fna.gz", folder / "AARE701a_chr1_chr2.gtf.gz"
    weights = shared_path("models", "openspliceai-mane", "400nt")
    clean, sharded = tmp_path / "clean", tmp_path / "sharded"
    kw = {"fasta": fasta, "gtf": gtf, "genes": ARENOSA_GENES, "device": "cpu", "progress": False}
    run = prepare(clean, "openspliceai", weights, **kw)
    for k in (1, 2, 3):
        prepare(sharded, "openspliceai", weights, shard=f"{k}/3", **kw)
    assert (clean / "manifest.json").read_bytes() == (sharded / "manifest.json").read_bytes()
    for path in sorted((clean / "genes").iterdir()):
        assert path.read_bytes() == (sharded / "genes" / path.name).read_bytes(), path.name
    last = run["last_run"]
    assert last["predicted_nt"] == sum(e["length"] for e in run["genes"])
    genes = list(arenosa.genes(200))  # one pack: the run computed what the shared layout computes
    assert last["computed_nt"] == pack_genes(genes, 200).computed_nt < pack_genes(genes, 200, False).computed_nt
