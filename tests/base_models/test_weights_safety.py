"""Weights files that carry code are refused without running it (``torch.load(weights_only=True)``)."""

from __future__ import annotations

import pytest
import torch

from meta_layer_cli import load_base_model
from tests.conftest import write_code_carrying_pickle


@pytest.mark.parametrize("legacy", [False, True])
def test_the_payload_runs_when_unpickled_unsafely(tmp_path, legacy):
    """The fixture is a real attack: an unsafe ``torch.load`` runs it."""
    marker = tmp_path / "marker"
    path = write_code_carrying_pickle(tmp_path / "evil.pt", marker, legacy=legacy)
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("name, filename", [("openspliceai", "model_80nt_rs10.pt"), ("pangolin", "final.1.0.3.v2")])
@pytest.mark.parametrize("as_directory", [False, True])
def test_code_carrying_weights_are_refused_without_running(tmp_path, name, filename, legacy, as_directory):
    marker = tmp_path / "marker"
    (tmp_path / "weights").mkdir()
    path = write_code_carrying_pickle(tmp_path / "weights" / filename, marker, legacy=legacy)
    with pytest.raises(ValueError, match=r"^cannot load weights .*") as err:
        load_base_model(name, path.parent if as_directory else path)
    assert "\n" not in str(err.value) and "Unpickl" in str(err.value)
    assert not marker.exists()
