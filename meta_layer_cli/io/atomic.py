"""Writing outputs: atomically to regular files, straight through to streams, devices and links.

:func:`writes_through` is the one place that decides how an output is written (:func:`output_path`
applies it):

* ``-`` is standard output (the writer writes ``sys.stdout.buffer``);
* a symlink (``/dev/stdout``, ``/dev/fd/N``, a link the user made), a character device
  (``/dev/null``), a FIFO or a socket is *written through*: opened and written in place, so the
  link stays a link and the device stays a device (nothing to rename, and no atomicity);
* anything else (a regular file, or a path that does not exist yet) is written *atomically*: to
  a temporary file beside the target, renamed onto it on success, so an interrupted write leaves
  the old file (or none), never a truncated one.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

STDOUT = "-"


def is_stdout(path: str | os.PathLike) -> bool:
    """``-``: the output is standard output."""
    return os.fspath(path) == STDOUT


def writes_through(path: str | os.PathLike) -> bool:
    """True when ``path`` must be written in place rather than replaced: ``-``, a symlink, or an existing
    file that is not a regular file (device, FIFO, socket)."""
    if is_stdout(path):
        return True
    if os.path.islink(path):
        return True
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it onto ``path`` on success.

    An interrupted write leaves the old file (or none), never a truncated one. Use
    :func:`output_path` for outputs a user names (they may be links or devices).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def output_path(path: str | os.PathLike) -> Iterator[Path]:
    """The path to write ``path``'s contents to: ``path`` itself when it :func:`writes_through`, otherwise a
    temporary file renamed onto it on success (:func:`atomic_path`). Not for ``-`` (write ``sys.stdout``)."""
    if is_stdout(path):
        raise ValueError("output_path() cannot open standard output ('-')")
    if writes_through(path):
        yield Path(path)
    else:
        with atomic_path(path) as tmp:
            yield tmp


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
