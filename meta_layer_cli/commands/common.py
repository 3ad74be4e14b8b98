"""What every command shares: option types, logging to the terminal and a log file, and the one place where
errors become a line on stderr and an exit code (see :mod:`meta_layer_cli.runtime.errors`)."""

from __future__ import annotations

import errno
import functools
import logging
import signal
import sys
import traceback
from pathlib import Path
from typing import Annotated

import click
import typer

from meta_layer_cli.runtime.console import stderr_console
from meta_layer_cli.runtime.errors import (
    EXIT_DATA,
    EXIT_INTERRUPTED,
    EXIT_RUNTIME,
    EXIT_TERMINATED,
    EXIT_USAGE,
    MetalayerError,
    UpToDate,
    first_line,
)
from meta_layer_cli.runtime.progress import PROGRESS_LINE, settings, stderr_is_terminal
from meta_layer_cli.runtime.provenance import set_command_line

LOGGER = "meta_layer_cli"

DeviceOpt = Annotated[
    str | None, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps (default: the profile's, else auto)")
]
ProfileOpt = Annotated[
    str | None, typer.Option("--profile", help="hardware profile: cpu, m1, gpu, or a YAML file of hardware keys")
]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="report progress on stderr")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", metavar="<key=value>", help="override a config key, e.g. training.epochs=5")
]
ModelsDirOpt = Annotated[
    Path | None, typer.Option("--models-dir", help="folder of base-model weights (default: $METALAYER_MODELS)")
]


class Terminated(BaseException):
    """SIGTERM (a scheduler's kill or timeout), raised so that ``finally`` blocks clean up."""


def _on_sigterm(signum, frame) -> None:  # pragma: no cover - exercised by the stress script
    raise Terminated()


class _TerminalHandler(logging.Handler):
    """Log records as one line each on stderr: plain timestamped lines for batch jobs, rich ones on a terminal
    (where progress bars replace the periodic progress lines)."""

    def __init__(self, level: int):
        super().__init__(level)
        self.tty = stderr_is_terminal()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.tty and getattr(record, PROGRESS_LINE, False):
                return
            message = record.getMessage()
            if record.levelno >= logging.ERROR:
                prefix = "error: "
            elif record.levelno >= logging.WARNING:
                prefix = "warning: "
            else:
                prefix = ""
            if self.tty:
                color = "red" if record.levelno >= logging.ERROR else "yellow" if prefix else None
                shown = f"[{color}]{prefix}[/{color}]" if color else ""
                stderr_console().print(shown + _escape(message), markup=True)
            else:  # batch job: timestamped progress and info lines; errors and warnings as they are, for grep
                stamp = "" if prefix else self.formatter.formatTime(record, "%Y-%m-%d %H:%M:%S") + " "
                sys.stderr.write(f"{stamp}{prefix}{message}\n")
                sys.stderr.flush()
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


_handlers: list[logging.Handler] = []


class _LogFileHandler(logging.FileHandler):
    """``--log-file``: a write that fails later (full disk, the file's mount gone) is one warning on stderr, once,
    and the job goes on without the file (logging's default would print a traceback for every record)."""

    def handleError(self, record: logging.LogRecord) -> None:
        err = sys.exc_info()[1]
        logging.getLogger(LOGGER).removeHandler(self)
        logging.getLogger("py.warnings").removeHandler(self)
        sys.stderr.write(
            f"warning: --log-file {self.baseFilename}: cannot write ({first_line(err) if err else '?'}); "
            "continuing without it\n"
        )


def _open_log_file(path: Path) -> logging.Handler:
    """The ``--log-file`` handler, or one :class:`UsageError` line when the path cannot be written (a directory,
    ``/proc/...``, a read-only mount)."""
    from meta_layer_cli.runtime.errors import UsageError

    try:
        if path.is_dir():
            raise IsADirectoryError(21, "is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        return _LogFileHandler(path)
    except OSError as err:
        raise UsageError(f"--log-file {path}: cannot write it ({err.strerror or first_line(err)})") from None


def configure_logging(
    quiet: bool = False, verbose: bool = False, log_file: Path | None = None, progress_interval: float | None = None
) -> None:
    """Route the package's log records to stderr (and ``log_file``); called once per command."""
    root = logging.getLogger(LOGGER)
    for h in _handlers:
        root.removeHandler(h)
        logging.getLogger("py.warnings").removeHandler(h)
        h.close()
    _handlers.clear()
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    terminal = _TerminalHandler(level)
    terminal.setFormatter(logging.Formatter())
    _handlers.append(terminal)
    failed = None
    if log_file is not None:
        try:
            to_file = _open_log_file(log_file)
        except MetalayerError as err:  # reported through the terminal handler once it is installed
            failed, log_file = err, None
    if log_file is not None:
        to_file.setLevel(logging.DEBUG if verbose else logging.INFO)
        to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        _handlers.append(to_file)
    for h in _handlers:
        root.addHandler(h)
        logging.getLogger("py.warnings").addHandler(h)
    root.setLevel(logging.DEBUG if (verbose or log_file is not None) else level)
    root.propagate = False
    logging.captureWarnings(True)
    settings.quiet = quiet
    if progress_interval is not None:
        settings.interval = progress_interval
    state["verbose"] = verbose
    if failed is not None:
        raise failed


state: dict = {"verbose": False, "argv": None}


def info(message: str) -> None:
    """A result line for the user (stderr; stdout stays free for data such as ``--json`` or ``-O -``)."""
    logging.getLogger(LOGGER).info(message)


def print_result(text: str) -> None:
    """A command's result for the user (a summary, fitted values) on stdout; messages go to stderr (:func:`info`).
    Commands whose stdout may carry data (``score-vcf -O -``) report through :func:`info` instead."""
    sys.stdout.write(text.rstrip("\n") + "\n")
    sys.stdout.flush()


def fail(message: str, code: int) -> None:
    logging.getLogger(LOGGER).error(message)
    raise typer.Exit(code)


def _one_line(err: BaseException) -> str:
    return first_line(err)


def _out_of_device_memory(err: BaseException) -> bool:
    """torch's CUDA/MPS out-of-memory errors (RuntimeError subclasses, or plain RuntimeErrors saying so)."""
    return isinstance(err, RuntimeError) and (
        "out of memory" in str(err).lower() or type(err).__name__ == "OutOfMemoryError"
    )


def run_command(func):
    """Run a command's body: expected failures become one ``error:`` line and their exit code, never a
    traceback (``--verbose`` adds it); SIGTERM and Ctrl-C end with 143 / 130 after clean-up."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        previous = signal.signal(signal.SIGTERM, _on_sigterm) if _main_thread() else None
        set_command_line(command_line(click.get_current_context(silent=True)))  # for reports written by the job
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except UpToDate as done:  # not a failure: `--if-changed` found nothing to do (exit 5, an info line)
            info(_one_line(done))
            raise typer.Exit(done.exit_code) from None
        except MetalayerError as err:
            _report(err, err.exit_code)
        except KeyboardInterrupt:
            _report(None, EXIT_INTERRUPTED, "interrupted")
        except Terminated:
            _report(None, EXIT_TERMINATED, "terminated (SIGTERM)")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as err:
            _report(err, EXIT_DATA, _path_error(err))
        except BrokenPipeError as err:  # `metalayer ... -O - | head`: the reader of stdout stopped early
            _silence_stdout()
            _report(err, EXIT_RUNTIME, "output closed early (broken pipe): the reader of stdout stopped")
        except PermissionError as err:
            _report(err, EXIT_RUNTIME, f"permission denied: {err.filename or err}")
        except OSError as err:
            if err.errno == errno.ENOSPC:
                _report(err, EXIT_RUNTIME, f"no space left on device ({err.filename or 'writing output'})")
            elif err.errno == errno.EROFS:
                _report(err, EXIT_RUNTIME, f"read-only file system ({err.filename or 'writing output'})")
            else:
                _report(err, EXIT_RUNTIME)
        except MemoryError as err:
            _report(err, EXIT_RUNTIME, "out of memory (lower the batch or block sizes, e.g. --profile cpu)")
        except Exception as err:  # not a typed error: a bug of metalayer, not the user's fault
            if _out_of_device_memory(err):
                _report(
                    err,
                    EXIT_RUNTIME,
                    f"out of device memory ({_one_line(err)}); lower the batch or block "
                    "sizes (--profile, --set hardware.batch_size=...)",
                )
            else:
                _report(
                    err,
                    EXIT_RUNTIME,
                    f"internal error: {type(err).__name__}: {_one_line(err)}; this is a bug "
                    "in metalayer, please report it (--verbose: traceback)",
                )
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    return wrapper


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush does not fail on the closed pipe again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout is no file descriptor (captured by a test runner)
        pass


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _path_error(err: OSError) -> str:
    if err.args and isinstance(err.args[0], str) and not err.filename:
        return err.args[0]
    return f"{err.strerror or 'not found'}: {err.filename}"


def _report(err: BaseException | None, code: int, message: str | None = None) -> None:
    if err is not None and state["verbose"]:
        sys.stderr.write("".join(traceback.format_exception(err)))
    fail(message or _one_line(err), code)


def remember_argv(argv: list[str]) -> None:
    """The console entry point records the arguments it was given (for :func:`command_line`)."""
    state["argv"] = list(argv)


def command_line(ctx: typer.Context | None = None) -> str:
    """The command line that runs this command, for provenance (``##metalayer_command`` headers): the arguments
    as given to the console script, or, when the app is invoked otherwise (tests), rebuilt from ``ctx`` (the
    command's ``typer.Context``): its parsed options that differ from their defaults."""
    import shlex

    if state.get("argv") is not None:
        return shlex.join(["metalayer", *state["argv"]])
    if ctx is None:
        return "metalayer"
    words = ["metalayer", ctx.info_name or ""]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value is None or value == param.default or value == ():
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        if param.param_type_name == "argument":
            words += [str(v) for v in values]
            continue
        long = max(param.opts, key=len)
        if isinstance(value, bool):
            words.append(long if value else max(param.secondary_opts or [long], key=len))
            continue
        for v in values:
            words += [long, str(v)]
    return shlex.join(words)


def split_list(values: str | None) -> list[str] | None:
    """``"a,b, c"`` -> ``["a", "b", "c"]``; an option given but naming nothing is a usage error."""
    if values is None:
        return None
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not items:
        from meta_layer_cli.runtime.errors import UsageError

        raise UsageError(f"empty list {values!r}")
    return items


__all__ = ["EXIT_USAGE", "configure_logging", "fail", "info", "print_result", "run_command", "split_list"]
