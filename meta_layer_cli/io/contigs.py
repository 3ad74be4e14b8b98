"""Chromosome-name matching between files that disagree on ``chr1`` vs ``1``."""

from __future__ import annotations

from collections.abc import Iterable


def strip_chr(name: str) -> str:
    """``chr1`` -> ``1``, ``chrM`` -> ``MT``; other names unchanged."""
    core = name[3:] if name.lower().startswith("chr") else name
    return "MT" if core in ("M", "m") else core


class ContigResolver:
    """Maps contig names from annotations/VCFs onto the names a FASTA actually uses.

    Exact matches win; otherwise names are compared with the ``chr`` prefix removed.
    """

    def __init__(self, available: Iterable[str]):
        self.available = list(available)
        self._exact = set(self.available)
        self._by_core: dict[str, str] = {}
        for name in self.available:
            self._by_core.setdefault(strip_chr(name), name)

    def resolve(self, name: str) -> str | None:
        """The FASTA's name for ``name``, or None when the FASTA has no such contig."""
        if name in self._exact:
            return name
        return self._by_core.get(strip_chr(name))

    def require(self, name: str, source: str = "FASTA") -> str:
        resolved = self.resolve(name)
        if resolved is None:
            shown = ", ".join(self.available[:5]) + (", ..." if len(self.available) > 5 else "")
            raise KeyError(f"contig {name!r} not found in {source} (it has: {shown})")
        return resolved

    def check_overlap(self, names: Iterable[str], what: str) -> None:
        """Fail loudly when none of ``names`` matches, the classic chr1-vs-1 silent miss."""
        names = list(dict.fromkeys(names))
        if names and not any(self.resolve(n) is not None for n in names):
            raise ValueError(
                f"none of the {len(names)} contigs in {what} ({', '.join(names[:3])}...) match the "
                f"FASTA's contigs ({', '.join(self.available[:3])}...)"
            )
