"""Variant scoring throughput: metalayer's batched paths vs the naive one-at-a-time path.

(1) ``score_sequences`` on Vex-seq rows (ref/alt sequence pairs, ~280 nt, no genome):
    naive = each row's ref and alt predicted separately, N-padded to the model's context;
    batched = identical refs once, substitutions computed from the reference's activations,
    other sequences packed into shared inputs with N spacers.
(2) ``score_vcf`` on a VCF of SNVs and some short indels in real demo genes placed on a
    small genome (+ a SpliceAI-style annotation table): naive = the official one-variant-
    at-a-time definition (a reference and an ALT window per variant x gene); batched = one
    reference prediction per region of nearby variants, SNVs from its activations, indel
    ALT windows batched.

Prints rows/s and variants/s for both paths and their ratio, and checks the outputs:
identical SpliceAI= fields record for record (VCF) and max |difference| <= 1e-5 for
every score column (sequences). The process exits with status 1 if they differ.

    python scripts/variants.py                      # full size: 957 Vex-seq rows, 300 variants
    python scripts/variants.py --n-seqs 40 --n-variants 30 --threads 1   # quick check
    python scripts/variants.py --device cuda        # GPU figure

Data: ``--vexseq`` (default ``$METALAYER_SHARED/data/variants/vexseq_hepg2_train.csv``,
``METALAYER_SHARED`` defaulting to ``../shared``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from meta_layer_cli import load_base_model
from meta_layer_cli.artifacts.sequences import SEQUENCE_SCORE_COLUMNS, score_sequences
from meta_layer_cli.inference.vcf import score_vcf
from meta_layer_cli.io.assays import load_vexseq
from meta_layer_cli.io.demo import demo_gene_ids, demo_gene_length, exons_from_labels, load_demo_gene
from meta_layer_cli.io.sequence import reverse_complement

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("METALAYER_SHARED", REPO.parent / "shared"))
FLANK = 6000


def build_genome(directory: Path, n_genes: int, n_variants: int, indel_fraction: float, seed: int) -> dict:
    """Demo genes on their own contigs (real flanks), an annotation table and a sorted VCF."""
    rng = np.random.default_rng(seed)
    ids = [g for g in sorted(demo_gene_ids(), key=int) if 8_000 <= demo_gene_length(g) <= 40_000][:n_genes]
    filler = ""  # real sequence for the contigs' flanks: the longest demo genes, as many as needed
    for gene_id in sorted(demo_gene_ids(), key=demo_gene_length, reverse=True):
        if len(filler) >= 2 * FLANK * n_genes:
            break
        filler += load_demo_gene(gene_id).sequence.replace("N", "A")
    contigs, rows, sites = {}, [], {}
    for k, gid in enumerate(ids):
        gene = load_demo_gene(gid)
        length = len(gene.sequence)
        tx = exons_from_labels(gene.labels)
        if gene.strand == "+":
            genomic, exons = gene.sequence, [(FLANK + s, FLANK + e) for s, e in tx]
        else:
            genomic = reverse_complement(gene.sequence)
            exons = sorted((FLANK + length - e, FLANK + length - s) for s, e in tx)
        name = f"chr{k + 1}"
        left = filler[k * 2 * FLANK : k * 2 * FLANK + FLANK]
        right = filler[k * 2 * FLANK + FLANK : (k + 1) * 2 * FLANK]
        contigs[name] = left + genomic + right
        rows.append((f"G{gid}", name, gene.strand, FLANK, FLANK + length, exons))
        sites[name] = (FLANK, FLANK + length, [b for s, e in exons for b in (s, e)])
    fasta = directory / "genome.fa"
    with open(fasta, "w") as fh:
        for name, seq in contigs.items():
            fh.write(f">{name}\n" + "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60)) + "\n")
    annotation = directory / "genes.txt"
    with open(annotation, "w") as fh:
        fh.write("#NAME\tCHROM\tSTRAND\tTX_START\tTX_END\tEXON_START\tEXON_END\n")
        for gname, chrom, strand, s, e, exons in rows:
            starts, ends = "".join(f"{a}," for a, _ in exons), "".join(f"{b}," for _, b in exons)
            fh.write(f"{gname}\t{chrom}\t{strand}\t{s}\t{e}\t{starts}\t{ends}\n")
    variants = set()
    names = list(contigs)
    while len(variants) < n_variants:
        chrom = names[rng.integers(len(names))]
        start, end, bounds = sites[chrom]
        if rng.random() < 0.7:  # near a splice site
            pos = int(bounds[rng.integers(len(bounds))] + rng.integers(-60, 61))
        else:
            pos = int(rng.integers(start + 1, end))
        pos = min(max(pos, start + 1), end - 5)  # 1-based, inside the gene
        seq = contigs[chrom]
        ref = seq[pos - 1]
        if rng.random() < indel_fraction:
            size = int(rng.integers(1, 4))
            if rng.random() < 0.5:
                variants.add((chrom, pos, seq[pos - 1 : pos + size], ref))
            else:
                variants.add((chrom, pos, ref, ref + "".join(rng.choice(list("ACGT"), size))))
        else:
            variants.add((chrom, pos, ref, str(rng.choice([b for b in "ACGT" if b != ref]))))
    vcf = directory / "variants.vcf"
    with open(vcf, "w") as fh:
        fh.write("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        for chrom, pos, ref, alt in sorted(variants, key=lambda v: (names.index(v[0]), v[1], v[2], v[3])):
            fh.write(f"{chrom}\t{pos}\t.\t{ref}\t{alt}\t.\t.\t.\n")
    n_snv = sum(len(r) == len(a) == 1 for _, _, r, a in variants)
    return {
        "fasta": fasta,
        "annotation": annotation,
        "vcf": vcf,
        "genes": ids,
        "snvs": n_snv,
        "indels": len(variants) - n_snv,
        "genome_nt": sum(map(len, contigs.values())),
    }


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def bench_sequences(model, path: Path, n: int) -> dict:
    table = load_vexseq(path).head(n)
    naive, t_naive = timed(lambda: score_sequences(table, base_model=model, batched=False))
    fast, t_fast = timed(lambda: score_sequences(table, base_model=model))
    diff = max(
        float(np.nanmax(np.abs(np.asarray(naive[c].to_numpy(), float) - np.asarray(fast[c].to_numpy(), float))))
        for c in SEQUENCE_SCORE_COLUMNS
        if naive[c].null_count() < naive.height
    )
    same_ref = table["ref_seq"].n_unique()
    same_len = int((table["ref_seq"].str.len_chars() == table["alt_seq"].str.len_chars()).sum())
    rows = table.height
    return {
        "rows": rows,
        "unique_refs": same_ref,
        "substitutions": same_len,
        "naive_s": t_naive,
        "batched_s": t_fast,
        "naive_rows_per_s": rows / t_naive,
        "batched_rows_per_s": rows / t_fast,
        "speedup": t_naive / t_fast,
        "max_abs_diff": diff,
        "identical": diff <= 1e-5,
    }


def bench_vcf(model, directory: Path, genome: dict) -> dict:
    outputs = {}
    times = {}
    for name, batched in (("naive", False), ("batched", True)):
        out = directory / f"{name}.vcf"
        summary, times[name] = timed(
            lambda out=out, batched=batched: score_vcf(
                genome["vcf"],
                out,
                genome["fasta"],
                genome["annotation"],
                base_model=model,
                progress=False,
                batched=batched,
            )
        )
        outputs[name] = [ln for ln in out.read_text().splitlines() if not ln.startswith("#")]
    n = summary["records"]
    differing = [(a, b) for a, b in zip(outputs["naive"], outputs["batched"]) if a != b]
    for a, b in differing[:5]:
        print(f"  differs:\n    naive   {a}\n    batched {b}", file=sys.stderr)
    return {
        "variants": n,
        "snvs": genome["snvs"],
        "indels": genome["indels"],
        "entries": summary["entries"],
        "genes": len(genome["genes"]),
        "naive_s": times["naive"],
        "batched_s": times["batched"],
        "naive_variants_per_s": n / times["naive"],
        "batched_variants_per_s": n / times["batched"],
        "speedup": times["naive"] / times["batched"],
        "differing_records": len(differing),
        "identical": not differing and len(outputs["naive"]) == len(outputs["batched"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base-model", default="spliceai")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--vexseq", type=Path, default=SHARED / "data" / "variants" / "vexseq_hepg2_train.csv")
    ap.add_argument("--n-seqs", type=int, default=957, help="Vex-seq rows (0 skips the sequence benchmark)")
    ap.add_argument("--n-variants", type=int, default=300, help="VCF records (0 skips the VCF benchmark)")
    ap.add_argument("--genes", type=int, default=8, help="demo genes the variants fall in")
    ap.add_argument("--indel-fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    model = load_base_model(a.base_model, weights=a.weights, device=a.device)
    model.predict_codes(np.full(2 * model.context + 100, 4, np.uint8))  # warm-up
    device = torch.cuda.get_device_name() if a.device.startswith("cuda") else platform.processor() or "cpu"
    print(f"{a.base_model} on {a.device} ({device}), torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    results: dict = {"base_model": a.base_model, "device": a.device, "device_name": device}
    if a.n_seqs:
        r = bench_sequences(model, a.vexseq, a.n_seqs)
        results["sequences"] = r
        print(
            f"\nscore_sequences, Vex-seq: {r['rows']} rows ({r['unique_refs']} distinct refs, "
            f"{r['substitutions']} same-length alts)"
        )
        print(f"  naive    {r['naive_rows_per_s']:8.2f} rows/s   ({r['naive_s']:.1f} s)")
        print(f"  batched  {r['batched_rows_per_s']:8.2f} rows/s   ({r['batched_s']:.1f} s)")
        print(f"  speedup  {r['speedup']:8.2f}x    max |diff| {r['max_abs_diff']:.2e}")
    if a.n_variants:
        with tempfile.TemporaryDirectory() as tmp:
            genome = build_genome(Path(tmp), a.genes, a.n_variants, a.indel_fraction, a.seed)
            r = bench_vcf(model, Path(tmp), genome)
        results["vcf"] = r
        print(
            f"\nscore_vcf: {r['variants']} variants ({r['snvs']} SNVs, {r['indels']} indels) in {r['genes']} genes, "
            f"{r['entries']} entries"
        )
        print(f"  naive    {r['naive_variants_per_s']:8.2f} variants/s   ({r['naive_s']:.1f} s)")
        print(f"  batched  {r['batched_variants_per_s']:8.2f} variants/s   ({r['batched_s']:.1f} s)")
        print(f"  speedup  {r['speedup']:8.2f}x    SpliceAI= fields identical: {r['identical']}")
    if a.json:
        a.json.write_text(json.dumps(results, indent=2) + "\n")
    ok = all(results[k]["identical"] for k in ("sequences", "vcf") if k in results)
    if not ok:
        print("\nOUTPUTS DIFFER between the naive and batched paths", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
