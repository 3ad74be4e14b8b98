"""The meta-layer models: sequence + base-model tracks -> recalibrated ``[neither, acceptor, donor]``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field, field_validator, model_validator
from torch import nn

from meta_layer_cli.features import FeatureNormalizer, ScoreFeatures
from meta_layer_cli.models.encoders import GatedDilatedCNN, HyenaEncoder, ScoreMLP
from meta_layer_cli.models.fusion import ConcatFusion, CrossAttentionFusion
from meta_layer_cli.runtime.config import StrictSection
from meta_layer_cli.runtime.device import full_precision_convolutions

N_CLASSES = 3  # neither, acceptor, donor
EPS = 1e-6


class MetaModelConfig(StrictSection):
    """Architecture of a meta model; stored as JSON beside the weights. Unknown keys, wrong types and
    out-of-range sizes are errors.

    ``channels`` (the base-model channel names) is filled in from the tracks at build time.
    ``correction: false`` builds no encoders at all: the model is the base model's log-probabilities
    divided by a per-class temperature (what ``metalayer calibrate`` fits for a base model alone).
    ``sequence_encoder: transformers`` uses a Hugging Face model saved in the local folder
    ``pretrained_model`` (see :mod:`meta_layer_cli.models.pretrained`); its architecture is copied
    into ``pretrained_config`` so that a checkpoint rebuilds without the folder.
    """

    channels: list[str] = Field(default_factory=list, max_length=256)
    version: Literal["v1", "v2"] = "v2"  # sequence-to-sequence (default) or window -> centre
    correction: bool = True
    sequence_encoder: Literal["cnn", "hyena", "transformers"] = "cnn"
    score_encoder: Literal["conv", "mlp"] = "conv"  # dilated CNN over features, or position-wise MLP
    fusion: Literal["concat", "cross_attention"] = "concat"
    width: int = Field(32, gt=0, le=4096)
    kernel: int = Field(9, gt=0, le=101)
    sequence_dilations: list[int] = Field(default_factory=lambda: [1, 2, 4, 8, 16, 32], min_length=1, max_length=64)
    score_dilations: list[int] = Field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64], min_length=1, max_length=64)
    trunk_dilations: list[int] = Field(default_factory=lambda: [1, 4, 16], min_length=1, max_length=64)
    dropout: float = Field(0.1, ge=0, lt=1)
    hyena_depth: int = Field(2, gt=0, le=64)
    hyena_max_len: int = Field(32_768, gt=0, le=1_048_576)
    hyena_weights: str | None = None
    pretrained_model: str | None = None  # a local Hugging Face model folder (sequence_encoder: transformers)
    pretrained_config: dict | None = None  # filled from the folder at build time
    pretrained_tokens: dict[str, int] | None = None  # token ids of A, C, G, T, N (filled from its vocabulary)
    pretrained_tile: int | None = Field(None, gt=0, le=1_048_576)  # nt per encoder call (default: its max length)
    trust_remote_code: bool = False  # never by default: a folder's custom code would run here
    freeze_encoder: bool = False  # keep the pretrained encoder's weights fixed while training
    window: int = Field(501, gt=0, le=100_001)  # V1 only

    @field_validator("sequence_dilations", "score_dilations", "trunk_dilations")
    @classmethod
    def _dilations(cls, value: list[int]) -> list[int]:
        if any(d <= 0 or d > 4096 for d in value):
            raise ValueError("dilations must be between 1 and 4096")
        return value

    @model_validator(mode="after")
    def _encoder(self) -> MetaModelConfig:
        if self.sequence_encoder == "transformers" and not (self.pretrained_model or self.pretrained_config):
            raise ValueError("sequence_encoder transformers needs pretrained_model: a local model folder")
        if self.fusion == "cross_attention" and self.width % 4:
            raise ValueError(f"cross_attention needs a width divisible by 4 (its heads), got {self.width}")
        return self

    def to_dict(self) -> dict:
        return self.model_dump()


class BaseLogits(nn.Module):
    """The base model's opinion as logits: ``[B, C, L]`` probabilities -> ``[B, 3, L]``.

    A 1x1 map of ``log(p)``, initialised to the identity on the first
    ``neither, acceptor, donor`` triple, so an untrained meta model reproduces
    that base model exactly. For channel sets without such a triple (Pangolin's
    tissues) it starts at zero and is learned.
    """

    def __init__(self, channels: Sequence[str]):
        super().__init__()
        from meta_layer_cli.features.scores import splice_groups

        self.proj = nn.Conv1d(len(channels), N_CLASSES, 1)
        with torch.no_grad():
            self.proj.weight.zero_()
            self.proj.bias.zero_()
            groups = splice_groups(channels)
            if groups:
                for cls, idx in enumerate(groups[0]):
                    self.proj.weight[cls, idx, 0] = 1.0

    def forward(self, tracks: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.log(tracks.float().clamp_min(0) + EPS))


class MetaLayerModel(nn.Module):
    """Sequence-to-sequence meta model (the default).

    ``forward(one_hot [B, 4, L], tracks [B, C, L]) -> logits [B, 3, L]``: the
    base model's log-probabilities plus a learned correction, divided by a
    per-class temperature. ``predict_proba`` applies the one and only softmax.
    """

    def __init__(self, config: MetaModelConfig):
        super().__init__()
        self.config = config
        self.features = ScoreFeatures(tuple(config.channels))
        n_features = len(self.features.names)
        self.normalizer = FeatureNormalizer(n_features)
        if config.correction:  # built first: the seeded initialisation of earlier runs depends on this order
            self._build_correction(config, n_features)
        self.base = BaseLogits(config.channels)
        self.log_temperature = nn.Parameter(torch.zeros(N_CLASSES))

    def _build_correction(self, config: MetaModelConfig, n_features: int) -> None:
        w = config.width
        if config.sequence_encoder == "cnn":
            self.sequence_encoder: nn.Module = GatedDilatedCNN(
                4, w, config.kernel, config.sequence_dilations, config.dropout, stem_kernel=11
            )
        elif config.sequence_encoder == "hyena":
            self.sequence_encoder = HyenaEncoder(w, config.hyena_depth, config.hyena_max_len)
            if config.hyena_weights:
                from meta_layer_cli.models.encoders import load_hyenadna

                load_hyenadna(self.sequence_encoder, config.hyena_weights)
        elif config.sequence_encoder == "transformers":
            from meta_layer_cli.models.pretrained import PretrainedEncoder

            self.sequence_encoder = PretrainedEncoder.from_config(config)
        else:
            raise ValueError(f"sequence_encoder must be cnn, hyena or transformers, got {config.sequence_encoder!r}")
        if config.score_encoder == "conv":
            self.score_encoder: nn.Module = GatedDilatedCNN(
                n_features, w, config.kernel, config.score_dilations, config.dropout
            )
        elif config.score_encoder == "mlp":
            self.score_encoder = ScoreMLP(n_features, w, dropout=config.dropout)
        else:
            raise ValueError(f"score_encoder must be 'conv' or 'mlp', got {config.score_encoder!r}")
        if config.fusion == "concat":
            self.fusion: nn.Module = ConcatFusion(w)
        elif config.fusion == "cross_attention":
            self.fusion = CrossAttentionFusion(w)
        else:
            raise ValueError(f"fusion must be 'concat' or 'cross_attention', got {config.fusion!r}")
        self.trunk = GatedDilatedCNN(w, w, config.kernel, config.trunk_dilations, config.dropout)
        self.head = nn.Conv1d(w, N_CLASSES, 1)
        nn.init.zeros_(self.head.weight)  # start as the base model; learn only the correction
        nn.init.zeros_(self.head.bias)

    @property
    def receptive_field(self) -> int:
        """nt of context each side that an output depends on (the feature windows add 50)."""
        if not self.config.correction:
            return 0
        seq = self.sequence_encoder.receptive_field
        scores = self.score_encoder.receptive_field + 50
        return max(seq, scores) + self.fusion.receptive_field + self.trunk.receptive_field

    def encode(self, one_hot: torch.Tensor, tracks: torch.Tensor) -> torch.Tensor:
        """Fused representation ``[B, width, L]``."""
        feats = self.normalizer(self.features(tracks))
        fused = self.fusion(self.sequence_encoder(one_hot), self.score_encoder(feats))
        return self.trunk(fused)

    def forward(self, one_hot: torch.Tensor, tracks: torch.Tensor) -> torch.Tensor:
        logits = self.base(tracks)
        if self.config.correction:
            logits = logits + self.head(self.encode(one_hot, tracks))
        return logits / self.log_temperature.exp()[None, :, None]

    @torch.no_grad()
    def predict_proba(self, one_hot: torch.Tensor, tracks: torch.Tensor) -> torch.Tensor:
        """Probabilities as they are reported (inference, validation): convolutions in float32 on a GPU too
        (:func:`~meta_layer_cli.runtime.device.full_precision_convolutions`), so a GPU gives the CPU's numbers."""
        with full_precision_convolutions():
            return torch.softmax(self(one_hot, tracks).float(), dim=1)


class MetaLayerWindowModel(MetaLayerModel):
    """Window model (V1): a ``window``-nt input -> logits ``[B, 3]`` for the centre nucleotide.

    Shares every module with V2; only the centre position of the fused
    representation is read out.
    """

    def forward(self, one_hot: torch.Tensor, tracks: torch.Tensor) -> torch.Tensor:  # [B, 3]
        centre = one_hot.shape[-1] // 2
        logits = self.base(tracks[..., centre : centre + 1])[..., 0]
        if self.config.correction:
            logits = logits + self.head(self.encode(one_hot, tracks)[..., centre : centre + 1])[..., 0]
        return logits / self.log_temperature.exp()[None, :]


def build_meta_model(config: MetaModelConfig | dict, seed: int | None = None) -> MetaLayerModel:
    """A meta model for ``config``. ``seed``: its random initialisation is drawn from this seed alone,
    whatever the process drew before (loading a base model builds layers too), and torch's global
    random state is left as it was; None draws from the global state."""
    if isinstance(config, dict):
        config = MetaModelConfig(**config)
    if not config.channels:
        raise ValueError("model config has no base-model channels")
    if config.version not in ("v1", "v2"):
        raise ValueError(f"model version must be 'v1' or 'v2', got {config.version!r}")
    model_class = MetaLayerModel if config.version == "v2" else MetaLayerWindowModel
    if seed is None:
        return model_class(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model_class(config)
