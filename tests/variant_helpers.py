"""Shared pieces of the variant-model tests: tiny architectures, small real data sets, OpenSpliceAI-80nt tracks."""

from __future__ import annotations

import polars as pl

from tests.conftest import shared_path

TINY_ARCHITECTURE = {"width": 8, "kernel": 5, "dilations": [1, 2, 4], "dropout": 0.0, "heads": 2}
TINY_TRAINING = {"epochs": 2, "patience": 2, "lr": 3e-3}
TINY_HARDWARE = {"batch_size": 8, "device": "cpu"}


def osai80_weights() -> str:
    return str(shared_path("models", "openspliceai-mane", "80nt"))


def vexseq_path() -> str:
    return str(shared_path("data", "variants", "vexseq_hepg2_train.csv"))


def mapsy_path() -> str:
    return str(shared_path("data", "variants", "mapsy.csv"))


def small_vexseq(n: int = 40, seed: int = 0) -> pl.DataFrame:
    """``n`` real Vex-seq rows, a seeded sample (so they span many exons)."""
    from meta_layer_cli.io.assays import load_vexseq

    frame = load_vexseq(vexseq_path())
    sample = frame.with_row_index("_r").sample(n=n, seed=seed).sort("_r").drop("_r")
    return sample
