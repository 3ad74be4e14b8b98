"""score_vcf --checkpoint: the MetaLayer= field (meta-layer deltas and variant-model outputs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meta_layer_cli.base_models.record import BaseModelRecord
from meta_layer_cli.inference.spliceai_format import spliceai_entry, spliceai_normalize
from meta_layer_cli.io.annotation import read_variant_annotation
from meta_layer_cli.io.fasta import Fasta
from meta_layer_cli.io.sequence import reverse_complement, sequence_to_codes
from meta_layer_cli.io.vcf import read_vcf
from meta_layer_cli.models.apply import recalibrate_arrays
from meta_layer_cli.models.checkpoint import load_model, save_model
from meta_layer_cli.models.meta import build_meta_model
from tests.conftest import TINY_MODEL
from tests.inference.vcf_fixtures import BY_ID, info_of, score_fixture_vcf, write_input


def meta_checkpoint(path, base, perturb: bool = False, stacked_with=None):
    """An untrained V2 meta model (= the base model) or one with a random correction, saved as `train` saves;
    ``stacked_with``: a second base model whose tracks the meta model also read (channels concatenated)."""
    torch.manual_seed(0)
    bases = [base] + ([stacked_with] if stacked_with is not None else [])
    channels = [c for b in bases for c in b.channels]
    model = build_meta_model({**TINY_MODEL, "channels": channels})
    if perturb:
        with torch.no_grad():
            model.head.weight.normal_(0, 0.5)
    entries = [BaseModelRecord.of(b).to_dict() for b in bases]
    return save_model(path, model, {"run": {"base_models": entries, "channels": channels}})


def entries(path, key):
    _, records = read_vcf(path)
    out = []
    for r in records:
        info = info_of(r.columns)
        out.append(info[key].split(",") if key in info else None)
    return out


@pytest.mark.parametrize("mask", [False, True])
def test_untrained_meta_layer_reproduces_the_base_deltas(osai80, genome, tmp_path, mask):
    """A V2 model starts as its base model, so MetaLayer DS/DP must repeat SpliceAI= (both strands, indels)."""
    body = write_input(tmp_path / "in.vcf", None)
    ck = meta_checkpoint(tmp_path / "meta", osai80)
    out = tmp_path / "out.vcf"
    score_fixture_vcf(tmp_path, genome, out, base_model=osai80, mask=mask, checkpoints=[ck])
    header, records = read_vcf(out)
    assert len(records) == len(body)
    assert any(m.startswith("##INFO=<ID=MetaLayer,") for m in header.meta)
    base, meta = entries(out, "SpliceAI"), entries(out, "MetaLayer")
    compared = 0
    for b, m in zip(base, meta):
        assert (b is None) == (m is None), "a MetaLayer entry exactly where there is a SpliceAI entry"
        if b is None:
            continue
        assert len(b) == len(m)
        for eb, em in zip(b, m):
            fb, fm = eb.split("|"), em.split("|")
            assert len(fm) == 13 and fm[:2] == fb[:2] and fm[10:] == [".", ".", "."]
            if fb[2] == ".":
                assert fm[2:10] == ["."] * 8
                continue
            ds_b, ds_m = np.array(fb[2:6], float), np.array(fm[2:6], float)
            assert np.abs(ds_b - ds_m).max() <= 0.0100001
            strong = ds_b >= 0.05  # the position of a clear maximum is the same
            assert [p for p, s in zip(fb[6:], strong) if s] == [p for p, s in zip(fm[6:], strong) if s]
            compared += 1
    assert compared >= 15


def whole_gene_entry(base, meta, genome, vid: str, symbol: str) -> str:
    """The MetaLayer DS/DP of an SNV in a gene computed another way: the meta model over the whole gene (N
    outside it, on the gene's strand) for REF and for ALT, the +-D rows around POS cut out, SpliceAI's
    definition."""
    pos, alt = int(BY_ID[vid]["line"].split("\t")[1]), BY_ID[vid]["line"].split("\t")[4]
    d, c = 50, base.context
    gene = next(g for g in read_variant_annotation(genome / "annotation.txt") if g.name == symbol)
    fasta = Fasta(genome / "ref.fa")
    ref_seq = spliceai_normalize(fasta.fetch(gene.chrom, gene.tx_start - 1, gene.tx_end))
    fasta.close()
    v = pos - gene.tx_start  # POS in the gene's sequence
    probs = []
    for seq in (ref_seq, ref_seq[:v] + alt + ref_seq[v + 1 :]):
        read = reverse_complement(seq) if gene.strand == "-" else seq
        codes = sequence_to_codes("N" * c + read + "N" * c)
        p = recalibrate_arrays(meta, codes[c:-c], base.predict_codes(codes).T)
        p = p[::-1] if gene.strand == "-" else p
        probs.append(p[v - d : v + d + 1].astype(np.float64))
    nearest = (gene.boundaries - pos)[np.argmin(np.abs(gene.boundaries - pos))]
    return spliceai_entry(alt, gene.name, probs[0], probs[1], 1, nearest, False)


def test_a_trained_correction_changes_meta_deltas_only(osai80, genome, tmp_path):
    """A meta model with a correction: SpliceAI= unchanged, MetaLayer= moved, and its DS/DP equal the meta
    model's own deltas computed over the whole gene (plus and minus strand)."""
    write_input(tmp_path / "in.vcf", None)
    outs, checkpoints = {}, {}
    for name, perturb in (("plain", False), ("meta", True)):
        checkpoints[name] = meta_checkpoint(tmp_path / name, osai80, perturb=perturb)
        outs[name] = tmp_path / f"{name}.vcf"
        score_fixture_vcf(tmp_path, genome, outs[name], base_model=osai80, checkpoints=[checkpoints[name]])
    assert entries(outs["plain"], "SpliceAI") == entries(outs["meta"], "SpliceAI")
    plain, meta = entries(outs["plain"], "MetaLayer"), entries(outs["meta"], "MetaLayer")
    assert plain != meta

    def fixed(entries_of_record):  # allele, symbol and the '.' model fields
        return None if entries_of_record is None else [e.split("|")[:2] + e.split("|")[10:] for e in entries_of_record]

    assert [fixed(a) for a in plain] == [fixed(b) for b in meta], "only the deltas move"
    model, _ = load_model(checkpoints["meta"])
    _, records = read_vcf(outs["meta"])
    by_id = {r.columns[2]: info_of(r.columns) for r in records}
    # plus strand (PSMB4) and minus strand (PSMB4-AS, C1orf35); a strong delta away from POS shows the side
    for vid, symbol in (
        ("donor_plus1", "PSMB4"),
        ("two_genes", "PSMB4"),
        ("exonic", "PSMB4-AS"),
        ("minus_acceptor", "C1orf35"),
    ):
        got = next(e for e in by_id[vid]["MetaLayer"].split(",") if e.split("|")[1] == symbol).split("|")
        want = whole_gene_entry(osai80, model, genome, vid, symbol).split("|")
        assert got[:2] == want[:2]
        np.testing.assert_allclose(np.array(got[2:6], float), np.array(want[2:6], float), atol=0.0100001)
        strong = np.array(want[2:6], float) >= 0.05
        assert strong.any(), f"{vid}: the correction should move something here"
        assert [p for p, s in zip(got[6:10], strong) if s] == [p for p, s in zip(want[6:10], strong) if s], vid


def test_a_meta_layer_on_stacked_base_models_is_refused(osai80, genome, tmp_path):
    """score_vcf runs one base model: a meta layer trained on the tracks of several cannot be applied."""
    from tests.inference.stub_models import StubModel

    write_input(tmp_path / "in.vcf", ["donor_plus1"])
    ck = meta_checkpoint(tmp_path / "meta", osai80, stacked_with=StubModel())
    with pytest.raises(ValueError, match="trained on 2 stacked base models; score-vcf runs one base model"):
        score_fixture_vcf(tmp_path, genome, base_model=osai80, checkpoints=[ck])
    assert not (tmp_path / "out.vcf").exists()


def test_checkpoint_of_another_base_model_is_refused(osai80, spliceai, genome, tmp_path):
    write_input(tmp_path / "in.vcf", ["donor_plus1"])
    ck = meta_checkpoint(tmp_path / "meta", spliceai)
    with pytest.raises(ValueError, match="made with base model spliceai .*not openspliceai"):
        score_fixture_vcf(tmp_path, genome, base_model=osai80, checkpoints=[ck])
    assert not (tmp_path / "out.vcf").exists()


def test_exon_rows_read_the_gene_strand(genome):
    """The variant-table row built for a VCF variant is the exon +- flank on the gene's strand, variant placed right."""
    from meta_layer_cli.inference.vcf_models import EXON_FLANK, _exon_row
    from meta_layer_cli.inference.vcf_scorer import ScoringTask, VariantScorer
    from meta_layer_cli.io.annotation import GeneIndex
    from tests.inference.stub_models import StubModel

    genes = GeneIndex(read_variant_annotation(genome / "annotation.txt"))
    fasta = Fasta(genome / "ref.fa")
    scorer = VariantScorer(StubModel(("neither", "acceptor", "donor"), context=7), fasta, genes, 50, False, None, None)
    # minus strand C1orf35 (chr2), exon 6609-6743 (1-based), SNV C>T at 6609
    gene = [i for i, g in enumerate(genes.genes) if g.name == "C1orf35"][0]
    row = _exon_row(scorer, ScoringTask(0, 0, gene, "2", 6609, 1, "T"), "x")
    genomic = fasta.fetch("2", 6609 - 1 - EXON_FLANK, 6743 + EXON_FLANK)
    assert row["ref_seq"] == reverse_complement(genomic)
    exon = row["ref_seq"][row["exon_start"] : row["exon_end"]]
    assert exon == reverse_complement(fasta.fetch("2", 6608, 6743))
    diff = [i for i, (a, b) in enumerate(zip(row["ref_seq"], row["alt_seq"])) if a != b]
    assert diff == [row["exon_end"] - 1] and row["alt_seq"][diff[0]] == "A"  # the exon's last nt, complemented
    assert row["upstream"] == reverse_complement(fasta.fetch("2", 6743 + EXON_FLANK, 6743 + EXON_FLANK + 7))
    fasta.close()


def test_a_calibrated_checkpoint_moves_the_meta_deltas(osai80, genome, tmp_path):
    """score-vcf applies the checkpoint's post-hoc calibration (as predict and evaluate do): same SpliceAI=,
    other MetaLayer= deltas; an identity calibration changes nothing."""
    from meta_layer_cli.models.calibration import TemperatureScaler
    from meta_layer_cli.models.checkpoint import update_checkpoint_config
    from meta_layer_cli.models.site_calibration import SiteCalibration

    write_input(tmp_path / "in.vcf", None)
    plain = meta_checkpoint(tmp_path / "plain", osai80, perturb=True)
    outs = {}
    for name, temperature in (("plain", None), ("identity", 1.0), ("hot", 3.0)):
        checkpoint = plain if temperature is None else meta_checkpoint(tmp_path / name, osai80, perturb=True)
        if temperature is not None:
            calibration = SiteCalibration(
                "temperature", {1: TemperatureScaler(temperature), 2: TemperatureScaler(temperature)}
            )
            update_checkpoint_config(checkpoint, {"calibration": calibration.to_dict()})
        outs[name] = tmp_path / f"{name}.vcf"
        score_fixture_vcf(tmp_path, genome, outs[name], base_model=osai80, checkpoints=[checkpoint])
    assert entries(outs["plain"], "SpliceAI") == entries(outs["hot"], "SpliceAI")
    assert entries(outs["plain"], "MetaLayer") == entries(outs["identity"], "MetaLayer")
    assert entries(outs["plain"], "MetaLayer") != entries(outs["hot"], "MetaLayer")


def test_the_meta_deltas_reuse_the_base_models_pass(genome, tmp_path):
    """`score-vcf --checkpoint` ran the base model a second time, on wider windows, for MetaLayer= (about 3x the
    time); now the scorer's one pass covers the rows the meta model reads: as many forward passes as without."""
    from tests.inference.stub_models import StubModel

    write_input(tmp_path / "in.vcf", None)
    calls = {}
    for name in ("plain", "meta"):
        stub = StubModel(context=7)
        checkpoints = [meta_checkpoint(tmp_path / "ck", stub, perturb=True)] if name == "meta" else None
        score_fixture_vcf(tmp_path, genome, tmp_path / f"{name}.vcf", base_model=stub, checkpoints=checkpoints)
        calls[name] = stub.calls
    assert calls["meta"] == calls["plain"] > 0
    assert entries(tmp_path / "plain.vcf", "SpliceAI") == entries(tmp_path / "meta.vcf", "SpliceAI")


def test_score_vcf_takes_the_base_model_from_the_checkpoint(osai80, genome, tmp_path, monkeypatch):
    """No -b needed with --checkpoint (it failed without one); the weights are found by the record's lookup,
    here through --models-dir, and the output equals naming the base model."""
    import json

    from typer.testing import CliRunner

    from meta_layer_cli.commands.main import app
    from tests.conftest import shared_path

    write_input(tmp_path / "in.vcf", None)
    ck = meta_checkpoint(tmp_path / "meta", osai80, perturb=True)
    config = json.loads((ck / "config.json").read_text())
    config["run"]["base_models"][0]["weights"] = None  # as on another machine: only the lookup can find them
    (ck / "config.json").write_text(json.dumps(config))
    monkeypatch.delenv("METALAYER_MODELS", raising=False)
    common = [
        "score-vcf",
        "-I",
        str(tmp_path / "in.vcf"),
        "-R",
        str(genome / "ref.fa"),
        "-A",
        str(genome / "annotation.txt"),
        "--checkpoint",
        str(ck),
        "--no-progress",
        "--device",
        "cpu",
    ]
    runner = CliRunner()
    lost = runner.invoke(app, [*common, "-O", str(tmp_path / "lost.vcf")])
    assert lost.exit_code == 3 and "openspliceai weights not found" in lost.output
    found = runner.invoke(app, [*common, "-O", str(tmp_path / "a.vcf"), "--models-dir", str(shared_path("models"))])
    assert found.exit_code == 0, found.output
    named = runner.invoke(
        app,
        [
            *common,
            "-O",
            str(tmp_path / "b.vcf"),
            "-b",
            "openspliceai",
            "--weights",
            str(shared_path("models", "openspliceai-mane", "80nt")),
        ],
    )
    assert named.exit_code == 0, named.output
    for key in ("SpliceAI", "MetaLayer"):
        assert entries(tmp_path / "a.vcf", key) == entries(tmp_path / "b.vcf", key)
    assert any(e for e in entries(tmp_path / "a.vcf", "MetaLayer"))
