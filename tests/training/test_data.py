"""ChunkSampler: a compact candidate index (memory-mapped, per-gene offsets), the draws and batches of the flat one."""

import numpy as np
import torch

from meta_layer_cli.artifacts.arrays import in_memory
from meta_layer_cli.training.data import ChunkSampler


def _flat_index(genes, channels, threshold):
    """The index as it was held before: a gene and a position per candidate, every gene at once."""
    rows = [i for i, name in enumerate(channels) if not name.endswith("neither")]
    gene, pos = [], []
    for i, g in enumerate(genes):
        p = np.flatnonzero((g.labels > 0) | (g.tracks[rows].max(axis=0) >= threshold))
        gene.append(np.full(len(p), i))
        pos.append(p)
    return np.concatenate(gene), np.concatenate(pos)


def test_candidate_index_is_the_flat_one_memory_mapped(osai80_arrays):
    channels, genes = osai80_arrays
    sampler = ChunkSampler(genes, channels, 500, 40, candidate_threshold=0.01)
    flat_gene, flat_pos = _flat_index(genes, channels, 0.01)
    assert len(sampler._cand_pos) == len(flat_pos) > 0
    assert isinstance(sampler._cand_pos, np.memmap)  # on disk, not in memory
    for k in range(len(flat_pos)):
        assert sampler.candidate(k) == (int(flat_gene[k]), int(flat_pos[k]))


def test_stored_and_in_memory_genes_give_the_same_batches(osai80_arrays):
    channels, genes = osai80_arrays
    held = [in_memory(g) for g in genes]
    batches = []
    for source in (genes, held):
        sampler = ChunkSampler(source, channels, 300, 40, random_fraction=0.3)
        batches.append(list(sampler.batches(24, 8, np.random.default_rng(7))))
    for a, b in zip(*batches):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    # chunks past a gene's end are padded as before: N (all-zero one-hot), zero scores, ignored labels
    x, t, y = batches[0][0]
    assert x.shape == (8, 4, 380) and t.shape == (8, 3, 380) and y.shape == (8, 300)


def test_a_chunk_reads_only_its_window_and_sees_what_it_saw_before(osai80_arrays):
    """Each chunk is cut from the window alone; it equals the chunk cut from the whole gene, at both ends."""
    from meta_layer_cli.models.apply import window_arrays
    from meta_layer_cli.training.data import IGNORE

    channels, genes = osai80_arrays
    sampler = ChunkSampler(genes, channels, 300, 40)
    picks = sampler._starts(40, np.random.default_rng(3)) + [(0, -150), (0, len(genes[0]) - 100)]
    x, t, y = sampler.batch(picks)
    for row, (gi, start) in enumerate(picks):
        g = genes[gi]
        c, tr = window_arrays(np.asarray(g.codes), np.asarray(g.tracks), start - 40, start + 340)
        np.testing.assert_array_equal(t[row].numpy(), tr)
        np.testing.assert_array_equal(x[row].numpy().argmax(0)[c < 4], c[c < 4])
        lab = np.full(300, IGNORE)
        lo, hi = max(start, 0), min(start + 300, len(g))
        lab[lo - start : hi - start] = g.labels[lo:hi]
        np.testing.assert_array_equal(y[row].numpy(), lab)
