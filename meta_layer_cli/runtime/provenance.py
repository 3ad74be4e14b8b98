"""Which command made an artifact: the command line, recorded once by the command layer, for reports.

Library calls (no command line) leave it unset; readers then say so instead of inventing one.
"""

from __future__ import annotations

_state: dict[str, str | None] = {"command": None}


def set_command_line(text: str | None) -> None:
    """Record the command line of this process's command (the command layer calls it once per command)."""
    _state["command"] = text


def current_command_line() -> str | None:
    """The recorded command line, or None for a library call."""
    return _state["command"]
