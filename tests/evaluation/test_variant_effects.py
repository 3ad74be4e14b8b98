"""A canonical checkpoint judged on measured variant effects: meta(alt) - meta(ref) at the assayed exon's sites."""

import numpy as np
import torch

from meta_layer_cli.base_models.record import BaseModelRecord
from meta_layer_cli.evaluation.variant_effects import evaluate_canonical_on_variants
from meta_layer_cli.models.checkpoint import save_model
from meta_layer_cli.models.meta import build_meta_model
from tests.conftest import TINY_MODEL
from tests.variant_helpers import small_vexseq


def checkpoint(path, base, correction: bool):
    torch.manual_seed(0)
    model = build_meta_model({**TINY_MODEL, "channels": list(base.channels)})
    if correction:
        with torch.no_grad():
            model.head.weight.normal_(0, 0.5)
    run = {"base_models": [BaseModelRecord.of(base).to_dict()], "channels": list(base.channels)}
    return save_model(path, model, {"run": run})


def test_an_untrained_meta_layer_scores_exactly_like_its_base_model(osai80, tmp_path):
    """An untrained meta model is its base model: identical deltas, so identical metrics on the same rows."""
    table = small_vexseq(30)
    result = evaluate_canonical_on_variants(checkpoint(tmp_path / "a", osai80, False), [table], device="cpu")
    ((name, both),) = result.sets.items()
    assert name == "vexseq" and both["meta"]["n"] == both["base"]["n"] == 30
    for key in ("pearson", "spearman", "auroc"):
        assert np.isclose(both["meta"][key], both["base"][key], atol=1e-6, equal_nan=True)
    changed = evaluate_canonical_on_variants(checkpoint(tmp_path / "b", osai80, True), [table], device="cpu")
    assert not np.isclose(changed.sets["vexseq"]["meta"]["pearson"], both["base"]["pearson"], atol=1e-6)
    text = changed.summary()
    assert "meta(alt) - meta(ref)" in text and "base(alt) - base(ref)" in text and "vexseq" in text


def test_rows_without_an_exon_or_a_target_are_left_out(osai80, tmp_path):
    import polars as pl

    table = small_vexseq(12).with_columns(
        pl.when(pl.int_range(pl.len()) < 4).then(None).otherwise(pl.col("target")).alias("target")
    )
    result = evaluate_canonical_on_variants(checkpoint(tmp_path / "a", osai80, False), [table], device="cpu")
    assert result.sets["vexseq"]["meta"]["n"] == 8


def test_the_deltas_measured_are_those_of_the_calibrated_meta_layer_score_vcf_applies(osai80, tmp_path):
    """Evaluation measured the raw network while score-vcf applies the checkpoint's calibration: a calibrated
    checkpoint must now score other deltas than its uncalibrated model (a temperature of 3 flattens them)."""
    from meta_layer_cli.models.checkpoint import update_checkpoint_config

    table = small_vexseq(30)
    plain = evaluate_canonical_on_variants(checkpoint(tmp_path / "a", osai80, False), [table], device="cpu")
    calibrated = checkpoint(tmp_path / "b", osai80, False)
    maps = {site: {"name": "temperature", "temperature": 3.0} for site in ("acceptor", "donor")}
    update_checkpoint_config(calibrated, {"calibration": {"method": "temperature", "maps": maps}})
    flattened = evaluate_canonical_on_variants(calibrated, [table], device="cpu")
    assert flattened.sets["vexseq"]["base"] == plain.sets["vexseq"]["base"]
    assert not np.isclose(flattened.sets["vexseq"]["meta"]["pearson"], plain.sets["vexseq"]["meta"]["pearson"])


def test_evaluate_a_meta_layer_checkpoint_on_measured_variants_leaves_out_its_genes(osai80, tmp_path):
    """`evaluate --checkpoint C --variants T` took variant models only; a meta-layer checkpoint is now judged on
    measured effects too, without the rows whose exon lies in a gene it trained on (by hg19 locus)."""
    import polars as pl
    from typer.testing import CliRunner

    from meta_layer_cli.commands.main import app
    from meta_layer_cli.jobs.canonical import evaluate_checkpoint_on_variants
    from meta_layer_cli.models.checkpoint import update_checkpoint_config

    table = small_vexseq(30)
    first = table.row(0, named=True)
    gene = [
        first["chrom"].removeprefix("chr"),
        first["strand"],
        first["exon_start_genomic"] - 500,
        first["exon_end_genomic"],
    ]
    ck = checkpoint(tmp_path / "a", osai80, True)
    run = {"base_models": [BaseModelRecord.of(osai80).to_dict()], "channels": list(osai80.channels)}
    update_checkpoint_config(ck, {"run": {**run, "loci": {"genome_build": "GRCh37", "seen": [gene]}}})
    in_gene = table.filter(pl.col("group") == first["group"]).height
    held_out = evaluate_checkpoint_on_variants(ck, table, device="cpu")
    assert held_out.sets["vexseq"]["meta"]["n"] == 30 - in_gene >= 20
    everything = evaluate_checkpoint_on_variants(ck, table, device="cpu", allow_seen=True)
    assert everything.sets["vexseq"]["meta"]["n"] == 30
    table.write_parquet(tmp_path / "vexseq.parquet")
    result = CliRunner().invoke(
        app, ["evaluate", "--checkpoint", str(ck), "--variants", str(tmp_path / "vexseq.parquet"), "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    assert "meta(alt) - meta(ref)" in result.output and f"{30 - in_gene:>6}" in result.output
