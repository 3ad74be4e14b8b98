"""Variant models: sequence **and** base-model tracks of REF and ALT -> splicing effect.

Inputs (every model, same signature)
------------------------------------
``forward(x, kind=None)``, ``x`` a :class:`VariantInputs` of five tensors:

``ref_seq``, ``alt_seq`` : float ``[B, 4, L]``
    one-hot A, C, G, T (N all-zero) of a fixed window of ``L`` nt, both in **REF
    coordinates**. Indels: ALT is aligned to REF as SpliceAI aligns an indel's ALT
    track (:func:`meta_layer_cli.artifacts.sequences.alt_on_ref`): positions outside the
    changed segment map one to one; deleted REF positions are N (all-zero) in
    ``alt_seq``; inserted bases are not shown in ``alt_seq`` (there is no column
    for them) -- their effect reaches the model through ``alt_tracks``, where the
    inserted positions' scores are collapsed (maximum) onto the REF position
    before them, and through the ``variant`` mask channel.
``ref_tracks``, ``alt_tracks`` : float ``[B, C, L]``
    the base model's per-nucleotide probabilities (``C`` = its channels, e.g.
    neither/acceptor/donor or Pangolin's four tissues) for REF and ALT, ALT on
    REF coordinates as above; 0 where the window runs past the real sequence.
``mask`` : float ``[B, 2, L]``
    channel 0 ``exon``: 1 on the assayed exon; channel 1 ``variant``: 1 on the REF
    positions the variant changes (for a pure insertion, the two positions either
    side of it).
``kind`` : long ``[B]``, optional
    index into :data:`TARGET_KINDS` of the unit to predict in (each kind has its
    own readout and scale); default ``delta_psi_percent``.

Delta predictors also take ``ref_psi`` float ``[B]`` (keyword; percent, NaN where not
measured): the exon's inclusion in the reference allele. With ``link="logit_psi"`` they
predict a change in the exon's inclusion log-odds, ``y`` (a linear term in the base
model's own log-odds changes at the exon's acceptor and donor, :func:`site_logit_deltas`,
plus the network's correction), and report ``delta_psi_percent`` rows as
``100 * (sigmoid(logit(ref_psi) + y) - ref_psi)``: a variant cannot remove more inclusion
than the exon has, nor add more than it lacks (MMSplice's link). Rows without a
reference PSI use the training rows' median (``reference_psi``).

Outputs
-------
* delta predictors (``DeltaPredictor``, ``SimpleCNNDeltaPredictor``,
  ``ValidatedDeltaPredictor``, ``SiteLogitDeltaPredictor``): the predicted delta ``[B]`` in the units of the
  training target of that kind (percent delta PSI, log2 ratio, ...);
  ``quantiles()`` gives ``[B, Q]`` when built with quantile heads;
* ``SpliceInducingClassifier``: logit ``[B]`` of "splice-altering";
* ``EffectTypeClassifier``: logits ``[B, 7]`` over :data:`EFFECT_TYPES`;
* ``UnifiedSpliceClassifier``: ``(logit [B], effect logits [B, 7])``.

Build by name with :func:`build_variant_model`; checkpoints with
:func:`save_variant_model` / :func:`load_variant_model` (safetensors + JSON); run over a
dataset with :func:`predict_variants` / :func:`calibrated_predictions`.

Modules: :mod:`~meta_layer_cli.models.variant.config` (settings and names),
:mod:`~meta_layer_cli.models.variant.inputs` (inputs and tensor features),
:mod:`~meta_layer_cli.models.variant.architectures` (the networks),
:mod:`~meta_layer_cli.models.variant.checkpoint` (registry and checkpoints),
:mod:`~meta_layer_cli.models.variant.apply` (running a model over a dataset),
:mod:`~meta_layer_cli.models.variant.heldout` (calibration on held-out rows: isotonic, split-conformal),
:mod:`~meta_layer_cli.models.variant.factories` (the Python API: keyword factories, calibrated wrapper).
"""

from meta_layer_cli.features.variants import EFFECT_TYPES, MASK_CHANNELS, TARGET_KINDS
from meta_layer_cli.models.variant.apply import calibrated_predictions, model_outputs, predict_variants
from meta_layer_cli.models.variant.architectures import (
    AttentionPool,
    DeltaPredictor,
    EffectTypeClassifier,
    KindReadout,
    MeanMaxPool,
    SimpleCNNDeltaPredictor,
    SiteLogitDeltaPredictor,
    SiteLogitTerm,
    SitePool,
    SpliceInducingClassifier,
    UnifiedSpliceClassifier,
    ValidatedDeltaPredictor,
    VariantModel,
    base_sites,
    kind_index,
)
from meta_layer_cli.models.variant.checkpoint import build_variant_model, load_variant_model, save_variant_model
from meta_layer_cli.models.variant.config import (
    CLASSIFIERS,
    DEFAULT_CHANNELS,
    DELTA_MODELS,
    VARIANT_MODELS,
    VariantArchitecture,
    VariantModelConfig,
    VariantModelName,
    keyword_config,
)
from meta_layer_cli.models.variant.factories import (
    CalibratedDeltaPredictor,
    CalibratedPrediction,
    create_calibrated_predictor,
    create_validated_delta_predictor,
)
from meta_layer_cli.models.variant.heldout import HELDOUT_METHODS, HeldOutCalibration, conformal_half_width
from meta_layer_cli.models.variant.inputs import (
    VariantInputs,
    exon_ends,
    pair_features,
    psi_link,
    site_logit_deltas,
    site_logit_features,
    track_features,
)

__all__ = [
    "CLASSIFIERS",
    "DEFAULT_CHANNELS",
    "DELTA_MODELS",
    "EFFECT_TYPES",
    "HELDOUT_METHODS",
    "MASK_CHANNELS",
    "TARGET_KINDS",
    "VARIANT_MODELS",
    "AttentionPool",
    "CalibratedDeltaPredictor",
    "CalibratedPrediction",
    "DeltaPredictor",
    "EffectTypeClassifier",
    "HeldOutCalibration",
    "KindReadout",
    "MeanMaxPool",
    "SimpleCNNDeltaPredictor",
    "SiteLogitDeltaPredictor",
    "SiteLogitTerm",
    "SitePool",
    "SpliceInducingClassifier",
    "UnifiedSpliceClassifier",
    "ValidatedDeltaPredictor",
    "VariantArchitecture",
    "VariantInputs",
    "VariantModel",
    "VariantModelConfig",
    "VariantModelName",
    "base_sites",
    "build_variant_model",
    "calibrated_predictions",
    "conformal_half_width",
    "create_calibrated_predictor",
    "create_validated_delta_predictor",
    "exon_ends",
    "keyword_config",
    "kind_index",
    "load_variant_model",
    "model_outputs",
    "pair_features",
    "predict_variants",
    "psi_link",
    "save_variant_model",
    "site_logit_deltas",
    "site_logit_features",
    "track_features",
]
