import numpy as np
import pytest
import torch

from metasplice.io.sequence import codes_to_one_hot
from metasplice.models import MetaModelConfig, build_meta_model
from metasplice.models.apply import model_margin, recalibrate_arrays
from metasplice.models.checkpoint import load_model, save_model
from tests.conftest import TINY_MODEL

CHANNELS = ["neither", "acceptor", "donor"]


def _inputs(length=700, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 5, (batch, length), generator=g).numpy()
    tracks = torch.softmax(torch.randn(batch, 3, length, generator=g) * 4, dim=1)
    return torch.from_numpy(codes_to_one_hot(codes)), tracks


@pytest.mark.parametrize(
    "overrides",
    [{}, {"fusion": "cross_attention"}, {"score_encoder": "mlp"}, {"sequence_encoder": "hyena", "hyena_max_len": 2048}],
)
def test_untrained_v2_reproduces_the_base_model(overrides):
    model = build_meta_model(MetaModelConfig(channels=CHANNELS, **{**TINY_MODEL, **overrides})).eval()
    x, t = _inputs()
    probs = model.predict_proba(x, t)
    assert probs.shape == t.shape
    torch.testing.assert_close(probs, t, atol=1e-4, rtol=0)  # softmax(log p) == p: one softmax only


def test_v1_scores_the_centre_of_a_window():
    model = build_meta_model(MetaModelConfig(channels=CHANNELS, version="v1", **TINY_MODEL)).eval()
    x, t = _inputs(length=501)
    logits = model(x, t)
    assert logits.shape == (2, 3)
    torch.testing.assert_close(torch.softmax(logits, 1), t[..., 250], atol=1e-4, rtol=0)


def test_pangolin_channels_start_uninformed_and_stacking_uses_first_triple():
    tissues = ["heart", "liver", "brain", "testis"]
    model = build_meta_model(MetaModelConfig(channels=tissues, **TINY_MODEL)).eval()
    probs = model.predict_proba(*_inputs()[:1], torch.rand(2, 4, 700))
    torch.testing.assert_close(probs, torch.full_like(probs, 1 / 3))
    stacked = [f"spliceai:{c}" for c in CHANNELS] + [f"pangolin:{c}" for c in tissues]
    model = build_meta_model(MetaModelConfig(channels=stacked, **TINY_MODEL)).eval()
    x, t = _inputs()
    both = torch.cat([t, torch.rand(2, 4, 700)], dim=1)
    torch.testing.assert_close(model.predict_proba(x, both), t, atol=1e-4, rtol=0)


def _perturbed(model):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


@pytest.mark.parametrize("fusion", ["concat", "cross_attention"])
def test_block_inference_does_not_depend_on_block_size(fusion):
    torch.manual_seed(0)
    model = _perturbed(build_meta_model(MetaModelConfig(channels=CHANNELS, fusion=fusion, **TINY_MODEL)))
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 5, 3000).astype(np.uint8)
    tracks = rng.dirichlet([1, 1, 1], 3000).T.astype(np.float32)
    whole = recalibrate_arrays(model, codes, tracks, block=10_000)
    blocked = recalibrate_arrays(model, codes, tracks, block=333)
    np.testing.assert_allclose(blocked, whole, atol=1e-5)
    assert model_margin(model) >= model.receptive_field > 0


def test_checkpoint_round_trip_is_safetensors_and_json(tmp_path):
    torch.manual_seed(1)
    model = _perturbed(build_meta_model(MetaModelConfig(channels=CHANNELS, **TINY_MODEL)))
    save_model(tmp_path, model, {"note": "x"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    again, config = load_model(tmp_path)
    x, t = _inputs()
    torch.testing.assert_close(again.predict_proba(x, t), model.predict_proba(x, t))
    assert config["note"] == "x" and config["model"]["channels"] == CHANNELS


def test_bad_model_config_names_the_key():
    with pytest.raises(ValueError, match="fusion"):
        MetaModelConfig(channels=CHANNELS, fusion="sum")
    with pytest.raises(ValueError, match="widht"):
        MetaModelConfig(channels=CHANNELS, widht=3)
