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
:func:`save_variant_model` / :func:`load_variant_model` (safetensors + JSON).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, NamedTuple, get_args

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from meta_layer_cli.models.calibration import CALIBRATIONS, DEFAULT_QUANTILES
from meta_layer_cli.models.encoders import GatedDilatedCNN

EFFECT_TYPES = ("donor_gain", "donor_loss", "acceptor_gain", "acceptor_loss", "exon_skipping", "normal", "complex")
TARGET_KINDS = ("delta_psi_percent", "log2_ratio", "splice_altering")
MASK_CHANNELS = ("exon", "variant")
TRACK_EPS = 1e-3
LOGIT_EPS = 1e-4  # base probabilities are clipped to [e, 1 - e] before log-odds
SITE_WINDOW = 2  # the base model's site probability: its maximum within +-2 nt of the exon end
VariantModelName = Literal["splice_inducing", "effect_type", "unified", "delta", "simple_cnn", "validated",
                           "site_logit"]  # fmt: skip
VARIANT_MODELS: tuple[str, ...] = get_args(VariantModelName)
DELTA_MODELS = ("delta", "simple_cnn", "validated", "site_logit")
CLASSIFIERS = ("splice_inducing", "effect_type", "unified")


class VariantInputs(NamedTuple):
    """One batch of variant-model inputs (shapes and meaning in the module docstring)."""

    ref_seq: torch.Tensor  # [B, 4, L]
    alt_seq: torch.Tensor  # [B, 4, L], on REF coordinates
    ref_tracks: torch.Tensor  # [B, C, L]
    alt_tracks: torch.Tensor  # [B, C, L], on REF coordinates
    mask: torch.Tensor  # [B, 2, L]: exon, variant

    @classmethod
    def from_batch(cls, batch: dict[str, torch.Tensor]) -> VariantInputs:
        """The inputs among :meth:`meta_layer_cli.training.variant_data.VariantDataset.batch`'s tensors."""
        return cls(*(batch[name] for name in cls._fields))


class VariantArchitecture(BaseModel):
    """The settings of a variant model a user chooses (the ``architecture`` section of
    ``configs/variants.yaml``). Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    width: int = Field(32, gt=0)
    kernel: int = Field(9, gt=0)
    dilations: list[int] = [1, 2, 4, 8, 16, 32]
    dropout: float = Field(0.1, ge=0, lt=1)
    attention: bool = True  # attention pooling over positions (validated, splice_inducing, effect_type)
    heads: int = Field(4, gt=0)
    calibration: Literal["none", "quantile", "isotonic", "temperature"] = "none"
    quantiles: list[float] | None = None  # with calibration=quantile; default 0.1, 0.5, 0.9
    # delta predictors: identity (each kind in its own units) or logit_psi (see the module docstring);
    # None: logit_psi for site_logit, identity for the others
    link: Literal["identity", "logit_psi"] | None = None


class VariantModelConfig(VariantArchitecture):
    """Architecture of a variant model; stored in the checkpoint's ``config.json``. Unknown keys are errors.

    :class:`VariantArchitecture` plus the model's name and what runs fill in: ``channels``
    (the base model's channel names, from the data) and ``target_kinds`` (from the trainer).
    """

    architecture: VariantModelName = "validated"
    channels: list[str] = []
    target_kinds: list[str] = []  # kinds the model was trained on
    reference_psi: float = Field(50.0, ge=0, le=100)  # logit_psi: delta PSI rows without one (training median)

    @model_validator(mode="after")
    def _check(self) -> VariantModelConfig:
        if self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd, got {self.kernel}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by heads {self.heads}")
        if self.calibration not in CALIBRATIONS:  # pragma: no cover - Literal already checks
            raise ValueError(f"calibration must be one of {CALIBRATIONS}")
        if self.calibration in ("quantile", "isotonic") and self.architecture not in DELTA_MODELS:
            raise ValueError(f"calibration {self.calibration!r} applies to delta predictors, not {self.architecture}")
        if self.calibration == "temperature" and self.architecture not in CLASSIFIERS:
            raise ValueError(f"calibration 'temperature' applies to classifiers, not {self.architecture}")
        if self.quantiles is not None:
            if self.calibration != "quantile":
                raise ValueError("quantiles are only used with calibration=quantile")
            if not all(0 < q < 1 for q in self.quantiles) or sorted(self.quantiles) != self.quantiles:
                raise ValueError(f"quantiles must be increasing values in (0, 1), got {self.quantiles}")
        if self.link is None:
            self.link = "logit_psi" if self.architecture == "site_logit" else "identity"
        if self.link == "logit_psi" and self.architecture not in DELTA_MODELS:
            raise ValueError(f"link 'logit_psi' applies to delta predictors, not {self.architecture}")
        unknown = [k for k in self.target_kinds if k not in TARGET_KINDS]
        if unknown:
            raise ValueError(f"unknown target kind(s) {unknown} (known: {', '.join(TARGET_KINDS)})")
        return self

    @property
    def output_quantiles(self) -> list[float]:
        if self.calibration == "quantile":
            return list(self.quantiles or DEFAULT_QUANTILES)
        return [0.5]

    def to_dict(self) -> dict:
        return self.model_dump()


# ---------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------
def track_features(ref_tracks: torch.Tensor, alt_tracks: torch.Tensor) -> torch.Tensor:
    """``[B, C, L]`` x 2 -> ``[B, 4C, L]``: REF, ALT, ALT - REF and log((ALT + e) / (REF + e)), e = 1e-3."""
    ref, alt = ref_tracks.float(), alt_tracks.float()
    log_ratio = torch.log(alt.clamp_min(0) + TRACK_EPS) - torch.log(ref.clamp_min(0) + TRACK_EPS)
    return torch.cat([ref, alt, alt - ref, log_ratio], dim=1)


def allele_features(seq: torch.Tensor, tracks: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One allele for the siamese encoder: ``[B, 4 + 2C + 2, L]`` (one-hot, p, log(p + e) / 7, mask)."""
    t = tracks.float()
    return torch.cat([seq.float(), t, torch.log(t.clamp_min(0) + TRACK_EPS) / 7.0, mask.float()], dim=1)


def pair_features(
    ref_seq: torch.Tensor, alt_seq: torch.Tensor, ref_tracks: torch.Tensor, alt_tracks: torch.Tensor,
    mask: torch.Tensor,
) -> torch.Tensor:  # fmt: skip
    """The single-pass input: ``[B, 4 + 4 + 4C + 2, L]``.

    ALT one-hot; the REF bases at the variant positions only (zero elsewhere, so
    the model knows what was replaced); :func:`track_features`; the mask.
    """
    variant = mask[:, 1:2].float()
    return torch.cat([alt_seq.float(), ref_seq.float() * variant, track_features(ref_tracks, alt_tracks),
                      mask.float()], dim=1)  # fmt: skip


class AttentionPool(nn.Module):
    """``[B, W, L] -> [B, W]``: softmax attention over positions; ``heads`` groups of W/heads channels,
    each group with its own position weights. ``weights(h)`` returns ``[B, heads, L]``."""

    def __init__(self, width: int, heads: int = 4):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.score = nn.Conv1d(width, heads, 1)

    def weights(self, h: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.score(h), dim=-1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, w, length = h.shape
        a = self.weights(h)
        return (h.view(b, self.heads, w // self.heads, length) * a[:, :, None]).sum(-1).reshape(b, w)


class MeanMaxPool(nn.Module):
    """``[B, W, L] -> [B, 2W]``: mean and maximum over positions."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.cat([h.mean(-1), h.amax(-1)], dim=1)


def exon_ends(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``mask`` ``[B, 2, L]`` -> one-hot ``[B, L]`` of the exon's first and of its last nucleotide (the acceptor
    and the donor in transcript orientation; all zero without an exon). An exon that runs past the window's
    edge has no end on that side: the edge is not its splice site."""
    exon = mask[:, 0].float()
    before = torch.nn.functional.pad(exon, (1, 0), value=1.0)[:, :-1]
    after = torch.nn.functional.pad(exon, (0, 1), value=1.0)[:, 1:]
    return exon * (1 - before), exon * (1 - after)


def site_logit_features(channels: Sequence[str]) -> list[tuple[int, int]]:
    """The ``(channel, end)`` pairs :func:`site_logit_deltas` reads (end 0 = acceptor, 1 = donor): a base model
    with ``acceptor`` and ``donor`` channels, each at its own end; otherwise (e.g. Pangolin's tissues) every
    channel but ``neither`` at both ends."""
    names = list(channels)
    if "acceptor" in names and "donor" in names:
        return [(names.index("acceptor"), 0), (names.index("donor"), 1)]
    return [(c, end) for end in (0, 1) for c, name in enumerate(names) if name != "neither"]


def site_logit_deltas(
    ref_tracks: torch.Tensor, alt_tracks: torch.Tensor, mask: torch.Tensor, features: Sequence[tuple[int, int]]
) -> torch.Tensor:
    """``[B, F]``: ALT minus REF log-odds of the base model's splice probability at the exon's acceptor and
    donor (maximum within +-``SITE_WINDOW`` nt, clipped to ``[LOGIT_EPS, 1 - LOGIT_EPS]``), for the
    ``(channel, end)`` pairs of :func:`site_logit_features`. 0 without an exon or for identical alleles."""
    ends = torch.stack(exon_ends(mask), dim=1)  # [B, 2, L]
    k = 2 * SITE_WINDOW + 1

    def at_ends(tracks: torch.Tensor) -> torch.Tensor:  # [B, C, 2]
        peak = torch.nn.functional.max_pool1d(tracks.float(), k, stride=1, padding=SITE_WINDOW)
        return torch.logit(torch.einsum("bcl,bel->bce", peak, ends), eps=LOGIT_EPS)

    delta = at_ends(alt_tracks) - at_ends(ref_tracks)
    return torch.stack([delta[:, c, end] for c, end in features], dim=1)


def psi_link(logit_delta: torch.Tensor, ref_psi: torch.Tensor) -> torch.Tensor:
    """Delta PSI in percent ``[B, Q]`` of a change ``logit_delta`` ``[B, Q]`` in inclusion log-odds, from the
    reference PSI ``ref_psi`` ``[B]`` (percent): ``100 * (sigmoid(logit(r) + y) - r)``."""
    start = torch.logit(ref_psi.float()[:, None] / 100, eps=1e-3)
    return 100 * (torch.sigmoid(start + logit_delta) - torch.sigmoid(start))  # exactly 0 for no change


class SitePool(nn.Module):
    """``[B, W, L]`` + mask ``[B, 2, L]`` -> ``[B, 3W]``: the encoding at the variant (mean over its positions),
    at the exon's first and at its last nucleotide (the acceptor and donor); zeros where absent.

    Reading out where the variant is and where the splice sites are spares the model
    learning to find them, which few hundred training variants cannot teach.
    """

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        variant = mask[:, 1].float()
        first, last = exon_ends(mask)
        out = []
        for w in (variant, first, last):
            w = w / w.sum(-1, keepdim=True).clamp_min(1.0)
            out.append(torch.einsum("bwl,bl->bw", h, w))
        return torch.cat(out, dim=1)


def base_sites(
    ref_tracks: torch.Tensor, alt_tracks: torch.Tensor, mask: torch.Tensor, deltas_only: bool = False
) -> torch.Tensor:
    """``[B, 12C]``: :func:`track_features` (REF, ALT, ALT - REF, log ratio) at the variant, the acceptor and
    the donor -- the raw base-model deltas published tools score with, handed straight to the readout.
    ``deltas_only``: only ALT - REF and the log ratio, ``[B, 6C]`` (all 0 for identical alleles)."""
    feats = track_features(ref_tracks, alt_tracks)
    if deltas_only:
        feats = feats[:, 2 * ref_tracks.shape[1] :]
    return SitePool()(feats, mask)


class KindReadout(nn.Module):
    """``[B, F] -> [B, outputs]``: a hidden layer, then one linear output per target kind (selected by ``kind``).

    The output layer starts at zero, so an untrained delta predictor predicts 0.
    """

    def __init__(self, in_features: int, width: int, outputs: int, dropout: float, kinds: int = len(TARGET_KINDS)):
        super().__init__()
        self.kinds, self.outputs = kinds, outputs
        self.hidden = nn.Sequential(nn.Linear(in_features, width), nn.GELU(), nn.Dropout(dropout))
        self.out = nn.Linear(width, kinds * outputs)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, kind: torch.Tensor) -> torch.Tensor:
        y = self.out(self.hidden(x)).view(x.shape[0], self.kinds, self.outputs)
        return y[torch.arange(x.shape[0], device=x.device), kind]


def kind_index(kind: str) -> int:
    if kind not in TARGET_KINDS:
        raise ValueError(f"unknown target kind {kind!r} (known: {', '.join(TARGET_KINDS)})")
    return TARGET_KINDS.index(kind)


class VariantModel(nn.Module):
    """Common base: config, target scales per kind, default ``kind``."""

    task: str = "regression"  # regression | binary | multiclass | unified

    def __init__(self, config: VariantModelConfig):
        super().__init__()
        if not config.channels:
            raise ValueError("variant model config has no base-model channels")
        self.config = config
        self.n_tracks = len(config.channels)
        # per kind: the training targets' scale; outputs are (standardised prediction) x scale
        self.register_buffer("target_scale", torch.ones(len(TARGET_KINDS)))

    def set_target_scales(self, scales: dict[str, float]) -> None:
        with torch.no_grad():
            for kind, value in scales.items():
                self.target_scale[kind_index(kind)] = float(value)

    def _kind(self, kind: torch.Tensor | None, x: VariantInputs) -> torch.Tensor:
        """``kind`` as long ``[B]`` on ``x``'s device; None: ``delta_psi_percent`` for every row."""
        device = x.ref_seq.device
        if kind is None:
            n = x.ref_seq.shape[0]
            return torch.full((n,), TARGET_KINDS.index("delta_psi_percent"), dtype=torch.long, device=device)
        return kind.to(device=device, dtype=torch.long)


class _PairEncoding:
    """For :class:`VariantModel` subclasses: a :class:`GatedDilatedCNN` over :func:`pair_features`
    ``[B, 10 + 4C, L]``, pooled to ``[B, F]`` by attention (or mean/max) pooling, :class:`SitePool`
    and the raw base-model values at the sites (:func:`base_sites`)."""

    def _build_pair_encoding(self, config: VariantModelConfig, attention: bool) -> int:
        """Create ``encoder``, ``pool`` and ``sites``; returns F, the pooled width."""
        c, w = self.n_tracks, config.width
        self.encoder = GatedDilatedCNN(10 + 4 * c, w, config.kernel, config.dilations, config.dropout)
        self.pool: nn.Module = AttentionPool(w, config.heads) if attention else MeanMaxPool()
        self.sites = SitePool()
        return (w if attention else 2 * w) + 3 * w + 3 * 4 * c

    def pooled(self, x: VariantInputs) -> torch.Tensor:
        h = self.encoder(pair_features(*x))
        return torch.cat([self.pool(h), self.sites(h, x.mask), base_sites(x.ref_tracks, x.alt_tracks, x.mask)], dim=1)


# ---------------------------------------------------------------------------------------------
# delta predictors
# ---------------------------------------------------------------------------------------------
class SiteLogitTerm(nn.Module):
    """``[B, F]`` log-odds changes (:func:`site_logit_deltas`) -> ``[B, Q]``: one linear map per target kind.

    Starts as the mean of each end's features summed over the two ends (SpliceAI: the
    acceptor's change plus the donor's), so an untrained model already gives the base
    model's own estimate of the change in inclusion log-odds.
    """

    def __init__(self, features: Sequence[tuple[int, int]], outputs: int, kinds: int = len(TARGET_KINDS)):
        super().__init__()
        self.features = [tuple(f) for f in features]
        per_end = [sum(1 for _, e in self.features if e == end) for end in (0, 1)]
        start = torch.tensor([1.0 / per_end[end] for _, end in self.features])
        self.weight = nn.Parameter(start.repeat(kinds, outputs, 1))  # [kinds, Q, F]
        self.bias = nn.Parameter(torch.zeros(kinds, outputs))

    def forward(self, x: VariantInputs, kind: torch.Tensor) -> torch.Tensor:
        deltas = site_logit_deltas(x.ref_tracks, x.alt_tracks, x.mask, self.features)
        return torch.einsum("bqf,bf->bq", self.weight[kind], deltas) + self.bias[kind]


class _DeltaModel(VariantModel):
    """Delta predictors: ``standardized()`` gives ``[B, Q]`` in units of the target's scale (with the
    ``logit_psi`` link: a change in inclusion log-odds, to which :class:`SiteLogitTerm` is added)."""

    task = "regression"

    def __init__(self, config: VariantModelConfig):
        super().__init__(config)
        self.quantile_levels = config.output_quantiles
        self.median_index = min(range(len(self.quantile_levels)), key=lambda i: abs(self.quantile_levels[i] - 0.5))
        self.site_term: SiteLogitTerm | None = None
        if config.link == "logit_psi":
            self.site_term = SiteLogitTerm(site_logit_features(config.channels), len(self.quantile_levels))

    def standardized(self, x: VariantInputs, kind: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def quantiles(
        self, x: VariantInputs, kind: torch.Tensor | None = None, ref_psi: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``[B, Q]`` predicted quantiles of the target (Q = 1 without quantile heads), in target units.

        ``ref_psi`` ``[B]`` (percent, NaN = unknown) is used by the ``logit_psi`` link only."""
        k = self._kind(kind, x)
        z = self.standardized(x, k)
        if self.site_term is None:
            return z * self.target_scale[k][:, None]
        y = z + self.site_term(x, k)
        r = torch.full(k.shape, self.config.reference_psi, device=k.device)
        if ref_psi is not None:
            ref_psi = ref_psi.to(device=r.device, dtype=torch.float32)
            r = torch.where(torch.isfinite(ref_psi), ref_psi, r)
        is_psi = (k == TARGET_KINDS.index("delta_psi_percent"))[:, None]
        return torch.where(is_psi, psi_link(y, r), y * self.target_scale[k][:, None])

    def forward(
        self, x: VariantInputs, kind: torch.Tensor | None = None, ref_psi: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Predicted delta ``[B]`` (the median quantile), in the units of the training target of ``kind``."""
        return self.quantiles(x, kind, ref_psi)[:, self.median_index]


class SiteLogitDeltaPredictor(_DeltaModel):
    """The base model's own read of the exon, no network: the change in the exon's inclusion log-odds is a
    linear map (per target kind) of the ALT - REF log-odds of the base model's splice probability at the exon's
    acceptor and donor (:class:`SiteLogitTerm`), turned into delta PSI through the reference PSI
    (``link="logit_psi"``, the default for this model). ``2`` parameters + bias per kind for SpliceAI: what
    a few dozen exons can fit without overfitting; the sequence arguments are accepted and not used.
    """

    def standardized(self, x: VariantInputs, kind: torch.Tensor | None = None) -> torch.Tensor:
        return x.ref_tracks.new_zeros(x.ref_tracks.shape[0], len(self.quantile_levels))


class ValidatedDeltaPredictor(_PairEncoding, _DeltaModel):
    """One pass of a gated dilated CNN over the ALT window, with REF and ALT base tracks as extra channels.

    Input :func:`pair_features` ``[B, 10 + 4C, L]`` -> :class:`GatedDilatedCNN` ->
    [attention pooling over positions (``attention=True``) or mean/max pooling,
    :class:`SitePool` (variant, acceptor, donor) of the encoding, and the raw base-model
    values there (:func:`base_sites`)] -> per-kind readout -> delta ``[B]``.
    """

    def __init__(self, config: VariantModelConfig):
        super().__init__(config)
        pooled = self._build_pair_encoding(config, config.attention)
        self.readout = KindReadout(pooled, config.width, len(self.quantile_levels), config.dropout)

    def standardized(self, x: VariantInputs, kind: torch.Tensor | None = None) -> torch.Tensor:
        k = self._kind(kind, x)
        return self.readout(self.pooled(x), k)


class SimpleCNNDeltaPredictor(_DeltaModel):
    """Gated dilated CNN giving a delta per position: ``head(h(ALT)) - head(h(REF))``, summed over the window.

    One :class:`GatedDilatedCNN` encodes each allele (:func:`allele_features`,
    ``[B, 4 + 2C + 2, L]``: its one-hot, its base tracks, the mask); a 1x1 conv gives
    every position a score per kind and quantile; ``per_position()`` ``[B, L]`` is ALT's
    score minus REF's -- exactly 0 wherever neither the sequence nor the tracks within
    the encoder's reach changed -- and the predicted delta ``[B]`` is their sum, so each
    position's value is its contribution to it.
    """

    def __init__(self, config: VariantModelConfig):
        super().__init__(config)
        c, w = self.n_tracks, config.width
        self.encoder = GatedDilatedCNN(4 + 2 * c + 2, w, config.kernel, config.dilations, config.dropout)
        self.n_out = len(self.quantile_levels)
        self.head = nn.Conv1d(w, len(TARGET_KINDS) * self.n_out, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def _positions(
        self,
        x: VariantInputs,
        kind: torch.Tensor,
    ) -> torch.Tensor:
        """Standardised per-position deltas ``[B, Q, L]``."""
        b, _, length = x.ref_seq.shape
        both = torch.cat(
            [allele_features(x.ref_seq, x.ref_tracks, x.mask), allele_features(x.alt_seq, x.alt_tracks, x.mask)]
        )
        y = self.head(self.encoder(both)).view(2 * b, len(TARGET_KINDS), self.n_out, length)
        y_ref, y_alt = y.chunk(2)
        rows = torch.arange(b, device=y.device)
        return y_alt[rows, kind] - y_ref[rows, kind]

    def standardized(self, x: VariantInputs, kind: torch.Tensor | None = None) -> torch.Tensor:
        k = self._kind(kind, x)
        return self._positions(x, k).sum(-1)

    def per_position(self, x: VariantInputs, kind: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, L]``: each position's delta (median quantile), in target units; they sum to ``forward()``.

        Only with the identity link: through ``logit_psi`` the delta is not a sum over positions."""
        if self.site_term is not None:
            raise ValueError("per_position needs link 'identity': through 'logit_psi' the delta is not additive")
        k = self._kind(kind, x)
        z = self._positions(x, k)[:, self.median_index]
        return z * self.target_scale[k][:, None]


class DeltaPredictor(_DeltaModel):
    """Siamese: one shared :class:`GatedDilatedCNN` encodes REF and ALT separately
    (each ``[B, 4 + 2C + 2, L]``, :func:`allele_features`); the head reads the
    difference ``h(ALT) - h(REF)`` ``[B, W, L]`` through attention pooling, mean/max
    pooling and :class:`SitePool`, plus the raw base-model deltas at the sites
    (:func:`base_sites`, deltas only) -> per-kind readout -> delta ``[B]``. Identical alleles give a constant
    (the readout's bias), whatever the sequence.
    """

    def __init__(self, config: VariantModelConfig):
        super().__init__(config)
        c, w = self.n_tracks, config.width
        self.encoder = GatedDilatedCNN(4 + 2 * c + 2, w, config.kernel, config.dilations, config.dropout)
        self.attention = AttentionPool(w, config.heads)
        self.meanmax = MeanMaxPool()
        self.sites = SitePool()
        self.readout = KindReadout(6 * w + 3 * 2 * c, w, len(self.quantile_levels), config.dropout)

    def standardized(self, x: VariantInputs, kind: torch.Tensor | None = None) -> torch.Tensor:
        k = self._kind(kind, x)
        both = torch.cat(
            [allele_features(x.ref_seq, x.ref_tracks, x.mask), allele_features(x.alt_seq, x.alt_tracks, x.mask)]
        )
        h_ref, h_alt = self.encoder(both).chunk(2)
        diff = h_alt - h_ref
        pooled = torch.cat([self.attention(diff), self.meanmax(diff), self.sites(diff, x.mask),
                            base_sites(x.ref_tracks, x.alt_tracks, x.mask, deltas_only=True)], dim=1)  # fmt: skip
        return self.readout(pooled, k)


# ---------------------------------------------------------------------------------------------
# classifiers
# ---------------------------------------------------------------------------------------------
class _PairClassifier(_PairEncoding, VariantModel):
    """Classifiers over the pooled pair encoding (:class:`_PairEncoding`) ``[B, pooled_features]``."""

    def __init__(self, config: VariantModelConfig, attention: bool):
        super().__init__(config)
        self.pooled_features = self._build_pair_encoding(config, attention)


class SpliceInducingClassifier(_PairClassifier):
    """Is the variant splice-altering? -> logit ``[B]`` (per-kind readout: "altering" is defined per assay)."""

    task = "binary"

    def __init__(self, config: VariantModelConfig):
        super().__init__(config, config.attention)
        self.readout = KindReadout(self.pooled_features, config.width, 1, config.dropout)

    def forward(self, x: VariantInputs, kind: torch.Tensor | None = None) -> torch.Tensor:
        k = self._kind(kind, x)
        return self.readout(self.pooled(x), k)[:, 0]


class EffectTypeClassifier(_PairClassifier):
    """Effect type -> logits ``[B, 7]`` over :data:`EFFECT_TYPES` (softmax not applied)."""

    task = "multiclass"

    def __init__(self, config: VariantModelConfig):
        super().__init__(config, config.attention)
        self.head = nn.Sequential(
            nn.Linear(self.pooled_features, config.width), nn.GELU(), nn.Dropout(config.dropout),
            nn.Linear(config.width, len(EFFECT_TYPES)),
        )  # fmt: skip

    def forward(self, x: VariantInputs, kind: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.pooled(x))


class UnifiedSpliceClassifier(_PairClassifier):
    """Both questions from one encoder with attention pooling over positions.

    -> ``(logit [B] splice-altering, logits [B, 7] effect type)``; ``attention_weights()``
    gives the pooling weights ``[B, heads, L]`` (where the model looked).
    """

    task = "unified"

    def __init__(self, config: VariantModelConfig):
        super().__init__(config, attention=True)
        w = config.width
        self.binary = KindReadout(self.pooled_features, w, 1, config.dropout)
        self.effect = nn.Sequential(nn.Linear(self.pooled_features, w), nn.GELU(), nn.Dropout(config.dropout),
                                    nn.Linear(w, len(EFFECT_TYPES)))  # fmt: skip

    def forward(self, x: VariantInputs, kind: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        k = self._kind(kind, x)
        pooled = self.pooled(x)
        return self.binary(pooled, k)[:, 0], self.effect(pooled)

    @torch.no_grad()
    def attention_weights(self, x: VariantInputs) -> torch.Tensor:
        return self.pool.weights(self.encoder(pair_features(*x)))


# ---------------------------------------------------------------------------------------------
# registry and checkpoints
# ---------------------------------------------------------------------------------------------
_REGISTRY: dict[str, type[VariantModel]] = {
    "splice_inducing": SpliceInducingClassifier,
    "effect_type": EffectTypeClassifier,
    "unified": UnifiedSpliceClassifier,
    "delta": DeltaPredictor,
    "simple_cnn": SimpleCNNDeltaPredictor,
    "validated": ValidatedDeltaPredictor,
    "site_logit": SiteLogitDeltaPredictor,
}


def build_variant_model(name: str | None, config: VariantModelConfig | dict | None = None) -> VariantModel:
    """A variant model by registry name (:data:`VARIANT_MODELS`); ``config`` needs ``channels``.

    ``name`` overrides ``config.architecture`` (None keeps it).
    """
    if isinstance(config, VariantModelConfig):
        config = config.model_dump()
    config = dict(config or {})
    if name is not None:
        if name not in _REGISTRY:
            raise ValueError(f"unknown variant model {name!r} (choose from {', '.join(VARIANT_MODELS)})")
        config["architecture"] = name
    cfg = VariantModelConfig(**config)
    return _REGISTRY[cfg.architecture](cfg)


def save_variant_model(directory: str | os.PathLike, model: VariantModel, extra: dict | None = None) -> Path:
    """``model.safetensors`` + ``config.json`` (architecture under ``model``, plus ``extra``), atomically."""
    from meta_layer_cli.models.checkpoint import save_model

    return save_model(directory, model, {"kind": "variant_model", **(extra or {})})


def load_variant_model(directory: str | os.PathLike, device: str = "cpu") -> tuple[VariantModel, dict]:
    """Rebuild a variant model from its checkpoint directory; returns (model in eval mode, config.json)."""
    from meta_layer_cli.models.checkpoint import read_checkpoint_config, read_weights

    config = read_checkpoint_config(directory)
    if config.get("kind") != "variant_model":
        raise ValueError(f"{directory} is not a variant-model checkpoint (written by train-variants)")
    weights = read_weights(directory)
    model = build_variant_model(None, config["model"])
    model.load_state_dict(weights)
    return model.to(device).eval(), config


def model_outputs(model: VariantModel, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Run ``model`` on a batch dict (keys as :meth:`VariantDataset.batch`) -> named outputs.

    ``delta`` ``[B]`` and ``quantiles`` ``[B, Q]`` (delta predictors; ``ref_psi`` read if present), ``logit`` ``[B]``
    (splice-altering), ``effect_logits`` ``[B, 7]``.
    """
    x = VariantInputs.from_batch(batch)
    kind = batch.get("kind")
    if model.task == "regression":
        q = model.quantiles(x, kind, batch.get("ref_psi"))
        return {"quantiles": q, "delta": q[:, model.median_index]}
    if model.task == "binary":
        return {"logit": model(x, kind)}
    if model.task == "multiclass":
        return {"effect_logits": model(x, kind)}
    logit, effect = model(x, kind)
    return {"logit": logit, "effect_logits": effect}


__all__ = [
    "CLASSIFIERS",
    "DELTA_MODELS",
    "EFFECT_TYPES",
    "MASK_CHANNELS",
    "TARGET_KINDS",
    "VARIANT_MODELS",
    "AttentionPool",
    "DeltaPredictor",
    "EffectTypeClassifier",
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
    "exon_ends",
    "load_variant_model",
    "model_outputs",
    "pair_features",
    "psi_link",
    "save_variant_model",
    "site_logit_deltas",
    "site_logit_features",
    "track_features",
]
