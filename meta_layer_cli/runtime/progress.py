"""Progress for long work: a live bar on an interactive terminal, plain timestamped lines otherwise.

Batch jobs (SLURM logs, cron mail, ``2>&1 | cat``) have no terminal, so a bar would print nothing
until a step ends. :class:`Progress` therefore writes one log line through the
``meta_layer_cli.progress`` logger when it starts, every :data:`settings.interval` seconds while it
runs and when it ends (counts, rate, ETA and any fields such as the loss), and shows a rich bar
only when stderr is a terminal. The command layer routes the logger to stderr and to
``--log-file``; the log file always gets the lines, the terminal gets the bar instead of them.

The periodic lines are time-based, not item-based: a heartbeat thread writes the innermost running
phase's state whenever no progress line was written for ``settings.interval`` seconds, so a phase
whose single item takes an hour (one pack of genes, one long gene) is never silent longer than the
interval. Phases nest: a :class:`Progress` opened inside another is named after it
(``train-canonical: epoch 3/30: ...``), and a command wraps all its work in one outer phase, so no
stretch of it (loading, splitting, the finishing evaluation) goes without lines.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

logger = logging.getLogger("meta_layer_cli.progress")
F = TypeVar("F", bound=Callable[..., Any])

PROGRESS_LINE = "progress_line"  # LogRecord attribute set on periodic lines (a terminal shows the bar instead)


@dataclass
class ProgressSettings:
    """Process-wide switches, set by the command layer from ``--quiet`` and ``--progress-interval``."""

    quiet: bool = False
    interval: float = float(os.environ.get("METALAYER_PROGRESS_INTERVAL", "30"))
    force_plain: bool = False  # plain lines even on a terminal (tests, ``--no-bar``)


settings = ProgressSettings()

MIN_HEARTBEAT = 0.1  # seconds: with --progress-interval 0 (a line per update) the heartbeat still rests
_active: list[Progress] = []  # running phases, outermost first
_lock = threading.RLock()
_last_line = [0.0]  # monotonic time of the last progress line of any phase
_wake = threading.Condition(_lock)
_heartbeat: list[threading.Thread] = []


def _beat() -> None:
    """The heartbeat thread: a line for the innermost running phase whenever none came for an interval."""
    with _lock:
        while True:
            live = [p for p in _active if p.enabled]
            if not _active:
                _heartbeat.clear()
                return
            # an interval from the last line or from the start of the phase it would speak for, whichever is later:
            # a phase opened after a long silence (the next command of a long-lived process) is not "found
            # running" at once
            since = max(_last_line[0], live[-1]._started) if live else _last_line[0]
            due = since + max(settings.interval, MIN_HEARTBEAT) - time.monotonic()
            if live and due <= 0:
                live[-1]._line("")
                continue
            _wake.wait(timeout=min(max(due, 0.01), 1.0) if live else 1.0)


def _start_heartbeat() -> None:
    if not _heartbeat:
        thread = threading.Thread(target=_beat, name="metalayer-progress", daemon=True)
        _heartbeat.append(thread)
        thread.start()


def stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def format_duration(seconds: float) -> str:
    """``42 s``, ``2.5 min``, ``17 min``, ``1.2 h``: a duration as progress lines and reports show it (tenths of
    a minute below ten minutes: whole minutes showed 90, 120 and 150 s all as "2 min")."""
    seconds = int(round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 600:
        return f"{seconds / 60:.1f} min"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Report progress of ``description`` over ``total`` items (None: unknown) named ``unit``.

    Use as a context manager; call :meth:`update` as items finish. ``enabled=False`` silences the
    bar and the periodic lines (the start and end lines are still logged at DEBUG level);
    ``announce=False`` logs the start and end lines at DEBUG level only (for steps that report
    themselves with :meth:`log`, such as training epochs). ``bar=False``: never a live bar, and no
    start line: the phase writes lines only once the heartbeat finds it running (a command's outer
    phase, whose inner phases show theirs; a command stopped by bad input within the interval then
    writes its one error line and nothing else). ``enabled=None``: as the phase it runs
    in (off outside any; for library code that has no progress flag of its own). With ``total=None`` and no
    :meth:`update`, lines say ``running`` instead of counts.
    """

    def __init__(
        self,
        description: str,
        total: int | None = None,
        unit: str = "items",
        enabled: bool | None = True,
        completed: int = 0,
        announce: bool = True,
        bar: bool = True,
    ):
        self.name = self.description = description
        self.wants_bar = bar
        self.total = total
        self.unit = unit
        self._enabled = enabled
        self.enabled = bool(enabled) and not settings.quiet
        self.completed = completed
        self.fields: dict[str, str] = {}
        self.announce = announce
        self._start_completed = completed
        self._bar = None
        self._task = None
        self._started = 0.0
        self._last_line = 0.0
        self._spoke = False

    # -- context ------------------------------------------------------------------------------
    def __enter__(self) -> Progress:
        self._started = self._last_line = time.monotonic()
        with _lock:
            parent = _active[-1].description if _active else ""
            if self._enabled is None:  # as the phase it runs in (off outside any)
                self.enabled = bool(_active and _active[-1].enabled) and not settings.quiet
            # a phase inside another is named after it ("train-canonical: epoch 3/30")
            self.description = self.name if not parent or self.name.startswith(parent) else f"{parent}: {self.name}"
            bar_shown = any(p._bar is not None for p in _active)  # one live bar at a time
            _active.append(self)
            _start_heartbeat()
        if self.enabled and self.wants_bar and not bar_shown and stderr_is_terminal() and not settings.force_plain:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            from meta_layer_cli.runtime.console import stderr_console

            columns = [TextColumn("[bold]{task.description}"), BarColumn()]
            columns += [MofNCompleteColumn()] if self.total is not None else []
            columns += [TextColumn("{task.fields[text]}"), TimeElapsedColumn()]
            columns += [TimeRemainingColumn()] if self.total is not None else []
            self._bar = RichProgress(*columns, console=stderr_console(), transient=False)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.total, completed=self.completed, text="")
        # a phase without counts or bar (a command's outer phase, "reading genes") speaks only when the heartbeat
        # finds it running: one that ends within an interval, as a command stopped by bad input does, adds no line
        # to the one error line
        self._line(
            "started", level=logging.INFO if self.enabled and self.announce and self.wants_bar else logging.DEBUG
        )
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        with _lock:
            if self in _active:
                _active.remove(self)
            _wake.notify_all()
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)
        state = "done" if exc_type is None else f"stopped ({exc_type.__name__})"
        said = self.wants_bar or self._spoke  # a quiet phase ends as it began: in silence, unless it spoke
        self._line(state, level=logging.INFO if self.enabled and self.announce and said else logging.DEBUG, final=True)

    # -- reporting ----------------------------------------------------------------------------
    def update(self, advance: int = 1, total: int | None = None, **fields: object) -> None:
        """``advance`` more items done; ``fields`` (e.g. ``loss="0.012"``) are shown after the counts."""
        self.completed += advance
        if total is not None:
            self.total = total
        for key, value in fields.items():
            self.fields[key] = str(value)
        if self._bar is not None:
            self._bar.update(self._task, completed=self.completed, total=self.total, text=self._fields_text())
        now = time.monotonic()
        if self.enabled and now - max(self._last_line, _last_line[0]) >= settings.interval:
            self._line("")

    def _fields_text(self) -> str:
        return "  ".join(f"{k} {v}" for k, v in self.fields.items())

    def _line(self, state: str, level: int = logging.INFO, final: bool = False) -> None:
        with _lock:
            now = time.monotonic()
            self._last_line = now
            if level >= logging.INFO:
                _last_line[0] = now
                self._spoke = True
            elapsed = now - self._started
            if self.total is None and self.completed == 0:  # a phase without counts
                parts = [f"{self.description}: {state or 'running'}"]
            else:
                counts = f"{self.completed:,}" + (f"/{self.total:,}" if self.total is not None else "")
                counts += f" {self.unit}"
                parts = [f"{self.description}: {state}, {counts}" if state else f"{self.description}: {counts}"]
            done_now = self.completed - self._start_completed
            if elapsed > 0 and done_now > 0:
                parts.append(f"{done_now / elapsed:,.1f} {self.unit}/s")
                if self.total is not None and not final and self.completed < self.total:
                    parts.append(f"ETA {format_duration((self.total - self.completed) * elapsed / done_now)}")
            if self.fields:
                parts.append(self._fields_text())
            parts.append(f"elapsed {format_duration(elapsed)}")
            # on a terminal the bar shows the periodic state; start and end lines are always printed
            logger.log(level, ", ".join(parts), extra={PROGRESS_LINE: self._bar is not None and not state})

    def log(self, message: str) -> None:
        """An event worth a line of its own everywhere (an epoch's summary, a fold finished)."""
        logger.info(f"{self.description}: {message}")


def phase(name: str) -> Callable[[F], F]:
    """Decorator: the function runs inside an outer phase ``name`` (a :class:`Progress` without counts or
    bar), so every stretch of a command writes lines (``progress=False`` in the call silences it)."""

    def wrap(function: F) -> F:
        @functools.wraps(function)
        def run(*args, **kwargs):
            with Progress(name, bar=False, enabled=bool(kwargs.get("progress", True))):
                return function(*args, **kwargs)

        return run  # type: ignore[return-value]

    return wrap
