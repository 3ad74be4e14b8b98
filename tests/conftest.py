"""Shared fixtures: real weights from ../shared, real genes from the demo dataset."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("METALAYER_SHARED", REPO.parent / "shared"))
FIXTURES = Path(__file__).parent / "fixtures"


def _use_this_checkouts_configs() -> None:
    """Tests check this checkout. An editable install made from another checkout of the repository maps
    ``meta_layer_cli.configs`` to that checkout's ``configs/``; map it to ours before anything imports it."""
    import importlib.util
    import sys

    spec = importlib.util.find_spec("meta_layer_cli.configs")
    ours = REPO / "configs"
    if spec is None or Path(next(iter(spec.submodule_search_locations))).resolve() != ours.resolve():
        spec = importlib.util.spec_from_file_location(
            "meta_layer_cli.configs", ours / "__init__.py", submodule_search_locations=[str(ours)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["meta_layer_cli.configs"] = module
        spec.loader.exec_module(module)


_use_this_checkouts_configs()
OSAI = SHARED / "models" / "openspliceai-mane"
PANGOLIN = SHARED / "models" / "pangolin"


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found: set METALAYER_SHARED to the shared data directory")
    return path


@pytest.fixture(scope="session")
def osai80():
    from meta_layer_cli import load_base_model

    return load_base_model("openspliceai", shared_path("models", "openspliceai-mane", "80nt"))


@pytest.fixture(scope="session")
def spliceai():
    from meta_layer_cli import load_base_model

    return load_base_model("spliceai")


@pytest.fixture(scope="session")
def vexseq_dataset(osai80):
    """40 real Vex-seq rows with OpenSpliceAI-80nt tracks (cheap: 40 nt of context each side)."""
    from meta_layer_cli.features.variants import build_variant_dataset
    from tests.variant_helpers import small_vexseq

    return build_variant_dataset(small_vexseq(40), osai80)


@pytest.fixture()
def genome(tmp_path) -> Path:
    """ref.fa + annotation.txt of the SpliceAI VCF reference fixture in a writable directory (the FASTA index
    is created beside it)."""
    from tests.inference.vcf_fixtures import copy_genome

    return copy_genome(tmp_path)


@pytest.fixture(scope="session")
def reference_outputs():
    return np.load(FIXTURES / "reference_outputs.npz")


def exons_from_labels(labels: np.ndarray) -> list[tuple[int, int]]:
    """Transcript-orientation exons [start, end) implied by acceptor (1) / donor (2) labels."""
    acceptors = np.flatnonzero(labels == 1)
    donors = np.flatnonzero(labels == 2)
    starts = np.r_[0, acceptors]
    ends = np.r_[donors + 1, len(labels)]
    return list(zip(starts.tolist(), ends.tolist()))


SMALL_DEMO_GENES = ["148", "150", "239", "245", "480", "760", "4", "5", "6", "8"]


@pytest.fixture(scope="session")
def osai80_tracks(tmp_path_factory, osai80):
    """OpenSpliceAI-80nt tracks of ten short real demo genes (a few seconds to predict)."""
    from meta_layer_cli.artifacts import demo_genes, predict_tracks

    directory = tmp_path_factory.mktemp("osai80_tracks")
    predict_tracks(osai80, demo_genes(SMALL_DEMO_GENES), directory, progress=False)
    return directory


@pytest.fixture(scope="session")
def osai80_arrays(osai80_tracks):
    from meta_layer_cli.artifacts import load_gene_arrays

    return load_gene_arrays(osai80_tracks, SMALL_DEMO_GENES)


TINY_MODEL = {
    "width": 8,
    "kernel": 5,
    "sequence_dilations": [1, 2],
    "score_dilations": [1, 4],
    "trunk_dilations": [1],
    "dropout": 0.0,
}
TINY_TRAINING = {
    "epochs": 2,
    "chunk": 500,
    "chunks_per_epoch": 16,
    "validation_chunks": 8,
    "batch_size": 4,
    "normalizer_chunks": 8,
    "warmup_steps": 2,
    "progress": False,
}
