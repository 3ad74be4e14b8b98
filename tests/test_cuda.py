"""``--device cuda``: every layer gives the CPU's answer on a GPU. Skipped where torch sees no GPU.

CI has no GPU; these run on a GPU machine (``python -m pytest tests/test_cuda.py``) and are
the check that the CUDA paths work at all: base-model scores, ``score_vcf`` against the
official tool's records, ``score_sequences``, meta-layer training (bf16 autocast) with both
sequence encoders and its recalibration, variant-model training and scoring.
"""

from __future__ import annotations

import os

import numpy as np
import polars as pl
import pytest
import torch

from meta_layer_cli import load_base_model, score_sequences
from meta_layer_cli.io.demo import exons_from_labels, load_demo_gene
from tests.conftest import SMALL_DEMO_GENES, TINY_MODEL, TINY_TRAINING, shared_path
from tests.inference.test_vcf import check_against_official
from tests.inference.vcf_fixtures import score_fixture_vcf, write_input
from tests.variant_helpers import TINY_ARCHITECTURE, osai80_weights, small_vexseq
from tests.variant_helpers import TINY_TRAINING as TINY_VARIANT_TRAINING

# METALAYER_GPU_TEST_DEVICE=cpu runs the same checks CPU against CPU: a dry run of the tests themselves
DEVICE = os.environ.get("METALAYER_GPU_TEST_DEVICE", "cuda")
pytestmark = pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="no CUDA device")


def test_spliceai_scores_on_cuda_equal_the_cpu(spliceai):
    gpu = load_base_model("spliceai", device=DEVICE)
    for gene_id in ("148", "4"):
        gene = load_demo_gene(gene_id)
        assert np.abs(gpu.predict_gene(gene) - spliceai.predict_gene(gene)).max() < 1e-5


@pytest.mark.parametrize("mask", [0, 1])
def test_score_vcf_on_cuda_matches_the_official_tool_on_every_record(genome, tmp_path, mask):
    body = write_input(tmp_path / "in.vcf", None)
    out = tmp_path / "out.vcf"
    score_fixture_vcf(tmp_path, genome, out, base_model="spliceai", device=DEVICE, mask=bool(mask))
    check_against_official(out, body, mask)


def test_score_sequences_on_cuda_equal_the_cpu():
    gene = load_demo_gene("148")
    rows = []
    for i, (start, end) in enumerate(exons_from_labels(gene.labels)[1:-1][:6]):
        ref = gene.sequence[start - 100 : end + 100]
        pos = 100 - 2 if i % 2 else 100 + (end - start) + 1  # acceptor AG / donor GT
        alt = ref[:pos] + ("T" if ref[pos] != "T" else "C") + ref[pos + 1 :]
        rows.append({"id": f"e{i}", "ref_seq": ref, "alt_seq": alt, "exon_start": 100, "exon_end": 100 + end - start})
    table = pl.DataFrame(rows)
    cpu = score_sequences(table, "spliceai", device="cpu")
    gpu = score_sequences(table, "spliceai", device=DEVICE)
    for column in ("ref_acceptor", "alt_acceptor", "delta_donor", "delta_gain", "delta_loss"):
        assert np.abs(cpu[column].to_numpy() - gpu[column].to_numpy()).max() < 1e-5, column
    assert gpu["max_abs_delta"].max() > 0.1  # the variants hit splice sites: the check is not on zeros


@pytest.mark.parametrize("encoder", ["cnn", "hyena"])
def test_meta_layer_trains_on_cuda_and_recalibrates_like_the_cpu(tmp_path, encoder):
    from meta_layer_cli.artifacts import load_gene_arrays
    from meta_layer_cli.jobs.canonical import checkpoint_data, run_canonical_training
    from meta_layer_cli.models.apply import recalibrate_arrays
    from meta_layer_cli.models.checkpoint import load_model

    overrides = {f"model.{k}": v for k, v in TINY_MODEL.items()} | {
        f"training.{k}": v for k, v in TINY_TRAINING.items()
    }
    result = run_canonical_training(
        base_model="openspliceai",
        base_weights=str(shared_path("models", "openspliceai-mane", "80nt")),
        epochs=2,
        sequence_encoder=encoder,
        output_dir=tmp_path / "run",
        train_genes=SMALL_DEMO_GENES[:8],
        test_genes=SMALL_DEMO_GENES[8:],
        tracks_cache=str(tmp_path / "cache"),
        device=DEVICE,
        overrides=overrides,
    )
    assert all(np.isfinite(v) for v in result.canonical_test_metrics.values())
    gpu_model, config = load_model(result.checkpoint_path, DEVICE)
    cpu_model, _ = load_model(result.checkpoint_path, "cpu")
    dirs, _ = checkpoint_data(
        result.checkpoint_path, None, DEVICE, cache=tmp_path / "cache", models_dir=shared_path("models")
    )
    _, test = load_gene_arrays(dirs, result.split["test"])
    gene = test[0]
    on_gpu = recalibrate_arrays(gpu_model, gene.codes, gene.tracks, device=DEVICE)
    on_cpu = recalibrate_arrays(cpu_model, gene.codes, gene.tracks, device="cpu")
    assert on_gpu.shape == on_cpu.shape == (len(gene.codes), 3)
    assert np.abs(on_gpu - on_cpu).max() < 1e-5  # float32 on both (TF32 off), whatever the padding


def test_variant_model_trains_and_scores_on_cuda(tmp_path):
    from meta_layer_cli.inference.variant_models import score_sequences_with_models
    from meta_layer_cli.jobs.variants import run_validated_delta_training

    table = small_vexseq(40)
    result = run_validated_delta_training(
        base_model="openspliceai",
        weights=osai80_weights(),
        train=[table],
        model="validated",
        output_dir=tmp_path / "run",
        folds=2,
        device=DEVICE,
        cache=str(tmp_path / "cache"),
        **TINY_ARCHITECTURE,
        **TINY_VARIANT_TRAINING,
    )
    assert np.isfinite(result.cv_metrics["vexseq"]["pearson"])
    rows = table.head(8).select("id", "ref_seq", "alt_seq", "exon_start", "exon_end")
    weights = osai80_weights()  # checkpoints record the weights' checksum, not this machine's path
    on_gpu = score_sequences_with_models(rows, [result.checkpoint_path], weights=weights, device=DEVICE)
    on_cpu = score_sequences_with_models(rows, [result.checkpoint_path], weights=weights, device="cpu")
    diff = np.abs(on_gpu["predicted_delta_psi"].to_numpy() - on_cpu["predicted_delta_psi"].to_numpy())
    assert diff.max() < 1e-3  # percent delta PSI; float32 on both (TF32 off)
