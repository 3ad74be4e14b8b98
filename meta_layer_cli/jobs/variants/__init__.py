"""Variant models on measured splicing effects: training, evaluation and calibration of a checkpoint.

* :func:`run_validated_delta_training` (``metalayer train-delta``): exon-grouped cross-validation,
  then a final model, in a run folder guarded by :class:`~meta_layer_cli.jobs.run_folder.RunFolder`
  (lock, ``--resume``, ``--overwrite``, ``--if-changed``);
* :func:`evaluate_variant_checkpoint` (``metalayer evaluate --checkpoint DELTA --variants TABLE``): a
  checkpoint's metrics on a measured table of exons it never saw, beside the raw base-model deltas;
* :func:`calibrate_variant_checkpoint` (``metalayer calibrate --checkpoint DELTA --variants TABLE``):
  an isotonic map or a split-conformal interval fitted on such a table, written as a new checkpoint.

A checkpoint records the base model (:class:`~meta_layer_cli.base_models.record.BaseModelRecord`,
found again by :meth:`~meta_layer_cli.base_models.record.BaseModelRecord.load`) and the exon groups
it was trained on (``run.training_groups``) and calibrated on (``run.calibration_groups``): the
exons whose rows are refused as "held-out" data.
"""

from meta_layer_cli.jobs.variants.calibration import VariantCalibrationResult, calibrate_variant_checkpoint
from meta_layer_cli.jobs.variants.common import metrics_table, read_measured_table
from meta_layer_cli.jobs.variants.evaluation import evaluate_variant_checkpoint, format_variant_evaluation
from meta_layer_cli.jobs.variants.training import (
    VariantTrainingResult,
    delta_fingerprint,
    resolve_variant_config,
    run_validated_delta_training,
    table_checksum,
)

__all__ = [
    "VariantCalibrationResult",
    "VariantTrainingResult",
    "calibrate_variant_checkpoint",
    "delta_fingerprint",
    "evaluate_variant_checkpoint",
    "format_variant_evaluation",
    "metrics_table",
    "read_measured_table",
    "resolve_variant_config",
    "run_validated_delta_training",
    "table_checksum",
]
