"""Applying trained meta models to new data."""

from meta_layer_cli.inference.recalibrate import recalibrate

__all__ = ["recalibrate"]

from meta_layer_cli.inference.variant_models import load_variant_predictor, score_sequences_with_models  # noqa: E402

__all__ += ["load_variant_predictor", "score_sequences_with_models"]
