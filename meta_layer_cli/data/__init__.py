"""Measured splicing-variant data sets, all as one table type (see :mod:`meta_layer_cli.data.loaders`)."""

from meta_layer_cli.data.loaders import (
    BASE_COLUMNS,
    load_mapsy,
    load_saturation_mutagenesis,
    load_splicevardb,
    load_vexseq,
    load_wt1_minigene,
)

__all__ = [
    "BASE_COLUMNS",
    "load_mapsy",
    "load_saturation_mutagenesis",
    "load_splicevardb",
    "load_vexseq",
    "load_wt1_minigene",
]
