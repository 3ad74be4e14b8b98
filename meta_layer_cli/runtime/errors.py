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

Library code raises these (or plain ``ValueError`` / ``FileNotFoundError``, which count as bad input).
"""

from __future__ import annotations

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


class ChangedInputsError(InputDataError):
    """A rerun into an existing folder whose inputs differ from the ones that made it."""


class BusyError(MetalayerError, RuntimeError):
    """Another job holds the lock of the folder this job would write."""

    exit_code = EXIT_BUSY


class UpToDate(MetalayerError):
    """Nothing to do: the finished run in the folder was made from the same data and config."""

    exit_code = EXIT_UP_TO_DATE
