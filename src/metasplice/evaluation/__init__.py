"""Metrics for per-nucleotide splice-site scores."""

from metasplice.evaluation.metrics import (
    average_precision,
    confusion_at,
    site_metrics,
    topk_accuracy,
)
from metasplice.evaluation.tracks import evaluate_tracks

__all__ = ["average_precision", "confusion_at", "evaluate_tracks", "site_metrics", "topk_accuracy"]
