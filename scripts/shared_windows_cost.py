"""What prepare computes per nucleotide of gene, before and after genes on one strand share their context windows.

    python scripts/shared_windows_cost.py [--time-genes 300] [--time-genes-10k 30]

Before: genes laid end to end, each with its own ``context`` of flank (``pack_genes(..., share_windows=False)``,
packs of consecutive genes). After: same-strand genes whose windows overlap share one segment over their union
(``plan_packs`` keeps them in one pack). Counts come from the layouts themselves (no model needed) for:
Arabidopsis arenosa chromosomes 1-2 (a compact genome; ../shared), the demo genes (``--dataset demo``), the
demo genome of the tests (demo genes laid on chr1/chr3 with 3-kb spacers), and, from coordinates alone,
SpliceAI's GRCh38 gene table. Then the time of both layouts with OpenSpliceAI on the first arenosa genes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(os.environ.get("METALAYER_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
ARENOSA = SHARED / "data" / "genomes" / "arabidopsis_arenosa"
CONTEXTS = {"80 nt": 40, "400 nt": 200, "2,000 nt": 1000, "10,000 nt": 5000}
PACK_NT = 200_000


def layout_cost(source, context: int) -> tuple[int, int, int]:
    """(gene nt, computed nt before, computed nt after) of a source's genes at one context."""
    from meta_layer_cli.artifacts.prediction import plan_packs
    from meta_layer_cli.base_models.base import pack_genes

    gene_nt = sum(e.length for e in source.entries)
    before = sum(
        pack_genes(list(source.genes(context, p)), context, False).computed_nt
        for p in plan_packs(source.entries, PACK_NT)
    )
    after = sum(
        pack_genes(list(source.genes(context, p)), context).computed_nt
        for p in plan_packs(source.entries, PACK_NT, context)
    )
    return gene_nt, before, after


def table_cost(entries, context: int) -> tuple[int, int, int]:
    """The same from coordinates alone (every window real sequence; cuts between packs not counted)."""
    from meta_layer_cli.artifacts.prediction import window_clusters

    gene_nt = sum(e.length for e in entries)
    before = sum(e.length + 2 * context for e in entries)
    after = 0
    for cluster in window_clusters(entries, context):
        members = [entries[i] for i in cluster]
        after += max(e.end for e in members) - min(e.start for e in members) + 2 * context
    return gene_nt, before, after


def row(name: str, model: str, cost: tuple[int, int, int], genes: int) -> str:
    gene_nt, before, after = cost
    return (
        f"| {name} | {genes:,} | {gene_nt / 1e6:,.2f} | {model} | {before / gene_nt:.3f} | {after / gene_nt:.3f} | "
        f"{1 - after / before:.1%} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time-genes", type=int, default=300, help="arenosa genes timed with OpenSpliceAI 80 nt")
    parser.add_argument("--time-genes-10k", type=int, default=30, help="... and with OpenSpliceAI 10,000 nt")
    args = parser.parse_args()
    from meta_layer_cli.artifacts.sources import DemoSource, FastaSource, GeneEntry
    from meta_layer_cli.io.annotation import annotation_path, read_annotation_table
    from meta_layer_cli.io.demo import write_demo_genome

    print("| genes | count | Mnt | OpenSpliceAI | computed / gene nt, before | after | saved |")
    print("|---|---:|---:|---|---:|---:|---:|")
    arenosa = FastaSource(ARENOSA / "AARE701a_chr1_chr2.fna.gz", ARENOSA / "AARE701a_chr1_chr2.gtf.gz")
    for model, c in CONTEXTS.items():
        print(row("A. arenosa chr1-2", model, layout_cost(arenosa, c), len(arenosa.entries)), flush=True)
    demo = DemoSource()
    for model in ("80 nt", "10,000 nt"):
        print(
            row("demo genes (`--dataset demo`)", model, layout_cost(demo, CONTEXTS[model]), len(demo.entries)),
            flush=True,
        )
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' demo genome
    from tests.conftest import GENOME_CHR1, GENOME_CHR3

    with tempfile.TemporaryDirectory() as tmp:
        fasta, gtf = write_demo_genome(Path(tmp), GENOME_CHR1 + GENOME_CHR3, spacer=3000)
        genome = FastaSource(fasta, gtf, cache=False)
        for model in ("80 nt", "10,000 nt"):
            print(
                row(
                    "demo genome of the tests (21 genes, 3-kb spacers)",
                    model,
                    layout_cost(genome, CONTEXTS[model]),
                    len(genome.entries),
                ),
                flush=True,
            )
    human = [t.transcript() for t in read_annotation_table(annotation_path("grch38"))]
    entries = [GeneEntry(t.gene_id, t.gene_name, t.chrom, t.strand, t.end - t.start, t.start, t.end) for t in human]
    for model in ("80 nt", "10,000 nt"):
        print(
            row(
                "GRCh38, SpliceAI's gene table (coordinates only)",
                model,
                table_cost(entries, CONTEXTS[model]),
                len(entries),
            ),
            flush=True,
        )

    from meta_layer_cli.base_models import load_base_model
    from meta_layer_cli.base_models.base import pack_genes

    print("\n| OpenSpliceAI | genes | layout | computed nt | seconds | gene nt/s | max abs diff |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for model_name, count in (("80nt", args.time_genes), ("10000nt", args.time_genes_10k)):
        if not count:
            continue
        model = load_base_model("openspliceai", SHARED / "models" / "openspliceai-mane" / model_name)
        entries = arenosa.entries[:count]
        genes = list(arenosa.genes(model.context, entries))
        gene_nt = sum(e.length for e in entries)
        model.predict_genes(genes[:2])  # warm-up
        outputs = {}
        for layout, share in (("separate", False), ("shared", True)):
            pack = pack_genes(genes, model.context, share)
            t = time.perf_counter()
            outputs[layout] = model.predict_pack(pack)
            seconds = time.perf_counter() - t
            diff = max(abs(a - b).max() for a, b in zip(outputs[layout], outputs["separate"]))
            print(
                f"| {model_name} | {count} | {layout} | {pack.computed_nt:,} | {seconds:.1f} | "
                f"{gene_nt / seconds:,.0f} | {diff:.1e} |",
                flush=True,
            )
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
