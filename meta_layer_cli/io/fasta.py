"""Reference FASTA access (plain or bgzip-compressed, indexed on first use)."""

from __future__ import annotations

import os
from pathlib import Path

from meta_layer_cli.io.contigs import ContigResolver


class Fasta:
    """Random access to a reference genome.

    ``fetch`` takes 0-based half-open coordinates and pads with N beyond the
    contig ends, so a gene near a telomere still gets its full model context.
    Contig names are matched with :class:`ContigResolver` (``chr1`` == ``1``).
    """

    def __init__(self, path: str | os.PathLike):
        import pysam

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"FASTA not found: {self.path}")
        try:
            self._fa = pysam.FastaFile(str(self.path))
        except (OSError, ValueError) as err:
            hint = (
                " (gzip files must be bgzip-compressed: `bgzip -d` then `bgzip`)"
                if str(self.path).endswith(".gz")
                else ""
            )
            raise ValueError(f"cannot read FASTA {self.path}: {err}{hint}") from None
        self.lengths = dict(zip(self._fa.references, self._fa.lengths))
        self.contigs = ContigResolver(self._fa.references)

    def __contains__(self, chrom: str) -> bool:
        return self.contigs.resolve(chrom) is not None

    def length(self, chrom: str) -> int:
        return self.lengths[self.contigs.require(chrom, f"FASTA {self.path.name}")]

    def fetch(self, chrom: str, start: int, end: int) -> str:
        """Uppercase sequence of ``chrom[start:end]`` (0-based, half-open), N-padded off the ends."""
        name = self.contigs.require(chrom, f"FASTA {self.path.name}")
        size = self.lengths[name]
        lo, hi = max(start, 0), min(end, size)
        core = self._fa.fetch(name, lo, hi).upper() if hi > lo else ""
        if hi > lo and len(core) != hi - lo:
            raise ValueError(f"FASTA {self.path} is truncated: {name}:{lo}-{hi} returned {len(core)} nt")
        return "N" * (lo - start) + core + "N" * max(0, end - max(hi, start))

    def close(self) -> None:
        self._fa.close()
