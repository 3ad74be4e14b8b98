"""Missing shared data (../shared): a skip on a developer's machine, a failure in CI."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests import conftest
from tests.conftest import REPO


def test_missing_shared_file_fails_in_ci_and_skips_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "SHARED", tmp_path / "absent")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI=true and shared data is missing: .*absent/models/x\.pt"):
        conftest.shared_path("models", "x.pt")
    for value in (None, "false", ""):
        if value is None:
            monkeypatch.delenv("CI")
        else:
            monkeypatch.setenv("CI", value)
        with pytest.raises(pytest.skip.Exception, match="set METALAYER_SHARED"):
            conftest.shared_path("models", "x.pt")
    # present files are returned whatever CI says
    (tmp_path / "absent" / "models").mkdir(parents=True)
    (tmp_path / "absent" / "models" / "x.pt").touch()
    monkeypatch.setenv("CI", "true")
    assert conftest.shared_path("models", "x.pt") == tmp_path / "absent" / "models" / "x.pt"


def test_under_ci_only_missing_shared_data_fails_and_gpu_skips_stay_skips(tmp_path):
    """A real pytest run with CI=true, ../shared absent and no GPU: the weights test fails with the
    message, the CUDA tests are still skipped."""
    env = {**os.environ, "CI": "true", "METALAYER_SHARED": str(tmp_path / "absent"), "CUDA_VISIBLE_DEVICES": ""}
    env.pop("METALAYER_GPU_TEST_DEVICE", None)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rsf",
            "tests/test_cuda.py",
            "tests/base_models/test_equivalence.py::test_openspliceai_matches_official",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = out.stdout.splitlines()
    failed = [line for line in lines if line.startswith("FAILED")]
    skipped = [line for line in lines if line.startswith("SKIPPED")]
    assert len(failed) == 2 and all("test_equivalence.py" in line for line in failed), out.stdout[-3000:]
    assert all("CI=true and shared data is missing" in line for line in failed), out.stdout[-3000:]
    assert skipped and all("test_cuda.py" in line and "no CUDA device" in line for line in skipped), out.stdout[-3000:]
    assert " passed" not in lines[-1], out.stdout[-3000:]
