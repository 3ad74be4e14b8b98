"""Chromosome-name matching between files that disagree on ``chr1`` vs ``1``."""

from __future__ import annotations

import re
from collections.abc import Iterable

from meta_layer_cli.runtime.errors import InputDataError


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
            raise InputDataError(f"contig {name!r} not found in {source} (it has: {shown})")
        return resolved

    def check_overlap(self, names: Iterable[str], what: str) -> None:
        """Fail loudly when none of ``names`` matches, the classic chr1-vs-1 silent miss."""
        names = list(dict.fromkeys(names))
        if names and not any(self.resolve(n) is not None for n in names):
            raise InputDataError(
                f"none of the {len(names)} contigs in {what} ({', '.join(names[:3])}...) match the "
                f"FASTA's contigs ({', '.join(self.available[:3])}...)"
            )


# "chromosome 1," (NCBI RefSeq/GenBank: "NC_000001.11 Homo sapiens chromosome 1, GRCh38.p14 Primary Assembly"),
# "chromosome: 1" (ENA/EMBL: "LR999451.1 Arabidopsis arenosa genome assembly, chromosome: 1"), "chromosome IV",
# "chromosome 2L"; not Ensembl's "dna:chromosome chromosome:GRCh38:1:..." (its contig names are the numbers already)
_CHROMOSOME_IN_HEADER = re.compile(r"(?<![\w:])chromosome:?\s+([A-Za-z0-9]{1,6})(?=[\s,;]|$)", re.IGNORECASE)
_NOT_A_CHROMOSOME = {"un", "unknown", "chromosome"}


def chromosome_number(description: str) -> str | None:
    """The chromosome a FASTA record's description names (``"1"``, ``"X"``, ``"IV"``), or None.

    ``NC_000001.11 Homo sapiens chromosome 1, GRCh38.p14 Primary Assembly`` -> ``"1"``; an unlocalized
    scaffold or alternate locus of chromosome 1 is ``"1"`` too (its genes belong to that chromosome's side of
    a split); ``chromosome Un`` and descriptions naming no chromosome -> None.
    """
    m = _CHROMOSOME_IN_HEADER.search(description)
    if m is None or m.group(1).lower() in _NOT_A_CHROMOSOME:
        return None
    return strip_chr(m.group(1))


def contig_chromosomes(names: Iterable[str], descriptions: Iterable[str]) -> dict[str, str]:
    """``{contig: chromosome}`` for the FASTA records whose description names a chromosome other than the
    contig's own name (``{"NC_000001.11": "1"}``; ``chr1``/``1`` need no entry)."""
    out = {}
    for name, description in zip(names, descriptions):
        number = chromosome_number(description)
        if number is not None and number != strip_chr(name):
            out[name] = number
    return out


def chromosome_names(contig: str, chromosomes: dict[str, str] | None = None) -> set[str]:
    """What ``--test-chroms`` may call a contig: its name without ``chr`` and the chromosome its FASTA header
    names (``NC_000001.11`` -> ``{"NC_000001.11", "1"}``)."""
    names = {strip_chr(contig)}
    if chromosomes and contig in chromosomes:
        names.add(strip_chr(chromosomes[contig]))
    return names
