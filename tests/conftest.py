"""Shared fixtures: real weights from ../shared, real genes from the demo dataset."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("METALAYER_SHARED", REPO.parent / "shared"))
FIXTURES = Path(__file__).parent / "fixtures"
OSAI = SHARED / "models" / "openspliceai-mane"
PANGOLIN = SHARED / "models" / "pangolin"


def shared_path(*parts: str) -> Path:
    """A file or directory under the shared data directory.

    Missing: the test is skipped on a developer's machine, but fails under CI
    (``CI=true``), where ../shared is part of the set-up and a missing weight
    file means the weights would silently go untested.
    """
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"{path} not found: set METALAYER_SHARED to the shared data directory"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"CI=true and shared data is missing: {message}", pytrace=False)
        pytest.skip(message)
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


class CodeCarryingPickle:
    """Unpickling this runs ``touch marker`` (what a malicious ``.pt`` would do with worse commands)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        import shlex

        return os.system, (f"touch {shlex.quote(self.marker)}",)


def write_code_carrying_pickle(path: Path, marker: Path, legacy: bool = False, state: dict | None = None) -> Path:
    """A state-dict-like ``.pt`` (torch's zip format, or its ``legacy`` pre-1.6 one) with a code-running entry."""
    import torch

    payload = {**(state or {"conv1.weight": torch.zeros(1)}), "extra": CodeCarryingPickle(marker)}
    torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
    return path
