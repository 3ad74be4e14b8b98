"""Progress for batch jobs: plain timestamped lines while work runs (nothing waits for a step to end)."""

import logging
import time

from meta_layer_cli.runtime import progress as progress_module
from meta_layer_cli.runtime.progress import Progress


def test_plain_lines_at_start_every_interval_and_end(monkeypatch, caplog):
    monkeypatch.setattr(progress_module.settings, "interval", 0.0)
    monkeypatch.setattr(progress_module, "stderr_is_terminal", lambda: False)
    with caplog.at_level(logging.INFO, logger="meta_layer_cli.progress"):
        with Progress("prepare x", total=3, unit="genes") as bar:
            for _ in range(3):
                time.sleep(0.01)
                bar.update(1, rate="5 nt/s")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("prepare x: started, 0/3 genes")
    assert any(line.startswith("prepare x: 2/3 genes") and "ETA" in line and "rate 5 nt/s" in line for line in lines)
    assert lines[-1].startswith("prepare x: done, 3/3 genes")


def test_interval_limits_the_lines_and_quiet_silences_them(monkeypatch, caplog):
    monkeypatch.setattr(progress_module.settings, "interval", 3600.0)
    monkeypatch.setattr(progress_module, "stderr_is_terminal", lambda: False)
    with caplog.at_level(logging.INFO, logger="meta_layer_cli.progress"):
        with Progress("job", total=100) as bar:
            for _ in range(100):
                bar.update(1)
    assert len(caplog.records) == 2  # start and end only
    caplog.clear()
    monkeypatch.setattr(progress_module.settings, "quiet", True)
    with caplog.at_level(logging.INFO, logger="meta_layer_cli.progress"):
        with Progress("job", total=1) as bar:
            bar.update(1)
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]


def test_a_failed_step_says_so(monkeypatch, caplog):
    monkeypatch.setattr(progress_module, "stderr_is_terminal", lambda: False)
    with caplog.at_level(logging.INFO, logger="meta_layer_cli.progress"):
        try:
            with Progress("job", total=2) as bar:
                bar.update(1)
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            pass
    assert caplog.records[-1].getMessage().startswith("job: stopped (KeyboardInterrupt), 1/2")


def _wait_for(condition, timeout: float = 30.0) -> None:
    """Sleep until ``condition()`` (no assertion on how long it took: the machine may be busy)."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_phase_stuck_in_one_item_still_writes_lines(monkeypatch, caplog):
    """One pack of genes can take an hour: lines come from the clock, not from finished items, and name the
    phase (nested phases after their parent)."""
    monkeypatch.setattr(progress_module.settings, "interval", 0.05)
    monkeypatch.setattr(progress_module, "stderr_is_terminal", lambda: False)
    with caplog.at_level(logging.INFO, logger="meta_layer_cli.progress"):
        with Progress("prepare", bar=False):
            with Progress("prepare spliceai", total=1_000, unit="nt") as bar:
                bar.update(250)
                _wait_for(lambda: sum(": 250/1,000 nt" in r.getMessage() for r in caplog.records) >= 3)
                bar.update(750)
            with Progress("epoch 1/2", total=10, unit="steps"):
                _wait_for(lambda: any(r.getMessage().startswith("prepare: epoch 1/2: 0/10") for r in caplog.records))
    lines = [r.getMessage() for r in caplog.records]
    assert sum(line.startswith("prepare spliceai: 250/1,000 nt") for line in lines) >= 3
    assert any(line.startswith("prepare: epoch 1/2: 0/10 steps") for line in lines)
    # the outer phase (no counts) speaks only when it is the one running; its inner phases start with a line
    assert lines[0].startswith("prepare spliceai: started, 0/1,000 nt")
    # the heartbeat ends with the last phase
    _wait_for(lambda: not progress_module._heartbeat, timeout=5)
    assert not progress_module._heartbeat


def test_a_phase_inherits_whether_it_is_shown(monkeypatch, caplog):
    monkeypatch.setattr(progress_module, "stderr_is_terminal", lambda: False)
    with caplog.at_level(logging.INFO, logger="meta_layer_cli.progress"):
        with Progress("alone", enabled=None):
            pass
        with Progress("outer", bar=False, enabled=False):
            with Progress("inner", enabled=None):
                pass
        with Progress("outer", bar=False):
            with Progress("inner", enabled=None):
                pass
    assert [r.getMessage().split(",")[0] for r in caplog.records] == ["outer: inner: started", "outer: inner: done"]


def test_a_quick_phase_without_counts_adds_no_line(monkeypatch, caplog):
    """A command stopped by bad input within the interval: its one error line, no progress lines around it."""
    monkeypatch.setattr(progress_module, "stderr_is_terminal", lambda: False)
    with caplog.at_level(logging.INFO, logger="meta_layer_cli.progress"):
        try:
            with Progress("prepare", bar=False):
                with Progress("reading genes", bar=False):
                    raise ValueError("bad input")
        except ValueError:
            pass
    assert not caplog.records


def test_a_quick_phase_after_a_long_silence_adds_no_line(monkeypatch, caplog):
    """The heartbeat counted its interval from the process's last line: the next command of a long-lived process
    (the test session, a notebook) was 'found running' at once and its one error line came with two more."""
    monkeypatch.setattr(progress_module, "stderr_is_terminal", lambda: False)
    monkeypatch.setattr(progress_module.settings, "interval", 0.3)
    monkeypatch.setattr(progress_module, "_last_line", [time.monotonic() - 60.0])  # a minute without a line
    with caplog.at_level(logging.INFO, logger="meta_layer_cli.progress"):
        try:
            with Progress("calibrate", bar=False):
                time.sleep(0.05)  # the heartbeat's thread gets its turn
                raise ValueError("bad input")
        except ValueError:
            pass
    assert not caplog.records, [r.getMessage() for r in caplog.records]


def test_durations_below_ten_minutes_show_tenths():
    """'2 min' stood for 90, 120 and 150 s alike, and the next line jumped to '4 min' (rounding half to even)."""
    from meta_layer_cli.runtime.progress import format_duration

    shown = [format_duration(s) for s in (42, 90, 120, 150, 210, 599, 600, 3000, 7200)]
    assert shown == ["42 s", "1.5 min", "2.0 min", "2.5 min", "3.5 min", "10.0 min", "10 min", "50 min", "2.0 h"]
