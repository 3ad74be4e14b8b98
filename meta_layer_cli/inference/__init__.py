"""Applying trained models to new data: whole genes (``predict``), variant tables, VCFs."""

from meta_layer_cli.inference.genes import recalibrate_tracks

__all__ = ["recalibrate_tracks"]

from meta_layer_cli.inference.variant_models import load_variant_predictor, score_sequences_with_models  # noqa: E402

__all__ += ["load_variant_predictor", "score_sequences_with_models"]
