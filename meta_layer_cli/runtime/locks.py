"""Folder locks: one writer at a time per output folder, with a clear message naming the holder.

``flock`` on ``FOLDER/.metalayer.lock`` (advisory; Linux NFSv4 and local disks honour it). The lock
file holds the holder's pid, host, start time and command line for the error message; it is left
in place after release (removing it would race with the next locker).

Not the ``filelock`` package (installed with torch): its Unix lock is the same ``flock``, but it keeps no
note of the holder, so a refused job could not say who holds the folder; where ``flock`` is missing
(some network file systems) filelock 4 falls back silently to a marker-file lock whose staleness it
guesses from pids and lease times, whereas this lock is released by the kernel when its holder dies and
fails loudly where it cannot be taken.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from meta_layer_cli.runtime.errors import BusyError

LOCK_NAME = ".metalayer.lock"


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another job"
    if not info:
        return "another job"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
    return f"pid {info.get('pid')} on {info.get('host')} since {started} ({info.get('command', '?')})"


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, wait: float = 0.0, what: str = "writing") -> Iterator[Path]:
    """Hold the exclusive lock of ``folder`` (created if missing) for the ``with`` block.

    ``wait``: seconds to keep trying (0: fail at once). Raises :class:`BusyError` naming the holder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BusyError(f"{folder} is busy: {_holder(path)} is {what} it") from None
                time.sleep(0.05)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.time(),
            "command": " ".join(sys.argv)[:300],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
