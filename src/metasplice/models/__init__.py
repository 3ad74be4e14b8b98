"""Neural networks of the meta-layer. Tensors are ``[batch, channels, length]`` throughout."""

from metasplice.models.encoders import GatedDilatedCNN, HyenaEncoder, ScoreMLP
from metasplice.models.fusion import ConcatFusion, CrossAttentionFusion
from metasplice.models.meta import MetaModelConfig, MetaSpliceModel, MetaSpliceModelV2, build_meta_model
from metasplice.models.structure import GeneStructureDecoder

__all__ = [
    "ConcatFusion",
    "CrossAttentionFusion",
    "GatedDilatedCNN",
    "GeneStructureDecoder",
    "HyenaEncoder",
    "MetaModelConfig",
    "MetaSpliceModel",
    "MetaSpliceModelV2",
    "ScoreMLP",
    "build_meta_model",
]

from metasplice.models.variant import (  # noqa: E402
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
