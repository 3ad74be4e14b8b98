"""Where genes come from: the built-in demo set, or a user's FASTA + GTF/GFF3/annotation table."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from meta_layer_cli.io.annotation import read_gene_annotation
from meta_layer_cli.io.demo import demo_gene_ids, load_demo_gene
from meta_layer_cli.io.fasta import Fasta
from meta_layer_cli.io.genes import GeneSequence, gene_from_fasta
from meta_layer_cli.io.gtf import filter_genes


def demo_genes(gene_ids: Sequence[str] | None = None) -> list[GeneSequence]:
    """Demo genes by id (all 610 when None)."""
    return [load_demo_gene(g) for g in (gene_ids or demo_gene_ids())]



def fasta_gtf_genes(
    fasta: str | os.PathLike,
    annotation: str | os.PathLike,
    gene_names: Sequence[str] | None = None,
    transcript_rule: str = "canonical",
) -> Callable[[int], list[GeneSequence]]:
    """A gene source for :func:`predict_tracks`: given the model's context, cut genes + real flanks.

    Fails loudly when no contig of the annotation matches the FASTA (``chr1`` vs
    ``1`` is matched automatically) and names the gene whose contig is missing.
    """
    reference = Fasta(fasta)
    transcripts = filter_genes(read_gene_annotation(annotation, transcript_rule), list(gene_names or []))
    reference.contigs.check_overlap((t.chrom for t in transcripts), f"annotation {annotation}")

    def build(context: int) -> list[GeneSequence]:
        out = []
        for t in transcripts:
            if t.chrom not in reference:
                if gene_names:
                    raise KeyError(f"gene {t.gene_name}: contig {t.chrom!r} is not in FASTA {fasta}")
                continue  # whole-genome annotations routinely name contigs a FASTA lacks
            out.append(gene_from_fasta(t, reference, context))
        return out

    return build
