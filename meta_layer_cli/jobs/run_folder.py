"""A training run's output folder, safe for cron and for reruns.

``run.json`` in the folder records the run's status (``running`` / ``finished``) and the
fingerprint of its data and config. Opening a folder decides what happens, under the folder's
lock (a second run into the same folder stops at once with exit code 4):

==============================  ==============================================================
folder holds                    outcome
==============================  ==============================================================
nothing (or does not exist)     train
a finished run, same inputs     ``--if-changed``: exit 5, nothing done; ``--overwrite``: train
                                again; otherwise refused (it is finished)
a finished run, other inputs    ``--if-changed`` or ``--overwrite``: train again; otherwise
                                refused, naming what changed
an interrupted run              ``--resume``: continue it (same inputs only); ``--overwrite``,
                                or ``--if-changed`` with other inputs: start over; otherwise
                                refused
files of something else         refused (never deleted)
==============================  ==============================================================

Starting over removes only the run's own files (:data:`RUN_FILES`). While the run holds the folder,
the job's log lines also go to ``OUT/train.log``: what it trains on, one line per epoch, warnings and the
result, not the progress lines of a terminal or batch log (those say the same thing every few seconds).
A new run starts the file afresh; a resumed run continues it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from meta_layer_cli.io.atomic import write_json_atomic
from meta_layer_cli.runtime.errors import ChangedInputsError, InputDataError, UpToDate
from meta_layer_cli.runtime.fingerprint import differences
from meta_layer_cli.runtime.locks import LOCK_NAME, folder_lock
from meta_layer_cli.runtime.progress import PROGRESS_LINE

RUN_STATE = "run.json"
RUN_FORMAT = "metalayer-run"
RUN_FORMAT_VERSION = 1  # raise when a reader of this version could not read what a writer writes
RUN_LOG = "train.log"
RUN_FILES = (
    "checkpoints",
    "checkpoint",
    "metrics.json",
    "report.html",
    "cv_predictions.parquet",
    "cv_folds",
    RUN_STATE,
)
KEPT = ("data", "cache")  # prepared tracks a run made for itself: reused by the next run (their own fingerprint)
logger = logging.getLogger("meta_layer_cli")


def run_outputs(out: str | os.PathLike) -> list[Path]:
    """What a run may replace in its folder (for :func:`~meta_layer_cli.io.atomic.refuse_overwriting_inputs`):
    its own files; the folder's ``data/`` and ``cache/`` are kept."""
    return [Path(out) / name for name in (*RUN_FILES, RUN_LOG)]


def _when(seconds: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds or 0))


def _not_a_progress_line(record: logging.LogRecord) -> bool:
    """Progress's start, periodic and end lines carry :data:`PROGRESS_LINE`; events it logs (an epoch) do not."""
    return not hasattr(record, PROGRESS_LINE)


@dataclass(frozen=True)
class FolderPolicy:
    """What a training job does with an output folder that already holds a run (the table above): the
    command line's ``--resume``, ``--overwrite`` and ``--if-changed``. The library's default retrains into a
    finished folder (``overwrite=True``); the command line refuses unless told."""

    resume: bool = False
    overwrite: bool = True
    if_changed: bool = False

    def open(self, out: str | os.PathLike, fingerprint: dict, kind: str) -> RunFolder:
        """The :class:`RunFolder` for ``out`` under this policy (enter it to decide and lock)."""
        return RunFolder(out, fingerprint, kind, self.resume, self.overwrite, self.if_changed)


class RunFolder:
    """Use as ``with RunFolder(out, fingerprint, ...) as run: ... run.finish()`` (module docstring).

    ``run.resuming`` tells the trainer to continue from ``checkpoints/last``.
    """

    def __init__(
        self,
        out: str | os.PathLike,
        fingerprint: dict,
        kind: str,
        resume: bool = False,
        overwrite: bool = False,
        if_changed: bool = False,
    ):
        self.out = Path(out)
        self.fingerprint = fingerprint
        self.kind = kind
        self.resume, self.overwrite, self.if_changed = resume, overwrite, if_changed
        self.resuming = False
        self._lock = None
        self._handler: logging.Handler | None = None

    def __enter__(self) -> RunFolder:
        self._lock = folder_lock(self.out, wait=0, what="training into")
        self._lock.__enter__()
        try:
            self._decide()
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        # a run started afresh gets a fresh log (no line of an earlier, failed or replaced run); a resumed run
        # continues its own
        self._handler = logging.FileHandler(self.out / RUN_LOG, mode="a" if self.resuming else "w")
        self._handler.addFilter(_not_a_progress_line)
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        self._handler.setLevel(logging.INFO)
        logger.addHandler(self._handler)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            self._previous_level = logger.level
            logger.setLevel(logging.INFO)
        else:
            self._previous_level = None
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self._state_only():
            # failed before writing anything of the run (e.g. unreadable data): no interrupted run to resume,
            # so the folder is left as a rerun can start in, not as one that needs --resume or --overwrite
            (self.out / RUN_STATE).unlink(missing_ok=True)
        if self._handler is not None:
            logger.removeHandler(self._handler)
            self._handler.close()
            if self._previous_level is not None:
                logger.setLevel(self._previous_level)
        self._lock.__exit__(exc_type, exc, tb)

    def _state_only(self) -> bool:
        """The run has written nothing but its state file (its other files were cleared when it started)."""
        return not self.resuming and all(not (self.out / name).exists() for name in RUN_FILES if name != RUN_STATE)

    def _state(self) -> dict | None:
        path = self.out / RUN_STATE
        if not path.is_file():
            return None
        try:
            state = json.loads(path.read_text())
        except ValueError:
            raise InputDataError(f"{path} is not valid JSON; --overwrite to start the run over") from None
        version = state.get("format_version", RUN_FORMAT_VERSION)  # run folders before versioning are version 1
        if (
            state.get("format", RUN_FORMAT) != RUN_FORMAT
            or not isinstance(version, int)
            or version > RUN_FORMAT_VERSION
        ):
            raise InputDataError(
                f"{path} is {state.get('format')} version {version}, this metalayer reads {RUN_FORMAT} up to "
                f"{RUN_FORMAT_VERSION} (written by a newer metalayer? upgrade it, or choose another --out)"
            )
        return state

    def _clear(self) -> None:
        for name in RUN_FILES:
            path = self.out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()

    def _start(self) -> None:
        write_json_atomic(
            self.out / RUN_STATE,
            {
                "format": RUN_FORMAT,
                "format_version": RUN_FORMAT_VERSION,
                "kind": self.kind,
                "status": "running",
                "started": time.time(),
                "fingerprint": self.fingerprint,
            },
        )

    def _decide(self) -> None:
        state = self._state()
        ours = {LOCK_NAME, RUN_LOG, *RUN_FILES, *KEPT}
        if state is None:
            foreign = [p.name for p in self.out.iterdir() if p.name not in ours] if self.out.is_dir() else []
            if foreign and not self.overwrite:
                raise InputDataError(
                    f"{self.out} is not a metalayer run folder (it holds {', '.join(foreign[:3])}); "
                    "choose a new or empty --out"
                )
            self._clear()
            return self._start()
        if state.get("kind") != self.kind:
            raise InputDataError(f"{self.out} holds a {state.get('kind')} run, not {self.kind}; choose another --out")
        same = state.get("fingerprint") == self.fingerprint
        changed = "; ".join(differences(state.get("fingerprint") or {}, self.fingerprint))
        if state.get("status") == "finished":
            if same and self.if_changed:
                raise UpToDate(
                    f"{self.out}: data and config unchanged since the run finished "
                    f"({_when(state.get('finished'))}); nothing to do"
                )
            if same and not self.overwrite:
                raise InputDataError(
                    f"{self.out} holds a run finished {_when(state.get('finished'))}; --overwrite to "
                    "train again, or --if-changed to retrain only when data or config change"
                )
            if not same and not (self.if_changed or self.overwrite):
                raise ChangedInputsError(
                    f"{self.out} holds a finished run made from other inputs ({changed}); "
                    "--if-changed or --overwrite to retrain"
                )
            if not same:
                logger.info(f"{self.out}: inputs changed since the last run ({changed}); training again")
            self._clear()
            return self._start()
        # an interrupted run: its lock is free, so the process that wrote it is gone
        if self.resume and same:
            self.resuming = True
            return
        if self.overwrite or (self.if_changed and not same):
            if not same:
                logger.info(f"{self.out}: inputs changed since the interrupted run ({changed}); starting over")
            self._clear()
            return self._start()
        if not same:
            raise ChangedInputsError(
                f"{self.out} holds an interrupted run made from other inputs ({changed}); --overwrite to start over"
            )
        raise InputDataError(
            f"{self.out} holds an interrupted run (started {_when(state.get('started'))}); "
            "--resume to continue it, or --overwrite to start over"
        )

    def finish(self, summary: dict | None = None) -> None:
        state = self._state() or {}
        write_json_atomic(
            self.out / RUN_STATE, {**state, "status": "finished", "finished": time.time(), "summary": summary or {}}
        )
