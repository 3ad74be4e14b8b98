import json

import numpy as np
import pytest
import torch

from meta_layer_cli.io.sequence import codes_to_one_hot
from meta_layer_cli.models import MetaModelConfig, build_meta_model
from meta_layer_cli.models.apply import model_margin, recalibrate_arrays
from meta_layer_cli.models.checkpoint import load_model, save_model
from meta_layer_cli.runtime.device import default_sizes
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


@pytest.mark.parametrize("fusion", ["concat", "cross_attention"])
def test_inputs_padded_to_a_bucket_give_the_same_probabilities(fusion):
    """A device's inputs are rounded up to a multiple of ``bucket`` nt (few lengths, few first-time kernel choices):
    the outputs are the CPU's unpadded ones, for one block and for several."""
    torch.manual_seed(0)
    model = _perturbed(build_meta_model(MetaModelConfig(channels=CHANNELS, fusion=fusion, **TINY_MODEL)))
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 5, 5000).astype(np.uint8)
    tracks = rng.dirichlet([1, 1, 1], 5000).T.astype(np.float32)
    for block in (10_000, 1_500):
        plain = recalibrate_arrays(model, codes, tracks, block=block, bucket=0)
        padded = recalibrate_arrays(model, codes, tracks, block=block, bucket=4096)
        np.testing.assert_allclose(padded, plain, atol=1e-6, rtol=0)


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_inference_convolutions_run_without_tf32(version, monkeypatch):
    """The meta model's reported probabilities (``predict_proba``: inference, training's validation) are computed
    with cuDNN's TF32 off (PyTorch turns it on by default): with it an H200 moved probabilities by 1.3e-3 between
    two paddings of one gene, so a GPU's numbers were not the CPU's."""
    torch.manual_seed(0)
    config = {**TINY_MODEL, "version": version} if version == "v1" else TINY_MODEL
    model = build_meta_model(MetaModelConfig(channels=CHANNELS, **config))
    seen = []
    forward = model.forward

    def recording(x, t):
        seen.append(torch.backends.cudnn.allow_tf32)
        return forward(x, t)

    monkeypatch.setattr(model, "forward", recording)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 5, 600).astype(np.uint8)
    tracks = rng.dirichlet([1, 1, 1], 600).T.astype(np.float32)
    recalibrate_arrays(model, codes, tracks, block=250)
    assert seen and not any(seen)
    assert torch.backends.cudnn.allow_tf32 is True  # restored
    if version == "v2":  # as training's validation calls it
        model.predict_proba(*_inputs())
        assert seen[-1] is False


def test_windows_are_not_rounded_up_on_a_cpu(monkeypatch):
    """score-vcf's windows all share one length for SNVs: on a CPU rounding them up only adds work (22 -> 33 ms a
    window measured), so a window goes unrounded there while a whole gene takes the CPU's 1,024-nt rounding."""
    import meta_layer_cli.models.apply as apply

    torch.manual_seed(0)
    model = build_meta_model(MetaModelConfig(channels=CHANNELS, **TINY_MODEL))
    predictor = apply.CanonicalPredictor(model, None, None, {}, torch.device("cpu"))
    asked = []
    monkeypatch.setattr(apply, "recalibrate_arrays", lambda *a: asked.append(a[-1]))
    codes, tracks = np.zeros(300, np.uint8), np.full((3, 300), 1 / 3, np.float32)
    predictor(codes, tracks, whole_gene=False)
    predictor(codes, tracks)
    assert asked == [0, None]
    assert default_sizes(torch.device("cpu"))["meta_bucket"] == 1024


def test_block_inference_fits_hyena_inputs_to_their_max_len():
    """A block larger than the Hyena encoder takes (the GPU's 200 kb against hyena_max_len 32,768) is cut to
    fit: hyena_max_len less the context each side. (Hyena reaches its whole input, so unlike the CNN its output
    moves with the block size by ~1e-4: the context fed is capped at 4,096 nt.)"""
    torch.manual_seed(0)
    config = MetaModelConfig(channels=CHANNELS, **{**TINY_MODEL, "sequence_encoder": "hyena", "hyena_max_len": 9000})
    model = _perturbed(build_meta_model(config))
    assert model_margin(model) == 4096  # capped: Hyena's own reach is its whole input
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 5, 3000).astype(np.uint8)
    tracks = rng.dirichlet([1, 1, 1], 3000).T.astype(np.float32)
    asked = recalibrate_arrays(model, codes, tracks, block=200_000)
    fitted = recalibrate_arrays(model, codes, tracks, block=9000 - 2 * 4096)
    np.testing.assert_array_equal(asked, fitted)


def test_checkpoint_round_trip_is_safetensors_and_json(tmp_path):
    torch.manual_seed(1)
    model = _perturbed(build_meta_model(MetaModelConfig(channels=CHANNELS, **TINY_MODEL)))
    save_model(tmp_path, model, {"note": "x"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    again, config = load_model(tmp_path)
    x, t = _inputs()
    torch.testing.assert_close(again.predict_proba(x, t), model.predict_proba(x, t))
    assert config["note"] == "x" and config["model"]["channels"] == CHANNELS


def _saved(directory):
    torch.manual_seed(1)
    model = _perturbed(build_meta_model(MetaModelConfig(channels=CHANNELS, **TINY_MODEL)))
    save_model(directory, model)
    return model


def _one_line_error(directory, kind, pattern):
    with pytest.raises(kind, match=pattern) as err:
        load_model(directory)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_damaged_checkpoints_are_one_line_errors_naming_the_problem(tmp_path):
    from safetensors.torch import load_file, save_file

    model = _saved(tmp_path / "good")
    weights = load_file(str(tmp_path / "good" / "model.safetensors"))
    config = json.loads((tmp_path / "good" / "config.json").read_text())

    def variant(name, tensors=None, config_text=None):
        directory = tmp_path / name
        directory.mkdir()
        if tensors is not None:
            save_file(tensors, str(directory / "model.safetensors"))
        if config_text is not None:
            (directory / "config.json").write_text(config_text)
        return directory

    _one_line_error(variant("no_config", tensors=weights), FileNotFoundError, r"config\.json is missing")
    _one_line_error(
        variant("no_weights", config_text=json.dumps(config)), FileNotFoundError, r"model\.safetensors is missing"
    )
    key = "head.weight"
    dropped = {k: v for k, v in weights.items() if k != key}
    message = _one_line_error(
        variant("missing_key", dropped, json.dumps(config)),
        ValueError,
        rf"does not match .*config\.json: missing tensors: {key}$",
    )
    assert "unexpected" not in message and "shape" not in message
    bigger = {**weights, key: torch.zeros(weights[key].shape[0], weights[key].shape[1] + 1, *weights[key].shape[2:])}
    width = weights[key].shape[1]
    _one_line_error(
        variant("wrong_shape", bigger, json.dumps(config)),
        ValueError,
        rf"wrong shapes: {key} \(3, {width + 1}, 1\) \(config: \(3, {width}, 1\)\)$",
    )
    _one_line_error(
        variant("extra_key", {**weights, "stray": torch.zeros(2)}, json.dumps(config)),
        ValueError,
        "unexpected tensors: stray",
    )
    # the config describes another architecture than the weights (width 16 instead of 8)
    wider = {**config, "model": {**config["model"], "width": 16}}
    _one_line_error(variant("other_width", weights, json.dumps(wider)), ValueError, "wrong shapes: .* and \\d+ more")
    _one_line_error(variant("bad_json", weights, "{"), ValueError, "config.json: not valid JSON")
    _one_line_error(variant("no_model", weights, json.dumps({"note": 1})), ValueError, "no 'model' entry")
    bad_key = {**config, "model": {**config["model"], "widht": 8}}
    _one_line_error(
        variant("bad_key", weights, json.dumps(bad_key)), ValueError, r"invalid model \(model.widht: unknown key\)"
    )
    garbage = variant("garbage", config_text=json.dumps(config))
    (garbage / "model.safetensors").write_bytes(b"not safetensors")
    _one_line_error(garbage, ValueError, "model.safetensors: not a readable safetensors file")
    # and the intact one still loads
    again, _ = load_model(tmp_path / "good")
    x, t = _inputs()
    torch.testing.assert_close(again.predict_proba(x, t), model.predict_proba(x, t))


def test_bad_model_config_names_the_key():
    with pytest.raises(ValueError, match="fusion"):
        MetaModelConfig(channels=CHANNELS, fusion="sum")
    with pytest.raises(ValueError, match="widht"):
        MetaModelConfig(channels=CHANNELS, widht=3)


def test_v1_over_a_gene_scores_candidates_from_their_windows():
    torch.manual_seed(2)
    model = _perturbed(build_meta_model(MetaModelConfig(channels=CHANNELS, version="v1", **TINY_MODEL)))
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 5, 2000).astype(np.uint8)
    tracks = np.zeros((3, 2000), np.float32)
    tracks[0] = 1
    tracks[:, [500, 1500]] = [[0.2, 0.5], [0.7, 0.1], [0.1, 0.4]]
    out = recalibrate_arrays(model, codes, tracks)
    x = torch.from_numpy(codes_to_one_hot(codes[250:751])[None])
    expected = model.predict_proba(x, torch.from_numpy(tracks[None, :, 250:751]))[0].numpy()
    np.testing.assert_allclose(out[500], expected, atol=1e-6)
    assert out.shape == (2000, 3) and np.allclose(out.sum(1), 1, atol=1e-5)


def test_hyenadna_checkpoint_layout_loads(tmp_path):
    """A checkpoint written in HyenaDNA's published key layout (``hyena.backbone.*``) loads into the
    encoder; a checkpoint of another width is refused with a clear message."""
    from safetensors.torch import save_file

    from meta_layer_cli.models.encoders import HyenaEncoder, load_hyenadna

    torch.manual_seed(3)
    source = HyenaEncoder(width=16, depth=2, max_len=512)
    published = _published_hyenadna(source, "hyena.")
    published["hyena.head.weight"] = torch.zeros(3)  # heads of the published LM are ignored
    save_file(published, str(tmp_path / "model.safetensors"))
    target = load_hyenadna(HyenaEncoder(width=16, depth=2, max_len=512), str(tmp_path))
    x, _ = _inputs(length=300)
    torch.testing.assert_close(target(x), source(x))
    with pytest.raises(ValueError, match="does not fit this encoder"):
        load_hyenadna(HyenaEncoder(width=8, depth=2, max_len=512), str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no model.safetensors or pytorch_model.bin"):
        load_hyenadna(HyenaEncoder(width=16), str(tmp_path / "missing"))


def _published_hyenadna(source, prefix: str) -> dict:
    """``source``'s weights under HyenaDNA's published key names."""
    published = {}
    for key, value in source.state_dict().items():
        key = key.replace("embeddings.", "embeddings.word_embeddings.", 1) if key.startswith("embeddings.") else key
        published[f"{prefix}backbone.{key}"] = value.clone()
    return published


def test_hyenadna_pytorch_model_bin_loads_and_code_in_it_is_refused(tmp_path):
    """``pytorch_model.bin`` (HyenaDNA's original release format, a pickle): a real state dict loads and
    gives the source encoder's outputs; one carrying code is refused in one line without running it."""
    from meta_layer_cli.models.encoders import HyenaEncoder, load_hyenadna
    from tests.conftest import write_code_carrying_pickle

    torch.manual_seed(4)
    source = HyenaEncoder(width=16, depth=2, max_len=512)
    (tmp_path / "good").mkdir()
    torch.save(_published_hyenadna(source, ""), tmp_path / "good" / "pytorch_model.bin")
    target = load_hyenadna(HyenaEncoder(width=16, depth=2, max_len=512), str(tmp_path / "good"))
    x, _ = _inputs(length=300)
    torch.testing.assert_close(target(x), source(x))

    for legacy in (False, True):
        marker = tmp_path / f"marker{legacy}"
        evil = tmp_path / f"evil{legacy}"
        evil.mkdir()
        write_code_carrying_pickle(evil / "pytorch_model.bin", marker, legacy, _published_hyenadna(source, ""))
        with pytest.raises(ValueError, match="^cannot load HyenaDNA weights .*pytorch_model.bin") as err:
            load_hyenadna(HyenaEncoder(width=16, depth=2, max_len=512), str(evil))
        assert "\n" not in str(err.value) and not marker.exists()
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="^cannot load HyenaDNA weights .*model.safetensors"):
        load_hyenadna(HyenaEncoder(width=16, depth=2, max_len=512), str(tmp_path / "garbage"))


def test_a_seed_fixes_the_initialisation_whatever_was_drawn_before():
    """train-canonical builds its model after loading base models (whose layers draw from torch's global
    generator): with a seed, the initial weights are the seed's alone, and the global state is untouched."""
    config = MetaModelConfig(channels=CHANNELS, **TINY_MODEL)
    first = build_meta_model(config, seed=3).state_dict()
    torch.rand(12345)  # what loading a base model might draw
    state = torch.random.get_rng_state()
    again = build_meta_model(config, seed=3).state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(first[k], again[k]) for k in first)
    other = build_meta_model(config, seed=4).state_dict()
    assert any(not torch.equal(first[k], other[k]) for k in first if first[k].is_floating_point())
