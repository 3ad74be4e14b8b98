"""Configuration of the variant models: the architecture a user chooses and what a checkpoint stores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from meta_layer_cli.features.variants import TARGET_KINDS
from meta_layer_cli.models.calibration import CALIBRATIONS, DEFAULT_QUANTILES
from meta_layer_cli.runtime.errors import UsageError

VariantModelName = Literal[
    "splice_inducing", "effect_type", "unified", "delta", "simple_cnn", "validated", "site_logit"
]
VARIANT_MODELS: tuple[str, ...] = get_args(VariantModelName)
DELTA_MODELS = ("delta", "simple_cnn", "validated", "site_logit")
CLASSIFIERS = ("splice_inducing", "effect_type", "unified")


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


#: Base-model channels a model built from keywords expects unless told (SpliceAI, OpenSpliceAI).
DEFAULT_CHANNELS = ("neither", "acceptor", "donor")


def keyword_config(
    architecture: str, hidden_dim: int, n_layers: int | None = None, channels: Sequence[str] | None = None, **settings
) -> VariantModelConfig:
    """A :class:`VariantModelConfig` from constructor keywords: ``hidden_dim`` = ``width``, ``n_layers`` dilated
    layers (dilations 1, 2, 4, ...; default the config's six), ``channels`` the base model's (default
    :data:`DEFAULT_CHANNELS`), any other :class:`VariantArchitecture` key as is."""
    if n_layers is not None:
        if n_layers < 1:
            raise UsageError(f"n_layers must be at least 1, got {n_layers}")
        if "dilations" in settings:
            raise UsageError("give n_layers or dilations, not both")
        settings["dilations"] = [2**i for i in range(n_layers)]
    if "heads" not in settings and hidden_dim % 4:
        settings["heads"] = 1  # attention heads must divide the width
    return VariantModelConfig(
        architecture=architecture, width=hidden_dim, channels=list(channels or DEFAULT_CHANNELS), **settings
    )
