"""One writer per folder: the second one stops at once and names the first."""

import multiprocessing
import os
import time

import pytest

from meta_layer_cli.runtime.errors import BusyError
from meta_layer_cli.runtime.locks import folder_lock


def _hold(folder, ready, release):
    with folder_lock(folder):
        ready.set()
        release.wait(10)


def test_a_second_process_is_refused_naming_the_holder(tmp_path):
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(tmp_path, ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(BusyError, match=f"is busy: pid {holder.pid} on .* since "):
            with folder_lock(tmp_path):
                pass
        started = time.monotonic()
        with pytest.raises(BusyError):
            with folder_lock(tmp_path, wait=0.3):
                pass
        assert time.monotonic() - started >= 0.3
    finally:
        release.set()
        holder.join(10)
    with folder_lock(tmp_path):  # free again once the holder is gone
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(tmp_path, ready, release))
    holder.start()
    assert ready.wait(10)
    os.kill(holder.pid, 9)
    holder.join(10)
    with folder_lock(tmp_path, wait=1):  # the kernel released the flock with the process
        pass
