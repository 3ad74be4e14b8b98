"""The one rich console on stderr, shared by progress bars and the command layer's messages."""

from __future__ import annotations

from functools import lru_cache

from rich.console import Console


@lru_cache(maxsize=1)
def stderr_console() -> Console:
    return Console(stderr=True, soft_wrap=True, highlight=False)
