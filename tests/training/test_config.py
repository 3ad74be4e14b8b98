import pytest

from meta_layer_cli.jobs.canonical import builtin_config
from meta_layer_cli.training import load_run_config


@pytest.mark.parametrize("name", ["default", "lightweight", "hyena"])
def test_shipped_configs_are_valid(name):
    cfg = load_run_config(builtin_config(name))
    assert cfg.base_model is None and cfg.dataset == "demo"  # the base model comes from the data or the flags
    if name == "hyena":
        assert cfg.model.sequence_encoder == "hyena" and cfg.hardware.device == "auto"


def test_overrides_are_typed():
    cfg = load_run_config(
        builtin_config("default"), ["training.epochs=3", "model.fusion=cross_attention", "split.seed=7"]
    )
    assert (cfg.training.epochs, cfg.model.fusion, cfg.split.seed) == (3, "cross_attention", 7)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.widht=3"], "model.widht: unknown key"),
        (["trainig.epochs=3"], "trainig: unknown key"),
        (["training.epochs=0"], "training.epochs: Input should be greater than 0"),
        (["model.sequence_encoder=lstm"], "model.sequence_encoder"),
        (["epochs"], "--set expects key=value"),
    ],
)
def test_bad_keys_and_values_name_the_key(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_run_config(builtin_config("default"), overrides)


def test_bad_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_run_config(path)
