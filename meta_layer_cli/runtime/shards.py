"""``--shard K/N``: one job of N in an array job (SLURM ``--array=1-N``, one command per task).

One parser, one rule per command, each over the unit that can be computed alone:

* ``prepare``: every N-th *pack* of genes (genes whose windows overlap stay in one pack: one pass each);
* ``predict``: every N-th gene;
* ``score-vcf``: the K-th contiguous block of VCF body lines, so that ``merge-vcf`` restores input order by
  concatenation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

from meta_layer_cli.runtime.errors import UsageError

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
T = TypeVar("T")


def parse_shard(text: str | tuple[int, int]) -> tuple[int, int]:
    """``"K/N"`` (or ``(K, N)``) -> ``(K, N)``, 1 <= K <= N; anything else is a :class:`UsageError`."""
    if isinstance(text, tuple):
        k, n = text
    else:
        m = _SHARD.match(str(text))
        if not m:
            raise UsageError(f"--shard takes K/N (e.g. 3/10), not {text!r}")
        k, n = int(m.group(1)), int(m.group(2))
    if not 1 <= k <= n:
        raise UsageError(f"--shard {k}/{n}: K must be in 1..N")
    return k, n


def every_nth(items: Sequence[T], shard: tuple[int, int]) -> list[T]:
    """Shard ``(K, N)``'s items: the K-th, then every N-th after it (work of all sizes spread over the jobs)."""
    k, n = shard
    return list(items[k - 1 :: n])


def shard_block(k: int, n: int, total: int) -> tuple[int, int]:
    """Shard ``k`` of ``n``'s contiguous block ``[start, end)`` of ``total`` ordered items (0-based)."""
    return (k - 1) * total // n, k * total // n
