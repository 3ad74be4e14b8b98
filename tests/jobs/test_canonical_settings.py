"""run_canonical_training's settings: the command line's flags by name, any config key, one strict check."""

import pytest

from meta_layer_cli.jobs.canonical import builtin_config, resolve_canonical_config
from meta_layer_cli.runtime.errors import UsageError


def test_flags_top_level_keys_and_section_keys_override_the_config():
    cfg = resolve_canonical_config(
        builtin_config("default"),
        {"training.patience": 2},
        None,
        test_chroms=["3"],
        split="block",
        epochs=7,
        max_minutes=None,  # None leaves the config's value
        training__lr=5e-4,
        max_genes=50,
        device="cpu",
    )
    assert cfg.split.test_chromosomes == ["3"] and cfg.split.method == "block"
    assert cfg.training.epochs == 7 and cfg.training.lr == 5e-4 and cfg.training.patience == 2
    assert cfg.training.max_minutes == 30  # the default config's
    assert cfg.max_genes == 50 and cfg.hardware.device == "cpu"


@pytest.mark.parametrize("setting", [{"epoch": 3}, {"training__learning_rate": 1e-3}])
def test_an_unknown_setting_is_refused_naming_it(setting):
    with pytest.raises(UsageError, match=next(iter(setting)).split("__")[-1]):
        resolve_canonical_config(builtin_config("default"), None, None, **setting)
