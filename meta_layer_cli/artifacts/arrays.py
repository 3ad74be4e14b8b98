"""Tracks folders -> per-gene arrays for training and evaluation, read on demand.

A whole genome's arrays do not fit in memory (GRCh38's protein-coding genes are ~1.3 Gnt, 14 bytes
each), so :func:`load_gene_arrays` returns :class:`StoredGeneArrays`: each gene's ``codes``,
``tracks`` and ``labels`` are memory-mapped views of one binary file, opened when a caller reads
them and unmapped when it lets go. The files form a *gene store* derived once from the folder's
parquet files: ``arrays/<gene file>.<key>.bin`` beside ``genes/`` (or, when the folder is read-only,
under :func:`~meta_layer_cli.artifacts.sources.default_cache_dir` ``/arrays/<folder key>/``). Each
file is written atomically; its ``key`` is the parquet file's size and modification time, so a
gene that ``prepare --overwrite`` rewrote is converted again, never read stale.

One raw file (no header: ``C`` comes from the manifest, ``L`` from the manifest or the file's size) holds
``tracks`` (float32 ``[C, L]``, native byte order), then ``codes`` (``[L]``, 0-3 ACGT, 4 N), then ``labels``
(int8 ``[L]``): 4C + 2 bytes per nucleotide.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from meta_layer_cli.artifacts.sources import default_cache_dir, source_fingerprint
from meta_layer_cli.artifacts.tracks import (
    GENES_DIR,
    GeneTable,
    finished_gene_ids,
    gene_file_name,
    gene_track_path,
    manifest_genes,
    read_gene_track,
    read_manifest,
)
from meta_layer_cli.io.atomic import atomic_path
from meta_layer_cli.io.sequence import sequence_to_codes
from meta_layer_cli.runtime.errors import InputDataError, reading
from meta_layer_cli.runtime.fingerprint import value_checksum
from meta_layer_cli.runtime.progress import Progress

ARRAYS_DIR = "arrays"


@dataclass
class GeneArrays:
    """One gene, transcript orientation: ``codes [L]`` (0-3 ACGT, 4 N), ``tracks [C, L]``, ``labels [L]``."""

    gene_id: str
    codes: np.ndarray
    tracks: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)

    def tracks_slice(self, start: int, end: int) -> np.ndarray:
        """``tracks[:, start:end]`` (``0 <= start <= end <= len``), without reading the rest of the gene."""
        return self.tracks[:, start:end]


def _base_codes(frame: pl.DataFrame) -> np.ndarray:
    return sequence_to_codes(frame["base"].cast(pl.Utf8).str.join("").item())


def stacked_channels(manifests: Sequence[dict]) -> list[str]:
    """Channel names; prefixed ``model:channel`` when several base models are stacked."""
    if len(manifests) == 1:
        return list(manifests[0]["channels"])
    names = [m["base_model"]["name"] for m in manifests]
    tags = [n if names.count(n) == 1 else f"{n}{i}" for i, n in enumerate(names)]
    return [f"{t}:{c}" for t, m in zip(tags, manifests) for c in m["channels"]]


def check_stackable(dirs: Sequence[str | os.PathLike], manifests: Sequence[dict]) -> None:
    """Tracks folders stacked side by side must describe the same genes (same source fingerprint)."""
    first = source_fingerprint(manifests[0]["fingerprint"])
    for d, m in zip(dirs[1:], manifests[1:]):
        if source_fingerprint(m["fingerprint"]) != first:
            raise InputDataError(
                f"{d} and {dirs[0]} were prepared from different genomes or annotations; "
                "stacked base models must score the same genes"
            )


def common_gene_ids(tracks_dirs: Sequence[str | os.PathLike], manifests: Sequence[dict] | None = None) -> list[str]:
    """Genes finished in every directory, in the first manifest's order (``manifests``: theirs, if read)."""
    sets = [finished_gene_ids(d, m) for d, m in zip(tracks_dirs, manifests or [None] * len(tracks_dirs))]
    common = set(sets[0]).intersection(*sets[1:])
    return [g for g in sets[0] if g in common]


# ---------------------------------------------------------------------------------------------
# the gene store
# ---------------------------------------------------------------------------------------------
def store_dir(tracks_dir: str | os.PathLike, manifest: dict) -> Path:
    """Where a tracks folder's gene arrays live: ``arrays/`` inside it when it is writable, else the cache."""
    root = Path(tracks_dir)
    inside = root / ARRAYS_DIR
    if (inside.is_dir() and os.access(inside, os.W_OK)) or (not inside.exists() and os.access(root, os.W_OK)):
        return inside
    key = value_checksum([manifest["fingerprint"], str(root.resolve())])
    return default_cache_dir() / ARRAYS_DIR / key


@dataclass(frozen=True, slots=True)
class GeneFile:
    """One gene's arrays on disk (see the module docstring): ``channels`` tracks of ``length`` nt.

    Made when a gene is read (:meth:`GeneStore.file`), not held for every gene of a run."""

    directory: Path
    name: str
    channels: int
    length: int

    @property
    def path(self) -> Path:
        return self.directory / self.name

    def _raw(self) -> np.ndarray:
        # copy-on-write: callers may write into what they read (torch wants writable arrays) without
        # touching the file; pages are read from disk only where a caller looks, and unmapped with the last view
        with open(self.path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size != (4 * self.channels + 2) * self.length:
                raise InputDataError(
                    f"{self.path}: {size} bytes, expected {self.channels} tracks of {self.length} "
                    "nt; delete it to convert the gene again"
                )
            if size == 0:
                return np.zeros(0, np.uint8)
            return np.frombuffer(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY), dtype=np.uint8)

    def tracks(self) -> np.ndarray:
        """``[C, L]`` float32 (a memory-mapped view)."""
        n = 4 * self.channels * self.length
        return self._raw()[:n].view(np.float32).reshape(self.channels, self.length)

    def codes(self) -> np.ndarray:
        n = 4 * self.channels * self.length
        return self._raw()[n : n + self.length]

    def labels(self) -> np.ndarray:
        n = 4 * self.channels * self.length
        return self._raw()[n + self.length :].view(np.int8)


def _key(parquet: str | os.PathLike, st: os.stat_result | None = None) -> str:
    st = st or os.stat(parquet)
    return hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:10]


def _store_name(parquet_name: str, key: str) -> str:
    """``<gene's parquet file name without .parquet>.<key>.bin``: the one spelling of a gene-store file's name."""
    return f"{parquet_name.removesuffix('.parquet')}.{key}.bin"


def array_file_name(tracks_dir: str | os.PathLike, gene_id: str) -> str:
    """The gene store's file name of a gene (its parquet file's name, with the key of that file's state)."""
    return _store_name(gene_file_name(gene_id), _key(gene_track_path(tracks_dir, gene_id)))


def convert_gene(tracks_dir: str | os.PathLike, gene_id: str, channels: Sequence[str], target: Path) -> int:
    """Write one gene's arrays from its parquet file to ``target`` (atomically); returns its length."""
    frame = read_gene_track(tracks_dir, gene_id)
    with reading(f"the track of gene {gene_id} in {tracks_dir}"):  # columns missing or of the wrong type
        codes = _base_codes(frame)
        labels = frame["label"].to_numpy().astype(np.int8)
        tracks = np.ascontiguousarray(frame.select(list(channels)).to_numpy().T.astype(np.float32))
    raw = np.concatenate([tracks.reshape(-1).view(np.uint8), codes.astype(np.uint8), labels.view(np.uint8)])
    with atomic_path(target) as tmp:
        raw.tofile(tmp)
    return len(codes)


@dataclass(frozen=True)
class GeneStore:
    """The gene-store files of ``gene_ids`` in one folder, held as two numbers a gene: each file's key (the
    state of the gene's parquet file, 10 hex digits) and its length. Names are derived when a gene is read, so
    a run over 100,000 genes holds ~16 bytes a gene here, not a handle object and a path string for each."""

    directory: Path
    channels: int
    gene_ids: Sequence[str]
    keys: np.ndarray  # int64 [G]
    lengths: np.ndarray  # int64 [G]

    def file(self, i: int) -> GeneFile:
        name = _store_name(gene_file_name(self.gene_ids[i]), f"{int(self.keys[i]):010x}")
        return GeneFile(self.directory, name, self.channels, int(self.lengths[i]))


def planned_lengths(planned: GeneTable, gene_ids: Sequence[str]) -> np.ndarray:
    """``int64 [len(gene_ids)]``: each gene's length as the manifest plans it (-1 where it says none)."""
    return planned.values_for("length", gene_ids).fill_null(-1).to_numpy().astype(np.int64)


def gene_files(
    tracks_dir: str | os.PathLike, gene_ids: Sequence[str], manifest: dict | None = None, progress: bool | None = None
) -> GeneStore:
    """The gene store's file of each gene, converting from parquet those not converted yet (or stale)."""
    manifest = manifest or read_manifest(tracks_dir)
    channels = list(manifest["channels"])
    directory = store_dir(tracks_dir, manifest)
    lengths = planned_lengths(manifest_genes(manifest), gene_ids)
    present = set(os.listdir(directory)) if directory.is_dir() else set()
    per_nt = 4 * len(channels) + 2
    keys = np.zeros(len(gene_ids), dtype=np.int64)
    sizes = np.zeros(len(gene_ids), dtype=np.int64)
    todo, stale = [], []
    store, genes = os.fspath(directory), os.path.join(os.fspath(tracks_dir), GENES_DIR)
    for i, gene_id in enumerate(gene_ids):
        # plain strings, not a Path per gene: pathlib interns every path part it parses, for good
        name = gene_file_name(gene_id)
        parquet = os.path.join(genes, name)
        try:  # one stat a gene: whole genomes have 100,000s of them
            st = os.stat(parquet)
        except FileNotFoundError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            raise FileNotFoundError(f"no track for gene {gene_id!r} in {tracks_dir}")
        key = _key(parquet, st)
        keys[i] = int(key, 16)
        target, stem = _store_name(name, key), name.removesuffix(".parquet")
        if target in present:  # converted
            if lengths[i] >= 0:  # the manifest says how long (GeneFile checks the file's size)
                sizes[i] = lengths[i]
                continue
            size = os.stat(os.path.join(store, target)).st_size  # else the file's size says it
            if size % per_nt == 0:
                sizes[i] = size // per_nt
                continue
            os.unlink(os.path.join(store, target))  # not one of ours (an interrupted copy?): convert again
            present.discard(target)
        sizes[i] = max(int(lengths[i]), 0)
        stale.append(stem)
        todo.append(i)
    if stale and present:  # arrays of an older parquet file of the same gene (prepare --overwrite)
        old = set(stale)
        for name in present:
            if name.endswith(".bin") and name.rsplit(".", 2)[0] in old:
                (directory / name).unlink(missing_ok=True)
    files = GeneStore(directory, len(channels), gene_ids, keys, sizes)
    if todo:
        total = int(sizes[todo].sum()) or None
        with Progress(f"gene arrays ({Path(tracks_dir).name})", total=total, unit="nt", enabled=progress) as bar:
            for n, i in enumerate(todo):
                sizes[i] = convert_gene(tracks_dir, gene_ids[i], channels, files.file(i).path)
                bar.update(int(sizes[i]), genes=f"{n + 1:,}/{len(todo):,}")
    return files


class StoredGeneArrays(GeneArrays):
    """A :class:`GeneArrays` read from the gene store on each access (one or several stacked folders).

    ``codes``, ``labels`` and (one folder) ``tracks`` are memory-mapped views: only the pages a caller
    touches are read, and they are released when the views are dropped.
    """

    def __init__(self, gene_id: str, parts: Sequence[GeneFile]):  # noqa: D107 (no dataclass fields)
        self.gene_id = gene_id
        self.parts = tuple(parts)

    def __repr__(self) -> str:
        return f"StoredGeneArrays({self.gene_id!r}, {len(self)} nt, {len(self.parts)} folder(s))"

    def __len__(self) -> int:
        return self.parts[0].length

    @property  # type: ignore[override]
    def codes(self) -> np.ndarray:
        return self.parts[0].codes()

    @property  # type: ignore[override]
    def labels(self) -> np.ndarray:
        return self.parts[0].labels()

    @property  # type: ignore[override]
    def tracks(self) -> np.ndarray:
        if len(self.parts) == 1:
            return self.parts[0].tracks()
        return np.concatenate([p.tracks() for p in self.parts])

    def tracks_slice(self, start: int, end: int) -> np.ndarray:
        return np.concatenate([p.tracks()[:, start:end] for p in self.parts])


class StoredGenes(Sequence[GeneArrays]):
    """The genes of a run as a sequence of :class:`StoredGeneArrays`, made when a gene is read: what a run holds
    per gene is its id and :class:`GeneStore`'s two numbers per folder (a list of objects: ~600 bytes a gene)."""

    def __init__(self, gene_ids: Sequence[str], stores: Sequence[GeneStore]):
        self.gene_ids, self.stores = gene_ids, tuple(stores)

    def __len__(self) -> int:
        return len(self.gene_ids)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return StoredGeneArrays(self.gene_ids[i], [s.file(i) for s in self.stores])

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    @property
    def lengths(self) -> np.ndarray:
        """``[G]`` int64, read-only: every gene's length, without opening a file."""
        view = self.stores[0].lengths.view()
        view.flags.writeable = False
        return view


def gene_lengths(genes: Sequence[GeneArrays]) -> np.ndarray:
    """``[G]`` int64: each gene's length. A :class:`StoredGenes` answers from its store, without making an
    object per gene (a run asks this of 100,000s of genes several times: totals, sampling weights, samples)."""
    if isinstance(genes, StoredGenes):
        return genes.lengths
    return np.fromiter((len(g) for g in genes), dtype=np.int64, count=len(genes))


def load_gene_arrays(
    tracks_dirs: Sequence[str | os.PathLike] | str | os.PathLike,
    gene_ids: Sequence[str],
    manifests: Sequence[dict] | None = None,
    progress: bool | None = None,
) -> tuple[list[str], StoredGenes]:
    """(channels, a :class:`StoredGenes`: one :class:`StoredGeneArrays` per gene) from one tracks directory,
    or several stacked side by side (channels concatenated); nothing is held in memory but the genes' ids and
    two numbers each.

    Stacked directories must describe the same genes (same sequence and labels). ``manifests``: the
    directories' manifests, if already read. Genes not yet in the gene store are converted first
    (a progress phase of their own; ``progress=None``: shown as the phase it runs in is).
    """
    dirs = [tracks_dirs] if isinstance(tracks_dirs, (str, os.PathLike)) else list(tracks_dirs)
    if manifests is None:
        manifests = [read_manifest(d) for d in dirs]
    check_stackable(dirs, manifests)
    channels = stacked_channels(manifests)
    gene_ids = list(gene_ids)
    stores = [gene_files(d, gene_ids, m, progress) for d, m in zip(dirs, manifests)]
    genes = StoredGenes(gene_ids, stores)
    for d, store in zip(dirs[1:], stores[1:]):
        for i, gene_id in enumerate(gene_ids):
            first, other = stores[0].file(i), store.file(i)
            if other.length != first.length or not np.array_equal(other.labels(), first.labels()):
                raise InputDataError(f"gene {gene_id}: tracks in {d} do not describe the same sequence/labels")
    return channels, genes


def in_memory(gene: GeneArrays) -> GeneArrays:
    """A copy of ``gene`` held in memory (for a caller that reads one gene many times)."""
    return GeneArrays(gene.gene_id, np.array(gene.codes), np.array(gene.tracks), np.array(gene.labels))
