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
from collections.abc import Iterator, Mapping, Sequence
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


PathArg = str | os.PathLike | None


def _paths(given: PathArg | Sequence[PathArg]) -> list[str]:
    if given is None:
        return []
    if isinstance(given, (str, os.PathLike)):
        given = [given]
    return [os.fspath(p) for p in given if isinstance(p, (str, os.PathLike)) and not is_stdout(p)]


def _real(path: str) -> Path:
    return Path(os.path.realpath(os.path.expanduser(path)))


def _overlap(written: Path, read: Path) -> str | None:
    """How writing ``written`` would touch ``read`` (both resolved): None when it would not."""
    if written == read or (written.exists() and read.exists() and os.path.samefile(written, read)):
        return "is"
    if written in read.parents:
        return "holds"
    if read in written.parents:
        return "lies inside"
    return None


def refuse_overwriting_inputs(
    written: Mapping[str, PathArg | Sequence[PathArg]], inputs: Mapping[str, PathArg | Sequence[PathArg]]
) -> None:
    """The one guard against a command destroying its own inputs, called before anything is written.

    ``written``: what the command may create, replace or delete, by the flag that names it (``{"--out": folder}``;
    for a folder only part of which is replaced, those parts: a run folder's ``checkpoints/``, ``metrics.json``...);
    ``inputs``: what it reads (``{"--checkpoint": dir, "--data": [dirs]}``). Paths are compared resolved (links,
    ``..``, hard links of one file). An output that is an input, holds one (a folder that would be emptied or
    replaced) or lies inside one (part of an input folder replaced; outputs go outside the inputs) is one
    :class:`UsageError` line. Inputs that do not
    exist (yet), built-in names such as ``grch38`` and ``-`` (standard input/output) are not paths to protect;
    neither are devices such as ``/dev/null``.
    """
    from meta_layer_cli.runtime.errors import UsageError

    for out_flag, outs in written.items():
        for out in _paths(outs):
            if writes_through(out) and not os.path.islink(out):
                continue  # a device, FIFO or socket: written in place, nothing is replaced
            target = _real(out)
            for in_flag, ins in inputs.items():
                for given in _paths(ins):
                    if not os.path.lexists(given):
                        continue
                    how = _overlap(target, _real(given))
                    if how is not None:
                        raise UsageError(
                            f"{out_flag} {out} {how} the input {in_flag} {given}; writing it would "
                            f"destroy that input: choose another {out_flag}"
                        )


def check_output_file(path: str | os.PathLike, flag: str) -> None:
    """An output file name checked before any work (not after hours of it): not ``-`` handled elsewhere, not an
    existing folder, and not below a file. One :class:`UsageError` line."""
    from meta_layer_cli.runtime.errors import UsageError

    if is_stdout(path):
        return
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; give a file name")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"{flag} {path}: {parent} is a file, not a folder")
            break
