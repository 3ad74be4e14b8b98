"""metalayer: a base-model-agnostic meta-layer for splice-site prediction.

Layers (imports only point down): ``runtime`` -> ``io`` -> ``base_models`` -> ``artifacts`` -> ``features``
-> ``models`` -> ``evaluation`` -> ``training`` -> ``inference`` -> ``jobs`` -> ``commands``.

The names below import lazily from the package root, e.g. ``from meta_layer_cli import
create_validated_delta_predictor``.
"""

from __future__ import annotations

__version__ = "0.1.0"

#: public name -> module it lives in (imported on first use, so ``import meta_layer_cli`` stays cheap)
_EXPORTS = {
    "load_base_model": "meta_layer_cli.base_models",
    "predict_tracks": "meta_layer_cli.artifacts",
    "score_vcf": "meta_layer_cli.inference.vcf",
    "score_sequences": "meta_layer_cli.artifacts.sequences",
    # canonical jobs: every command is one of these first
    "prepare": "meta_layer_cli.jobs.prepare",
    "run_canonical_training": "meta_layer_cli.jobs.canonical",
    "FolderPolicy": "meta_layer_cli.jobs.run_folder",  # --resume / --overwrite / --if-changed of a training job
    "evaluate_checkpoint": "meta_layer_cli.jobs.canonical",
    "calibrate_checkpoint": "meta_layer_cli.jobs.calibrate",
    "calibrate_base_model": "meta_layer_cli.jobs.calibrate",
    "predict_genes": "meta_layer_cli.jobs.predict",
    "predict_variant_table": "meta_layer_cli.jobs.predict",
    "run_pipeline": "meta_layer_cli.jobs.pipeline",
    "run_demo": "meta_layer_cli.jobs.demo",
    # variant models: the Python API and the jobs
    "build_variant_dataset": "meta_layer_cli.features.variants",
    "create_validated_delta_predictor": "meta_layer_cli.models.variant.factories",
    "create_calibrated_predictor": "meta_layer_cli.models.variant.factories",
    "CalibratedDeltaPredictor": "meta_layer_cli.models.variant.factories",
    "SimpleCNNDeltaPredictor": "meta_layer_cli.models.variant.architectures",
    "ValidatedDeltaPredictor": "meta_layer_cli.models.variant.architectures",
    "load_variant_predictor": "meta_layer_cli.inference.variant_models",
    "run_validated_delta_training": "meta_layer_cli.jobs.variants",
    "evaluate_variant_checkpoint": "meta_layer_cli.jobs.variants",
    "calibrate_variant_checkpoint": "meta_layer_cli.jobs.variants",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    # Lazy so that ``import meta_layer_cli`` stays cheap (no torch import) for the CLI's --help.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'metalayer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
