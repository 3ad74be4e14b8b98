"""Reference FASTA access (plain or bgzip-compressed, indexed on first use)."""

from __future__ import annotations

import os
from pathlib import Path

from meta_layer_cli.io.contigs import ContigResolver, strip_chr
from meta_layer_cli.runtime.errors import InputDataError
from meta_layer_cli.runtime.fingerprint import CHECKSUM_DIGITS


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
            ensure_fasta_index(self.path)
            self._fa = pysam.FastaFile(str(self.path))
        except (OSError, ValueError, pysam.utils.SamtoolsError) as err:
            hint = (
                " (gzip files must be bgzip-compressed: `bgzip -d` then `bgzip`)"
                if str(self.path).endswith(".gz")
                else ""
            )
            raise InputDataError(f"cannot read FASTA {self.path}: {err}{hint}") from None
        self.lengths = dict(zip(self._fa.references, self._fa.lengths))
        by_core: dict[str, str] = {}
        for name in self._fa.references:
            other = by_core.setdefault(strip_chr(name), name)
            if other != name:
                raise InputDataError(
                    f"FASTA {self.path.name} names both {other!r} and {name!r}: which one a {strip_chr(name)!r} in an "
                    "annotation or VCF means is ambiguous; keep one of them"
                )
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
            raise InputDataError(f"FASTA {self.path} is truncated: {name}:{lo}-{hi} returned {len(core)} nt")
        return "N" * (lo - start) + core + "N" * max(0, end - max(hi, start))

    def close(self) -> None:
        self._fa.close()


def ensure_fasta_index(path: str | os.PathLike) -> None:
    """Build ``PATH.fai`` (and ``PATH.gzi`` for bgzip) when missing or older than the FASTA.

    htslib writes a missing index in place when it opens a FASTA, so a job that opens the FASTA while
    another is writing its index reads a partial one (seen as a FASTA with no contigs: shard jobs of
    one genome start together). Here the index is written under a name of this process and thread,
    then renamed; concurrent builders write identical files, and readers see a whole index or none.
    An index older than the FASTA is rebuilt (it may describe another file); where the folder is
    read-only, an existing index is used as it is.
    """
    import threading

    import pysam

    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(14)
    compressed = head[:2] == b"\x1f\x8b"
    if compressed and not (len(head) == 14 and head[3] & 4 and head[12:14] == b"BC"):  # BGZF's extra field
        # said here, before htslib prints two lines of its own on stderr
        raise InputDataError("plain gzip, and random access needs bgzip")
    fai, gzi = Path(f"{path}.fai"), Path(f"{path}.gzi")
    wanted = [fai, gzi] if compressed else [fai]
    modified = path.stat().st_mtime
    if all(p.is_file() and p.stat().st_mtime >= modified for p in wanted):
        return
    tag = f".tmp-{os.getpid()}-{threading.get_ident()}"
    tmp_fai, tmp_gzi = Path(f"{fai}{tag}"), Path(f"{gzi}{tag}")
    args = [str(path), "--fai-idx", str(tmp_fai)] + (["--gzi-idx", str(tmp_gzi)] if compressed else [])
    try:
        pysam.faidx(*args)
        if compressed:
            os.replace(tmp_gzi, gzi)
        os.replace(tmp_fai, fai)  # last: a reader that finds the .fai finds the .gzi too
    except (OSError, pysam.utils.SamtoolsError) as err:
        if all(p.is_file() for p in wanted) and not os.access(path.parent, os.W_OK):
            return  # a read-only reference folder with an (older) index: use it as it is
        if isinstance(err, OSError):
            raise
        # samtools' message names the temporary files; htslib has printed its reason on stderr already
        raise InputDataError("htslib could not index it (truncated, or not a FASTA)") from None
    finally:
        for tmp in (tmp_fai, tmp_gzi):
            tmp.unlink(missing_ok=True)


def _decompressed(chunks, compressed: bool):
    """Yield the text of a plain or gzip/bgzip (multi-member) byte stream."""
    import zlib

    if not compressed:
        yield from chunks
        return
    inflate = None
    for chunk in chunks:
        data = chunk
        while data:
            inflate = inflate or zlib.decompressobj(zlib.MAX_WBITS | 32)
            yield inflate.decompress(data)
            data = inflate.unused_data
            if inflate.eof:
                inflate = zlib.decompressobj(zlib.MAX_WBITS | 32) if data else None
            else:
                break


def scan_fasta(path: str | os.PathLike, chunk_size: int = 1 << 22) -> tuple[str, list[str], list[str]]:
    """(checksum of the file's bytes, record names in file order, each record's description: the rest of its
    header line, ``""`` where none), reading the file once.

    Refuses a FASTA that names one contig twice (htslib's index keeps the first and ignores the
    rest without an error, so genes on the second copy would silently get the first's sequence).
    """
    import hashlib
    import zlib

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FASTA not found: {path}")
    digest = hashlib.sha256()
    names: list[str] = []
    descriptions: list[str] = []

    def header(line: bytes) -> None:
        fields = line.decode("ascii", "replace").split(None, 1)
        names.append(fields[0] if fields else "")
        descriptions.append(fields[1].strip() if len(fields) > 1 else "")

    def raw_chunks():
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(chunk_size), b""):
                digest.update(chunk)
                yield chunk

    with open(path, "rb") as fh:
        compressed = fh.read(2) == b"\x1f\x8b"
    carry = b""
    try:
        for text in _decompressed(raw_chunks(), compressed):
            buffer = carry + text
            last = buffer.rfind(b"\n")
            if last < 0:
                carry = buffer if buffer.startswith(b">") else buffer[:1]  # only a line's first byte matters
                continue
            complete, carry = buffer[: last + 1], buffer[last + 1 :]
            if not carry.startswith(b">"):
                carry = carry[:1]
            hit = 0 if complete.startswith(b">") else complete.find(b"\n>") + 1
            while hit > 0 or (hit == 0 and complete.startswith(b">")):
                end = complete.find(b"\n", hit)
                header(complete[hit + 1 : end])
                hit = complete.find(b"\n>", end) + 1
                if hit == 0:
                    break
        if carry.startswith(b">"):
            header(carry[1:])
    except zlib.error as err:
        raise InputDataError(f"FASTA {path.name}: corrupt compressed data ({err})") from None
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputDataError(f"FASTA {path.name} has two records named {name!r}; contig names must be unique")
        seen.add(name)
    return digest.hexdigest()[:CHECKSUM_DIGITS], names, descriptions
