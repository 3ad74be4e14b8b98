"""The variant-model architectures: pooling and readout blocks, delta predictors and classifiers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from meta_layer_cli.features.variants import EFFECT_TYPES, TARGET_KINDS
from meta_layer_cli.models.encoders import GatedDilatedCNN
from meta_layer_cli.models.variant.config import VariantModelConfig, keyword_config
from meta_layer_cli.models.variant.inputs import (
    VariantInputs,
    allele_features,
    exon_ends,
    pair_features,
    psi_link,
    site_logit_deltas,
    site_logit_features,
    track_features,
)
from meta_layer_cli.runtime.errors import InputDataError, UsageError


# ---------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------
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
        raise InputDataError(f"unknown target kind {kind!r} (known: {', '.join(TARGET_KINDS)})")
    return TARGET_KINDS.index(kind)


class VariantModel(nn.Module):
    """Common base: config, target scales per kind, default ``kind``."""

    task: str = "regression"  # regression | binary | multiclass | unified

    def __init__(self, config: VariantModelConfig):
        super().__init__()
        if not config.channels:
            raise InputDataError("variant model config has no base-model channels")
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

    Build from a :class:`VariantModelConfig` or from keywords: ``SimpleCNNDeltaPredictor(hidden_dim=64,
    n_layers=6, channels=("neither", "acceptor", "donor"), **other architecture keys)``.
    """

    def __init__(
        self,
        config: VariantModelConfig | None = None,
        *,
        hidden_dim: int | None = None,
        n_layers: int | None = None,
        channels: Sequence[str] | None = None,
        **architecture,
    ):
        if config is None:
            config = keyword_config("simple_cnn", hidden_dim or 64, n_layers, channels, **architecture)
        elif hidden_dim is not None or n_layers is not None or channels is not None or architecture:
            raise TypeError("give SimpleCNNDeltaPredictor a config or keywords, not both")
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
            raise UsageError("per_position needs link 'identity': through 'logit_psi' the delta is not additive")
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
        pooled = torch.cat(
            [
                self.attention(diff),
                self.meanmax(diff),
                self.sites(diff, x.mask),
                base_sites(x.ref_tracks, x.alt_tracks, x.mask, deltas_only=True),
            ],
            dim=1,
        )
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
            nn.Linear(self.pooled_features, config.width),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.width, len(EFFECT_TYPES)),
        )

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
        self.effect = nn.Sequential(
            nn.Linear(self.pooled_features, w), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(w, len(EFFECT_TYPES))
        )

    def forward(self, x: VariantInputs, kind: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        k = self._kind(kind, x)
        pooled = self.pooled(x)
        return self.binary(pooled, k)[:, 0], self.effect(pooled)

    @torch.no_grad()
    def attention_weights(self, x: VariantInputs) -> torch.Tensor:
        return self.pool.weights(self.encoder(pair_features(*x)))
