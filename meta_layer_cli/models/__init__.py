"""Neural networks of the meta-layer. Tensors are ``[batch, channels, length]`` throughout."""

from meta_layer_cli.models.encoders import GatedDilatedCNN, HyenaEncoder, ScoreMLP
from meta_layer_cli.models.fusion import ConcatFusion, CrossAttentionFusion
from meta_layer_cli.models.meta import MetaLayerModel, MetaLayerWindowModel, MetaModelConfig, build_meta_model
from meta_layer_cli.models.structure import GeneStructureDecoder

__all__ = [
    "ConcatFusion",
    "CrossAttentionFusion",
    "GatedDilatedCNN",
    "GeneStructureDecoder",
    "HyenaEncoder",
    "MetaModelConfig",
    "MetaLayerWindowModel",
    "MetaLayerModel",
    "ScoreMLP",
    "build_meta_model",
]

from meta_layer_cli.models.variant import (  # noqa: E402
    DeltaPredictor,
    EffectTypeClassifier,
    SimpleCNNDeltaPredictor,
    SpliceInducingClassifier,
    UnifiedSpliceClassifier,
    ValidatedDeltaPredictor,
    VariantModelConfig,
    build_variant_model,
    load_variant_model,
    save_variant_model,
)

__all__ += [
    "DeltaPredictor",
    "EffectTypeClassifier",
    "SimpleCNNDeltaPredictor",
    "SpliceInducingClassifier",
    "UnifiedSpliceClassifier",
    "ValidatedDeltaPredictor",
    "VariantModelConfig",
    "build_variant_model",
    "load_variant_model",
    "save_variant_model",
]
