"""tests/test_cuda.py runs only where torch sees a GPU, and CI has none: between GPU sessions its code can go
stale unnoticed (it did: its checks of training found no base-model weights once checkpoints stopped recording
a machine's paths). Here its training checks run on the CPU against the CPU (``METALAYER_GPU_TEST_DEVICE=cpu``),
so that on a GPU only the device can fail them."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO, shared_path


def test_the_gpu_training_checks_pass_with_the_cpu_as_device():
    shared_path("models", "openspliceai-mane", "80nt")  # under CI a missing folder fails here, by name
    env = {**os.environ, "METALAYER_GPU_TEST_DEVICE": "cpu"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_cuda.py", "-k", "trains"]
    out = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:]
    assert out.stdout.splitlines()[-1].startswith("3 passed"), out.stdout[-3000:]
