"""Derived score features: one definition, used at training and at inference."""

from meta_layer_cli.features.normalize import FeatureNormalizer
from meta_layer_cli.features.scores import ScoreFeatures, feature_names, score_features

__all__ = ["FeatureNormalizer", "ScoreFeatures", "feature_names", "score_features"]
