"""metalayer: a base-model-agnostic meta-layer for splice-site prediction.

Layers (imports only point down): ``io`` -> ``base_models`` -> ``artifacts`` -> ``cli``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_base_model", "predict_tracks", "score_sequences", "score_vcf"]


def __getattr__(name: str):
    # Lazy so that ``import meta_layer_cli`` stays cheap (no torch import) for the CLI's --help.
    if name == "load_base_model":
        from meta_layer_cli.base_models import load_base_model

        return load_base_model
    if name == "predict_tracks":
        from meta_layer_cli.artifacts import predict_tracks

        return predict_tracks
    if name == "score_vcf":
        from meta_layer_cli.inference.vcf import score_vcf

        return score_vcf
    if name == "score_sequences":
        from meta_layer_cli.artifacts.sequences import score_sequences

        return score_sequences
    raise AttributeError(f"module 'metalayer' has no attribute {name!r}")
