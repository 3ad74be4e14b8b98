"""The fast networks against the official implementations' stored outputs
(scripts/make_reference_outputs.py produced them with SpliceAI's Keras
models and OpenSpliceAI's own PyTorch code) and against the unfused reference."""

import numpy as np
import pytest
import torch

from meta_layer_cli import load_base_model
from meta_layer_cli.base_models.network import reference_forward
from meta_layer_cli.base_models.pangolin import read_pangolin_network
from meta_layer_cli.io.sequence import codes_to_one_hot
from tests.conftest import shared_path

TOLERANCE = 1e-4


def _windows(reference_outputs, context: int) -> np.ndarray:
    x = codes_to_one_hot(reference_outputs["seq_codes"])  # [4 windows, 4, 3000 + 10000]
    return x[:, :, 5000 - context : 8000 + context]


def test_spliceai_matches_official_keras(spliceai, reference_outputs):
    out = spliceai.predict(_windows(reference_outputs, 5000)).transpose(0, 2, 1)
    assert out.shape == reference_outputs["spliceai"].shape
    assert np.abs(out - reference_outputs["spliceai"]).max() < TOLERANCE


@pytest.mark.parametrize("flank", ["10000nt", "80nt"])
def test_openspliceai_matches_official(flank, reference_outputs):
    model = load_base_model("openspliceai", shared_path("models", "openspliceai-mane", flank))
    assert len(model.networks) == 5 and model.context == int(flank[:-2]) // 2
    out = model.predict(_windows(reference_outputs, model.context)).transpose(0, 2, 1)
    assert np.abs(out - reference_outputs[f"openspliceai_{flank}"]).max() < TOLERANCE


def test_probabilities_are_softmaxed_once(spliceai, reference_outputs):
    out = spliceai.predict(_windows(reference_outputs, 5000)[:1])
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
    assert out[:, 0].min() < 0.5  # a second softmax would squash every channel towards 1/3


def test_pangolin_matches_unfused_reference(reference_outputs):
    """Pangolin's own package is not installable here; its architecture (../shared/README.md)
    is evaluated plainly, layer by layer, and the fast ensemble must agree with it."""
    directory = shared_path("models", "pangolin")
    model = load_base_model("pangolin", directory)
    assert model.channels == ("heart", "liver", "brain", "testis") and len(model.networks) == 12
    x = _windows(reference_outputs, 5000)[:1]  # one 3-kb window: the plain reference runs 12 networks unfused
    fast = model.predict(x)
    expected = np.zeros_like(fast)
    for tissue in range(4):
        for rep in (1, 2, 3):
            params = read_pangolin_network(directory / f"final.{rep}.{2 * tissue}.3.v2", tissue)
            expected[:, tissue] += reference_forward(params, torch.from_numpy(x))[:, 1].numpy() / 3
    assert np.abs(fast - expected).max() < TOLERANCE
    # real splice sites in the windows score high in every tissue
    assert fast.max() > 0.5


def test_reference_forward_matches_keras(reference_outputs):
    """The unfused reference (used as the official-blocking baseline) is itself faithful."""
    from meta_layer_cli.base_models.spliceai import default_weights, read_keras_network

    x = torch.from_numpy(_windows(reference_outputs, 5000)[:1])
    mean = sum(reference_forward(read_keras_network(p), x) for p in default_weights()) / 5
    assert np.abs(mean[0].numpy().T - reference_outputs["spliceai"][0]).max() < TOLERANCE
