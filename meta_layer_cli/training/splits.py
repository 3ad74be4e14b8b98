"""Gene-level splits: no gene ever contributes to two of train / validation / test.

Three ways to choose the held-out (test) genes, all seeded and deterministic; validation genes are then
drawn from the rest (the training side), never from the test side:

* **gene**: a seeded random ``test`` fraction of the genes;
* **chromosome**: every gene on the given test chromosomes;
* **block**: contiguous blocks of neighbouring genes (:func:`gene_blocks`), a seeded random set of blocks
  holding about ``test`` of the genes, so that tandem paralogs, which lie next to each other, end up on
  one side. Works on any assembly, one chromosome or thousands of scaffolds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby

import numpy as np

from meta_layer_cli.runtime.errors import InputDataError, UsageError


class SplitImpossible(InputDataError):
    """The genes cannot be split as asked (nothing on the test chromosomes, too few genes or blocks): the
    training job adds which split was used and the options that fix it."""


@dataclass
class GeneSplit:
    train: list[str]
    validation: list[str]
    test: list[str]

    def to_dict(self) -> dict[str, list[str]]:
        return {"train": self.train, "validation": self.validation, "test": self.test}


# A gene's place in a genome: contig (``chr`` stripped), strand, 0-based start, end (half-open).
Locus = tuple[str, str, int, int]
_BUILDS = {"hg19": "GRCh37", "grch37": "GRCh37", "hg38": "GRCh38", "grch38": "GRCh38"}


LOCUS_KEYS = ("chrom", "strand", "start", "end")  # what gene_locus reads of a manifest gene entry


def gene_locus(entry: Mapping) -> Locus | None:
    """The locus of a manifest gene entry (``chrom``, ``strand``, ``start``, ``end``), or None without coordinates."""
    from meta_layer_cli.io.contigs import strip_chr

    if entry.get("start") is None or entry.get("end") is None or not entry.get("chrom"):
        return None
    return strip_chr(str(entry["chrom"])), str(entry.get("strand") or "+"), int(entry["start"]), int(entry["end"])


def same_build(a: str | None, b: str | None) -> bool:
    """Whether two genome builds can share coordinates: unknown (None) matches anything; hg19 == GRCh37."""
    if not a or not b:
        return True
    return _BUILDS.get(a.lower(), a) == _BUILDS.get(b.lower(), b)


def overlapping_genes(seen: Sequence[Sequence], candidates: Mapping[str, Locus | None]) -> set[str]:
    """The ``candidates`` (gene id -> locus) whose locus overlaps any of ``seen`` on the same contig and strand:
    the same piece of genome under another annotation's name. ``seen``: ``[contig, strand, start, end]`` each."""
    by_place: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for contig, strand, start, end in seen:
        by_place.setdefault((str(contig), str(strand)), []).append((int(start), int(end)))
    index = {}
    for place, spans in by_place.items():
        spans.sort()
        starts = np.array([s for s, _ in spans], np.int64)
        reach = np.maximum.accumulate(np.array([e for _, e in spans], np.int64))  # furthest end so far
        index[place] = starts, reach
    out = set()
    for gene_id, locus in candidates.items():
        if locus is None or (locus[0], locus[1]) not in index:
            continue
        starts, reach = index[(locus[0], locus[1])]
        before = int(np.searchsorted(starts, locus[3], side="left"))  # seen spans starting before this one ends
        if before and reach[before - 1] > locus[2]:
            out.add(gene_id)
    return out


def split_genes(
    gene_ids: Sequence[str],
    seed: int = 0,
    validation: float = 0.1,
    test: float = 0.2,
    train_genes: Sequence[str] | None = None,
    test_genes: Sequence[str] | None = None,
    chromosomes: Mapping[str, str] | None = None,
    test_chromosomes: Sequence[str] | None = None,
    loci: Mapping[str, tuple[str, int, int]] | None = None,
) -> GeneSplit:
    """Split genes by gene (seeded shuffle), by chromosome or by blocks of neighbouring genes (module docstring).

    ``train_genes``/``test_genes`` fix the split explicitly (validation genes are
    then drawn from the training genes); ``test_chromosomes`` with a
    ``chromosomes`` map puts whole chromosomes in the test set; ``loci`` (gene -> contig, start, end)
    holds out blocks of neighbouring genes (:func:`gene_blocks`).
    """
    ids = list(dict.fromkeys(gene_ids))
    rng = np.random.default_rng(seed)
    if test_genes is not None or train_genes is not None:
        unknown = sorted((set(test_genes or []) | set(train_genes or [])) - set(ids))
        if unknown:
            raise InputDataError(f"genes not available: {', '.join(unknown[:5])}")
        test_set = list(test_genes) if test_genes is not None else [g for g in ids if g not in set(train_genes)]
        pool = list(train_genes) if train_genes is not None else [g for g in ids if g not in set(test_set)]
        overlap = set(pool) & set(test_set)
        if overlap:
            raise UsageError(f"genes in both train and test: {', '.join(sorted(overlap)[:5])}")
    elif test_chromosomes:
        if chromosomes is None:
            raise InputDataError("a chromosome split needs each gene's chromosome")
        wanted = set(test_chromosomes)
        test_set = [g for g in ids if chromosomes.get(g) in wanted]
        pool = [g for g in ids if chromosomes.get(g) not in wanted]
        if not test_set:
            raise SplitImpossible(f"no genes on test chromosomes {sorted(wanted)}")
    elif loci is not None:
        blocks = gene_blocks(ids, loci)
        if len(blocks) < 2:
            raise SplitImpossible(
                f"{len(ids)} gene(s) make {len(blocks)} block(s) of neighbouring genes: too few to "
                "hold some out (--split gene holds out single genes)"
            )
        target = max(1, round(test * len(ids)))
        test_set = []
        for b in rng.permutation(len(blocks)):
            if len(test_set) >= target:
                break
            if len(test_set) + len(blocks[b]) < len(ids):  # some training genes must remain
                test_set += blocks[b]
        held = set(test_set)
        pool = [g for g in ids if g not in held]
    else:
        order = [ids[i] for i in rng.permutation(len(ids))]
        n_test = max(1, round(test * len(ids)))
        test_set, pool = order[:n_test], order[n_test:]
    pool = [pool[i] for i in rng.permutation(len(pool))]
    n_val = max(1, round(validation * (len(pool) + len(test_set)))) if validation > 0 else 0
    if n_val >= len(pool):
        raise SplitImpossible(f"{len(pool)} training genes are too few to hold out {n_val} for validation")
    return GeneSplit(
        train=sorted(pool[n_val:], key=_key), validation=sorted(pool[:n_val], key=_key), test=sorted(test_set, key=_key)
    )


def _key(gene_id: str):
    return (0, int(gene_id), "") if gene_id.isdigit() else (1, 0, gene_id)


#: Genes per block of a block split (fewer when there are under ten blocks' worth of genes: a tenth of them).
BLOCK_GENES = 20


def gene_blocks(
    gene_ids: Sequence[str], loci: Mapping[str, tuple[str, int, int]], block_genes: int = BLOCK_GENES
) -> list[list[str]]:
    """Genes in blocks of about ``block_genes`` neighbours: sorted by contig and start, cut every ``block_genes``
    genes, but never between overlapping genes (a block grows until the next gene starts past its end) and
    always at a contig's end. With fewer than ``10 * block_genes`` genes, blocks are a tenth of the genes (at
    least one), so that a split has blocks to choose from. Genes without a locus are blocks of their own.
    """
    size = max(1, min(block_genes, len(gene_ids) // 10))
    placed = sorted((g for g in gene_ids if g in loci), key=lambda g: (loci[g][0], loci[g][1], loci[g][2], g))
    blocks: list[list[str]] = []
    for _, on_contig in groupby(placed, key=lambda g: loci[g][0]):
        block: list[str] = []
        reach = -1
        for g in on_contig:
            _, start, end = loci[g]
            if len(block) >= size and start >= reach:
                blocks.append(block)
                block, reach = [], -1
            block.append(g)
            reach = max(reach, end)
        blocks.append(block)
    return blocks + [[g] for g in gene_ids if g not in loci]


def grouped_kfold(groups: Sequence[str] | np.ndarray, folds: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """K folds of whole groups (exons): ``[(train_index, test_index), ...]``, every row tested once.

    Groups are shuffled (seeded), then, largest first, each goes to the fold with the
    fewest rows so far, so folds are balanced in rows. Raises if there are fewer
    groups than folds.

    Not scikit-learn's ``GroupKFold``: it balances folds only without a seed (ties between equal-sized
    groups broken by name) and, with ``shuffle=True``, deals shuffled groups out unbalanced; this does
    both, and every recorded cross-validation (scripts/RESULTS.md) used these folds.
    """
    groups = np.asarray(groups, dtype=object)
    if folds < 2:
        raise UsageError(f"folds must be at least 2, got {folds}")
    names, inverse, counts = np.unique(groups.astype(str), return_inverse=True, return_counts=True)
    if len(names) < folds:
        raise InputDataError(f"{len(names)} exon group(s) cannot be split into {folds} folds")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(names))
    order = order[np.argsort(-counts[order], kind="stable")]
    fold_of = np.empty(len(names), dtype=np.int64)
    sizes = np.zeros(folds, dtype=np.int64)
    for g in order:
        f = int(np.argmin(sizes))
        fold_of[g] = f
        sizes[f] += counts[g]
    row_fold = fold_of[inverse]
    return [(np.flatnonzero(row_fold != f), np.flatnonzero(row_fold == f)) for f in range(folds)]


def grouped_holdout(
    groups: Sequence[str] | np.ndarray, fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Whole groups held out: ``(keep_index, held_out_index)`` with about ``fraction`` of the rows held out
    (at least one group, and at least one group kept)."""
    groups = np.asarray(groups, dtype=object).astype(str)
    names = np.unique(groups)
    if len(names) < 2:
        raise InputDataError("a held-out part needs at least two exon groups")
    rng = np.random.default_rng(seed)
    order = names[rng.permutation(len(names))]
    held: list[str] = []
    n_held = 0
    target = fraction * len(groups)
    for name in order[:-1]:
        if held and n_held >= target:
            break
        held.append(name)
        n_held += int((groups == name).sum())
    is_held = np.isin(groups, held)
    return np.flatnonzero(~is_held), np.flatnonzero(is_held)
