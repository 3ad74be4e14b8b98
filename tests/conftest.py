"""Shared fixtures: real weights from ../shared, real genes from the demo dataset."""

from __future__ import annotations

import json
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


@pytest.fixture(autouse=True, scope="session")
def _private_caches(tmp_path_factory):
    """Caches (base-model tracks, parsed annotations) in a temporary folder, never the user's home."""
    mp = pytest.MonkeyPatch()
    mp.setenv("METALAYER_CACHE", str(tmp_path_factory.mktemp("metalayer_cache")))
    yield
    mp.undo()


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


SMALL_DEMO_GENES = ["148", "150", "239", "245", "480", "760", "4", "5", "6", "8"]


@pytest.fixture(scope="session")
def osai80_tracks(tmp_path_factory, osai80):
    """OpenSpliceAI-80nt tracks of ten short real demo genes (a few seconds to predict)."""
    from meta_layer_cli.artifacts import DemoSource, predict_tracks

    directory = tmp_path_factory.mktemp("osai80_tracks")
    predict_tracks(osai80, DemoSource(SMALL_DEMO_GENES), directory, progress=False)
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
    "normalizer_chunks": 8,
    "warmup_steps": 2,
    "progress": False,
}


def tiny_sets(**training) -> list[str]:
    """TINY_MODEL and TINY_TRAINING (``training`` replacing some of its values) as ``--set=key=value`` options."""
    return [f"--set=model.{k}={json.dumps(v)}" for k, v in TINY_MODEL.items()] + [
        f"--set=training.{k}={json.dumps(v)}" for k, v in {**TINY_TRAINING, **training}.items()
    ]


def tiny_train_set(**training) -> dict:
    """TINY_MODEL and TINY_TRAINING (``training`` replacing some of its values) as a pipeline config's
    ``train_set``: dotted keys -> values."""
    return {
        **{f"model.{k}": v for k, v in TINY_MODEL.items()},
        **{f"training.{k}": v for k, v in {**TINY_TRAINING, **training}.items()},
    }


def pipeline_config(small_genome: tuple[Path, Path], out: Path, **changes) -> dict:
    """A ``metalayer pipeline`` config of the small genome (``small_genome``: FASTA, GTF) into ``out``: OpenSpliceAI
    80 nt, chr3 held out, on the CPU, the tiny model; ``changes`` add keys or replace them whole."""
    fasta, gtf = small_genome
    return {
        "fasta": str(fasta),
        "annotation": str(gtf),
        "base_model": "openspliceai",
        "weights": str(shared_path("models", "openspliceai-mane", "80nt")),
        "out": str(out),
        "test_chromosomes": ["chr3"],
        "device": "cpu",
        "train_set": tiny_train_set(),
        **changes,
    }


def chr3_held_out_args(prepared: Path, out: Path, *model: str, sets: list[str]) -> list[str]:
    """``train-canonical`` of the small genome's ``prepared`` folder into ``out`` on the CPU, chr3 held out, with the
    base-model options ``model`` and then the ``--set`` options ``sets``."""
    where = ["--test-chroms", "chr3", "--out", str(out), "--device", "cpu"]
    return ["train-canonical", "--data", str(prepared), *model, *where, *sets]


# A small real-sequence genome (chr1 + chr3) built from demo genes with known coordinates; chr3 is held out.
GENOME_CHR1 = ["26", "60", "78", "85", "96", "142", "143", "148", "149", "150", "152", "153", "155", "157"]
GENOME_CHR3 = ["713", "716", "720", "724", "731", "735", "742"]


@pytest.fixture(scope="session")
def small_genome(tmp_path_factory):
    """(FASTA, GTF) of 21 real demo genes (both strands) laid on chr1 and chr3 with real intronic spacers."""
    from meta_layer_cli.io.demo import write_demo_genome

    return write_demo_genome(tmp_path_factory.mktemp("genome"), GENOME_CHR1 + GENOME_CHR3, spacer=3000)


@pytest.fixture(scope="session")
def small_genome_prepared(tmp_path_factory, small_genome):
    """The small genome prepared with OpenSpliceAI-80nt (what `metalayer prepare` writes)."""
    from meta_layer_cli.jobs.prepare import prepare

    out = tmp_path_factory.mktemp("prepared") / "osai80"
    fasta, gtf = small_genome
    prepare(
        out,
        "openspliceai",
        shared_path("models", "openspliceai-mane", "80nt"),
        fasta=fasta,
        gtf=gtf,
        device="cpu",
        progress=False,
    )
    return out


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
