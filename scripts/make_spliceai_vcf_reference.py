"""Build the small genome + VCF of ``tests/fixtures/spliceai_vcf_reference/`` and record what
the OFFICIAL ``spliceai`` 1.3.1 code writes for each record (``-D 50``, ``-M 0`` and ``-M 1``).

Not part of the test suite and not run by CI. Two steps, two environments:

    # 1. inputs, with metalayer's environment (demo genes from frame-alignment-checks)
    .venv/bin/python scripts/make_spliceai_vcf_reference.py build

    # 2. official outputs, in a throw-away environment with spliceai + TensorFlow + tf_keras
    #    (see make_reference_outputs.py for how /tmp/refenv was made)
    /tmp/refenv/bin/python scripts/make_spliceai_vcf_reference.py official

Step 1 writes ``ref.fa`` (three contigs), ``annotation.txt`` (a SpliceAI-style
gene table) and ``input.vcf``:

* ``chr1``: 6 kb of real sequence, demo gene 417 (PSMB4, + strand), 6 kb; a
  made-up antisense gene ``PSMB4-AS`` (- strand, two exons) overlaps PSMB4; a
  stretch is soft-masked (lowercase) and 20 nt are N;
* ``chr2``: 6 kb, demo gene 567 (C1orf35, - strand: its transcript-orientation
  sequence reverse-complemented onto the + strand), 6 kb;
* ``chr3``: 4 kb holding demo gene 186 (NPPB, -), too short for a full window;
* the annotation also names a gene on ``chr5``, which the FASTA lacks.

Flanks are real DNA (slices of demo gene 17). The VCF names contigs ``1``,
``2``... (the FASTA and table say ``chr1``), and covers SNVs at and near
acceptors and donors on both strands, deletions and insertions across splice
sites, multi-allelic records, a complex (MNV-like) allele, a REF mismatch,
symbolic alleles, a record outside genes, near transcript ends, in
lowercase and N context, a REF of N, an unknown contig, a contig absent from the
FASTA, a too-long REF, ALT '.', a lowercase REF.

Step 2 reads the records with pysam (as the ``spliceai`` command does), calls
``spliceai.utils.get_delta_scores(record, ann, 50, M)`` per record (the
command-line tool would crash on the symbolic allele when writing), and writes
``expected.json``: per record its line, CHROM/POS/REF/ALT and the official
``SpliceAI`` INFO value for M=0 and M=1 (``null`` when it adds none), or the
exception the official code raised. Compatibility shims as in
make_reference_outputs.py: ``keras`` -> ``tf_keras``, ``np.fromstring`` ->
``np.frombuffer``, a ``pkg_resources`` shim, models loaded with compile=False.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "spliceai_vcf_reference"
FLANK = 6000
COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")


def rc(seq: str) -> str:
    return seq.translate(COMPLEMENT)[::-1]


def place(gene, offset: int) -> tuple[str, list[tuple[int, int]]]:
    """Genomic (+ strand) sequence of a demo gene and its exons, 0-based half-open, at ``offset``."""
    from meta_layer_cli.io.demo import exons_from_labels

    length = len(gene.sequence)
    tx_exons = exons_from_labels(gene.labels)
    if gene.strand == "+":
        return gene.sequence, [(offset + s, offset + e) for s, e in tx_exons]
    return rc(gene.sequence), sorted((offset + length - e, offset + length - s) for s, e in tx_exons)


def build() -> None:
    from meta_layer_cli.io.demo import load_demo_gene

    donor_dna = load_demo_gene("17").sequence[:45000]
    assert len(donor_dna) == 45000 and "N" not in donor_dna
    flanks = iter(donor_dna[i * FLANK : (i + 1) * FLANK] for i in range(6))

    psmb4, c1orf35, nppb = load_demo_gene("417"), load_demo_gene("567"), load_demo_gene("186")
    assert (psmb4.strand, c1orf35.strand, nppb.strand) == ("+", "-", "-")

    seq1, ex1 = place(psmb4, FLANK)
    chr1 = list(next(flanks) + seq1 + next(flanks))
    t1 = (FLANK, FLANK + len(seq1))
    # soft-masked stretch and an N run inside PSMB4
    soft = (t1[0] + 900, t1[0] + 1000)
    chr1[soft[0] : soft[1]] = [c.lower() for c in chr1[soft[0] : soft[1]]]
    nrun = (t1[0] + 1990, t1[0] + 2010)
    chr1[nrun[0] : nrun[1]] = ["N"] * (nrun[1] - nrun[0])
    chr1 = "".join(chr1)

    seq2, ex2 = place(c1orf35, FLANK)
    chr2 = next(flanks) + seq2 + next(flanks)
    t2 = (FLANK, FLANK + len(seq2))

    seq3, ex3 = place(nppb, 1000)
    chr3 = donor_dna[36000:37000] + seq3 + donor_dna[37000 : 37000 + 4000 - 1000 - len(seq3)]
    t3 = (1000, 1000 + len(seq3))
    assert len(chr1) == 2 * FLANK + len(seq1) and len(chr2) == 2 * FLANK + len(seq2) and len(chr3) == 4000

    as_exons = [(t1[0] + 500, t1[0] + 700), (t1[0] + 1200, t1[0] + 1800)]
    genes = [
        ("PSMB4", "chr1", "+", t1, ex1),
        ("PSMB4-AS", "chr1", "-", (as_exons[0][0], as_exons[-1][1]), as_exons),
        ("C1orf35", "chr2", "-", t2, ex2),
        ("NPPB", "chr3", "-", t3, ex3),
        ("GHOST", "chr5", "+", (1000, 3000), [(1000, 1500), (2500, 3000)]),
    ]
    contigs = {"chr1": chr1, "chr2": chr2, "chr3": chr3}

    HERE.mkdir(parents=True, exist_ok=True)
    with open(HERE / "ref.fa", "w") as fh:
        for name, seq in contigs.items():
            fh.write(f">{name}\n")
            for i in range(0, len(seq), 60):
                fh.write(seq[i : i + 60] + "\n")
    with open(HERE / "annotation.txt", "w") as fh:
        fh.write("#NAME\tCHROM\tSTRAND\tTX_START\tTX_END\tEXON_START\tEXON_END\n")
        for name, chrom, strand, (s, e), exons in genes:
            starts = "".join(f"{a}," for a, _ in exons)
            ends = "".join(f"{b}," for _, b in exons)
            fh.write(f"{name}\t{chrom}\t{strand}\t{s}\t{e}\t{starts}\t{ends}\n")

    def base(chrom: str, pos: int, n: int = 1) -> str:  # 1-based
        return contigs[chrom][pos - 1 : pos - 1 + n].upper()

    def other(b: str) -> str:
        return {"A": "G", "G": "A", "C": "T", "T": "C", "N": "A"}[b]

    # + strand PSMB4: acceptors at exon starts, donors at exon ends (1-based = 0-based end)
    acc1 = [s + 1 for s, _ in ex1[1:]]  # first exonic nt, 1-based
    don1 = [e for _, e in ex1[:-1]]  # last exonic nt, 1-based
    # - strand C1orf35: donors at genomic exon starts (except the genomic first), acceptors at ends
    don2 = [s + 1 for s, _ in ex2[1:]]
    acc2 = [e for _, e in ex2[:-1]]
    intron_mid = (don1[0] + acc1[0]) // 2
    rows = []

    def snv(chrom, pos, alt=None, vid="."):
        b = base(chrom, pos)
        rows.append((chrom, pos, vid, b, alt or other(b)))

    snv("chr1", acc1[0], vid="acceptor_snv")
    snv("chr1", don1[0] + 1, vid="donor_plus1")
    snv("chr1", (acc1[1] + don1[1]) // 2 if len(acc1) > 1 else acc1[0] + 20, vid="exonic")
    snv("chr1", intron_mid, vid="deep_intron")
    rows.append(("chr1", don1[1] - 1, "del_donor", base("chr1", don1[1] - 1, 4), base("chr1", don1[1] - 1)))
    b = base("chr1", acc1[2] - 3)
    rows.append(("chr1", acc1[2] - 3, "ins_acceptor", b, b + "TTAG"))
    b = base("chr1", acc1[3] - 2)
    rows.append(("chr1", acc1[3] - 2, "multi_snv", b, ",".join(x for x in "ACGT" if x != b)[:3]))
    b2 = base("chr1", don1[2] - 1, 2)
    rows.append(("chr1", don1[2] - 1, "del_and_complex", b2, f"{b2[0]},{b2}T"))
    b = base("chr1", acc1[0] + 30)
    rows.append(("chr1", acc1[0] + 30, "ref_mismatch", other(b), b))
    rows.append(("chr1", acc1[1] + 5, "symbolic", base("chr1", acc1[1] + 5), "<DEL>"))
    b = base("chr1", don1[3] + 2)
    rows.append(("chr1", don1[3] + 2, "partly_symbolic", b, f"{other(b)},<NON_REF>"))
    snv("chr1", as_exons[1][0] + 1, vid="two_genes")  # an acceptor of PSMB4-AS? its exon start
    snv("chr1", t1[0] - 300, vid="outside_genes")
    snv("chr1", t1[0] + 10 + 1, vid="near_tx_start")
    snv("chr1", soft[0] + 40, vid="lowercase_context")
    snv("chr1", nrun[1] + 15, vid="n_context")
    rows.append(("chr1", nrun[0] + 5, "ref_is_n", "N", "A"))
    snv("chr1", t1[1], vid="tx_end")
    b = base("chr1", intron_mid + 200)
    rows.append(("chr1", intron_mid + 200, "ins_and_snv", b, f"{other(b)},{b}T"))
    long_ref = base("chr1", intron_mid - 150, 101)
    rows.append(("chr1", intron_mid - 150, "ref_too_long", long_ref, long_ref[0]))
    rows.append(("chr1", intron_mid + 100, "no_alt", base("chr1", intron_mid + 100), "."))
    b = base("chr1", acc1[0] + 2)
    rows.append(("chr1", acc1[0] + 2, "lowercase_ref", b.lower(), other(b)))
    snv("chr2", don2[0], vid="minus_donor")
    snv("chr2", acc2[1], vid="minus_acceptor")
    rows.append(("chr2", acc2[0] - 2, "minus_del_acceptor", base("chr2", acc2[0] - 2, 3), base("chr2", acc2[0] - 2)))
    b = base("chr2", don2[1] + 1)
    rows.append(("chr2", don2[1] + 1, "minus_ins_donor", b, b + "GA"))
    snv("chr3", t3[0] + 200, vid="near_contig_end")
    rows.append(("chr9", 1000, "unknown_contig", "A", "G"))
    rows.append(("chr5", 1500, "contig_not_in_fasta", "A", "G"))

    with open(HERE / "input.vcf", "w") as fh:
        fh.write("##fileformat=VCFv4.2\n")
        fh.write('##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">\n')
        for name, seq in contigs.items():
            fh.write(f"##contig=<ID={name[3:]},length={len(seq)}>\n")
        fh.write("##contig=<ID=5>\n##contig=<ID=9>\n")
        fh.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        for i, (chrom, pos, vid, ref, alt) in enumerate(rows):
            info = f"DP={10 + i}" if i % 3 else "."
            fh.write(f"{chrom[3:]}\t{pos}\t{vid}\t{ref}\t{alt}\t50\tPASS\t{info}\n")
    print(f"wrote {HERE}: {len(rows)} records, contigs {', '.join(f'{k}={len(v)}' for k, v in contigs.items())}")


def _dist_file(dist: str, rel: str) -> str:
    return str(importlib.metadata.distribution(dist).locate_file(rel))


def official() -> None:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tf_keras

    sys.modules["keras"] = tf_keras
    np.fromstring = lambda s, dtype=float: np.frombuffer(  # noqa: E731
        s.encode() if isinstance(s, str) else s, dtype=dtype
    )
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        shim = types.ModuleType("pkg_resources")
        shim.get_distribution = lambda name: types.SimpleNamespace(version=importlib.metadata.version(name))
        # resource_filename("spliceai.utils", "models/x.h5") -> the file inside the spliceai distribution
        shim.resource_filename = lambda mod, rel: _dist_file(mod.split(".")[0], f"{mod.split('.')[0]}/{rel}")
        sys.modules["pkg_resources"] = shim
    _load = tf_keras.models.load_model
    tf_keras.models.load_model = lambda path, **kw: _load(path, compile=False, **kw)
    import pysam
    import spliceai.utils as su

    su.load_model = tf_keras.models.load_model
    ann = su.Annotator(str(HERE / "ref.fa"), str(HERE / "annotation.txt"))
    results = []
    with pysam.VariantFile(str(HERE / "input.vcf")) as vcf:
        lines = [ln for ln in open(HERE / "input.vcf") if not ln.startswith("#")]
        for record, line in zip(vcf, lines):
            entry = {
                "line": line.rstrip("\n"),
                "chrom": record.chrom,
                "pos": record.pos,
                "ref": record.ref,
                "alts": list(record.alts) if record.alts else None,
            }
            for m in (0, 1):
                try:
                    scores = su.get_delta_scores(record, ann, 50, m)
                    entry[f"spliceai_m{m}"] = ",".join(scores) if scores else None
                except Exception as err:  # the official code crashes on some inputs; record how
                    entry[f"spliceai_m{m}"] = None
                    entry["official_error"] = f"{type(err).__name__}: {err}"
            results.append(entry)
            print(entry["line"].split("\t")[2], entry["spliceai_m0"], entry.get("official_error", ""))
    meta = {
        "tool": "spliceai " + importlib.metadata.version("spliceai"),
        "tensorflow": importlib.metadata.version("tensorflow"),
        "distance": 50,
        "records": results,
    }
    with open(HERE / "expected.json", "w") as fh:
        json.dump(meta, fh, indent=1)
        fh.write("\n")
    print("wrote", HERE / "expected.json")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("step", choices=["build", "official"])
    {"build": build, "official": official}[ap.parse_args().step]()
