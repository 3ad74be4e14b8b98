"""Metrics for per-nucleotide splice-site scores."""

from meta_layer_cli.evaluation.metrics import (
    average_precision,
    canonical_metrics,
    confusion_at,
    expected_calibration_error,
    f1_optimal_threshold,
    reliability_curve,
    site_metrics,
    topk_accuracy,
)
from meta_layer_cli.evaluation.tracks import evaluate_tracks

__all__ = [
    "average_precision",
    "canonical_metrics",
    "confusion_at",
    "evaluate_tracks",
    "expected_calibration_error",
    "f1_optimal_threshold",
    "reliability_curve",
    "site_metrics",
    "topk_accuracy",
]
