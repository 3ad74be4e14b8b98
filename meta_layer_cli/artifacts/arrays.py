"""Tracks directories -> in-memory arrays for training and evaluation."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from meta_layer_cli.artifacts.sources import source_fingerprint
from meta_layer_cli.artifacts.tracks import finished_gene_ids, read_gene_track, read_manifest
from meta_layer_cli.io.sequence import sequence_to_codes
from meta_layer_cli.runtime.errors import InputDataError, reading


@dataclass
class GeneArrays:
    """One gene, transcript orientation: ``codes [L]`` (0-3 ACGT, 4 N), ``tracks [C, L]``, ``labels [L]``."""

    gene_id: str
    codes: np.ndarray
    tracks: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)


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
            raise InputDataError(f"{d} and {dirs[0]} were prepared from different genomes or annotations; "
                                 "stacked base models must score the same genes")  # fmt: skip


def common_gene_ids(tracks_dirs: Sequence[str | os.PathLike], manifests: Sequence[dict] | None = None) -> list[str]:
    """Genes finished in every directory, in the first manifest's order (``manifests``: theirs, if read)."""
    sets = [finished_gene_ids(d, m) for d, m in zip(tracks_dirs, manifests or [None] * len(tracks_dirs))]
    common = set(sets[0]).intersection(*sets[1:])
    return [g for g in sets[0] if g in common]


def load_gene_arrays(
    tracks_dirs: Sequence[str | os.PathLike] | str | os.PathLike,
    gene_ids: Sequence[str],
    manifests: Sequence[dict] | None = None,
) -> tuple[list[str], list[GeneArrays]]:
    """Load genes from one tracks directory, or several stacked side by side (channels concatenated).

    Stacked directories must describe the same genes (same sequence and labels). ``manifests``: the
    directories' manifests, for a caller that loads gene by gene (read here otherwise).
    """
    dirs = [tracks_dirs] if isinstance(tracks_dirs, (str, os.PathLike)) else list(tracks_dirs)
    if manifests is None:
        manifests = [read_manifest(d) for d in dirs]
    check_stackable(dirs, manifests)
    channels = stacked_channels(manifests)
    genes = []
    for gene_id in gene_ids:
        frames = [read_gene_track(d, gene_id) for d in dirs]
        with reading(f"the track of gene {gene_id} in {dirs[0]}"):  # columns missing or of the wrong type
            codes = _base_codes(frames[0])
            labels = frames[0]["label"].to_numpy().astype(np.int8)
            for d, f in zip(dirs[1:], frames[1:]):
                if len(f) != len(codes) or not np.array_equal(f["label"].to_numpy(), labels):
                    raise InputDataError(f"gene {gene_id}: tracks in {d} do not describe the same sequence/labels")
            tracks = np.concatenate(
                [f.select(m["channels"]).to_numpy().T.astype(np.float32) for f, m in zip(frames, manifests)]
            )
        genes.append(GeneArrays(gene_id, codes, np.ascontiguousarray(tracks), labels))
    return channels, genes
