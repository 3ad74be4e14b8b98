"""Errors that carry their exit code, so the command layer maps every expected failure to one line.

Exit codes (documented in the README):

====  ==========================================================================================
0     success (also: ``--if-changed`` found nothing changed and did nothing, see ``UpToDate``)
1     runtime failure: an unexpected error, a full or read-only disk, a device that fails
2     usage: a bad flag, a bad config key or value
3     bad input data: a malformed or missing file, an incompatible checkpoint, a rerun whose
      inputs changed
4     busy: another job holds the output folder's lock
5     up to date: ``--if-changed`` found the same data and config as the finished run (nothing done)
130   interrupted (Ctrl-C / SIGINT; 143 for SIGTERM)
====  ==========================================================================================

Library code raises these where the fault is the user's (a flag, a config value, an input file) or an expected
failure of the machine (:class:`RuntimeFailure`); a missing input file may also be a plain ``FileNotFoundError``.
Anything else reaching the command layer (a bare ``ValueError``, ``KeyError``, ``RuntimeError``...) is a bug in
metalayer: exit 1, "this is a bug", the traceback with ``--verbose``. Parsing a user's file with a third-party
reader (parquet, JSON, safetensors) happens inside :func:`reading`, which turns the reader's errors into
:class:`InputDataError`.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_DATA = 3
EXIT_BUSY = 4
EXIT_UP_TO_DATE = 5
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class MetalayerError(Exception):
    """Base of the errors below; ``exit_code`` is what the command exits with."""

    exit_code = EXIT_RUNTIME


class UsageError(MetalayerError, ValueError):
    """A bad flag, config key or config value."""

    exit_code = EXIT_USAGE


class InputDataError(MetalayerError, ValueError):
    """Input data that cannot be used as given: malformed files, unknown contigs, mismatched checkpoints."""

    exit_code = EXIT_DATA


class RuntimeFailure(MetalayerError, RuntimeError):
    """An expected failure of the machine rather than of the input: a device that is not there, a missing optional
    package, a fit that did not converge."""

    exit_code = EXIT_RUNTIME


class ChangedInputsError(InputDataError):
    """A rerun into an existing folder whose inputs differ from the ones that made it."""


class BusyError(MetalayerError, RuntimeError):
    """Another job holds the lock of the folder this job would write."""

    exit_code = EXIT_BUSY


class UpToDate(MetalayerError):
    """Nothing to do: the finished run in the folder was made from the same data and config."""

    exit_code = EXIT_UP_TO_DATE


# errors of the system (disk, permissions) that stay what they are inside :func:`reading`
_SYSTEM_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EDQUOT, errno.ENOMEM}


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name if it has none)."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0].strip() if lines else type(err).__name__


@contextlib.contextmanager
def reading(what: str) -> Iterator[None]:
    """Parse a user's file: whatever the reader raises about its contents becomes one :class:`InputDataError`
    line naming ``what`` (e.g. the path). Our own typed errors, missing files and system errors (full disk,
    permissions) pass through unchanged; so do interrupts."""
    try:
        yield
    except (MetalayerError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        raise
    except OSError as err:
        if err.errno in _SYSTEM_ERRNOS:
            raise
        raise InputDataError(f"{what}: cannot read it ({first_line(err)})") from err
    except (MemoryError, RecursionError):
        raise
    except Exception as err:  # the reader's own error types (polars, pyarrow, safetensors, json...)
        raise InputDataError(f"{what}: cannot read it ({first_line(err)})") from err
