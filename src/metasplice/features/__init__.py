"""Derived score features: one definition, used at training and at inference."""

from metasplice.features.normalize import FeatureNormalizer
from metasplice.features.scores import ScoreFeatures, feature_names, score_features

__all__ = ["FeatureNormalizer", "ScoreFeatures", "feature_names", "score_features"]
