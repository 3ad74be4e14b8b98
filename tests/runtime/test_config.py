"""Strict configs: every bad key or value is one usage error naming it, before anything is allocated."""

import pytest

from meta_layer_cli.jobs.canonical import builtin_config
from meta_layer_cli.runtime.config import PROFILES, load_yaml_config, parse_overrides, read_profile
from meta_layer_cli.runtime.errors import UsageError
from meta_layer_cli.training.config import RunConfig, load_run_config


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["training.epochs=true"], "training.epochs: Input should be a valid integer (got True)"),
        (["training.epochs='3'"], "training.epochs: Input should be a valid integer (got '3')"),
        (["training.lr=.inf"], "training.lr: Input should be a finite number"),
        (["training.lr=.nan"], "training.lr: Input should be a finite number"),
        (["training.lr=-1"], "training.lr: Input should be greater than 0"),
        (["model.width=100000"], "model.width: Input should be less than or equal to 4096"),
        (["model.sequence_dilations=[1,2,0]"], "dilations must be between 1 and 4096"),
        (["model.sequence_dilations=[]"], "model.sequence_dilations"),
        (["hardware.device=gpu"], "unknown device 'gpu'"),
        (["hardware.batch_size=0"], "hardware.batch_size"),
        (["hardware.dtype=float64"], "hardware.dtype"),
        (["split.test_chromosomes=[]"], "split.test_chromosomes"),
        (["training.batch_size=4"], "training.batch_size: unknown key"),
        (["model.fusion=cross_attention", "model.width=30"], "width divisible by 4"),
    ],
)
def test_bad_values_name_the_key(overrides, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_run_config(builtin_config("default"), overrides)


def test_a_key_given_twice_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  width: 8\ntraining:\n  epochs: 2\nmodel:\n  kernel: 5\n")
    with pytest.raises(UsageError, match="key 'model' appears twice .*lines 1 and 5"):
        load_run_config(path)
    nested = tmp_path / "n.yaml"
    nested.write_text("training:\n  epochs: 2\n  epochs: 3\n")
    with pytest.raises(UsageError, match="key 'epochs' appears twice"):
        load_run_config(nested)


def test_set_values_are_yaml_and_bad_yaml_is_named():
    assert parse_overrides(["a.b=[1, 2]", "c=null", "d="]) == {"a.b": [1, 2], "c": None, "d": None}
    with pytest.raises(UsageError, match="--set x=\\[1: the value is not valid YAML"):
        parse_overrides(["x=[1"])
    with pytest.raises(UsageError, match="empty key"):
        load_yaml_config(RunConfig, None, ["training..epochs=3"])


@pytest.mark.parametrize("name", PROFILES)
def test_profiles_hold_hardware_only_and_compose(name):
    settings = read_profile(name)
    cfg = load_run_config(builtin_config("hyena"), profile=name)
    assert cfg.hardware.device == settings["device"] and cfg.hardware.batch_size == settings["batch_size"]
    assert cfg.model.sequence_encoder == "hyena"  # the job config is untouched
    # --set wins over the profile
    again = load_run_config(builtin_config("hyena"), ["hardware.batch_size=3"], profile=name)
    assert again.hardware.batch_size == 3


def test_a_profile_with_a_job_key_is_refused(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("device: cpu\ntraining:\n  epochs: 3\n")
    with pytest.raises(UsageError, match="training: unknown key"):
        read_profile(bad)
    with pytest.raises(UsageError, match="not a built-in profile"):
        read_profile("tpu")


def test_checkpoint_sizes_are_bounded_before_allocation(tmp_path):
    """A tampered checkpoint config.json asking for a huge model fails validation, never allocates."""
    import json

    from meta_layer_cli.models.checkpoint import load_model, save_model
    from meta_layer_cli.models.meta import build_meta_model

    model = build_meta_model(
        {
            "channels": ["neither", "acceptor", "donor"],
            "width": 8,
            "kernel": 5,
            "sequence_dilations": [1],
            "score_dilations": [1],
            "trunk_dilations": [1],
        }
    )
    save_model(tmp_path, model)
    config = json.loads((tmp_path / "config.json").read_text())
    config["model"]["width"] = 10**7
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="model.width: Input should be less than or equal to 4096"):
        load_model(tmp_path)
