"""Applying trained meta models to new data."""

from metasplice.inference.recalibrate import recalibrate

__all__ = ["recalibrate"]

from metasplice.inference.variant_models import load_variant_predictor, score_sequences_with_models  # noqa: E402

__all__ += ["load_variant_predictor", "score_sequences_with_models"]
