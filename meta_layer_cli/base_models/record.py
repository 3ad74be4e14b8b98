"""The one record of "which base model made this": stored in track manifests and in checkpoints.

A record names the model, its weights checksum, context and channels. Anything built on a base
model's outputs (prepared tracks, a meta-layer checkpoint, a variant-model checkpoint) stores
records, and :meth:`BaseModelRecord.require` is the single check that a loaded model is the same
one. ``weights`` is only a hint for finding the files again (the path as given when recorded), kept in a
prepared folder's manifest (data of this machine) and left out of checkpoints (:meth:`portable`), which are
used elsewhere: the lookup of :mod:`meta_layer_cli.base_models.weights` finds the files, and the checksum
decides.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from meta_layer_cli.base_models.loading import load_base_model
from meta_layer_cli.runtime.errors import InputDataError

if TYPE_CHECKING:
    from meta_layer_cli.runtime.device import DeviceLike


@dataclass(frozen=True)
class BaseModelRecord:
    name: str
    weights_checksum: str
    context: int
    channels: tuple[str, ...]
    weights: str | None = field(default=None, compare=False)

    @classmethod
    def of(cls, model) -> BaseModelRecord:
        """The record of a loaded base model."""
        hint = model.weights_hint if getattr(model, "weights_hint", None) is not None else None
        return cls(model.name, model.weights_checksum, int(model.context), tuple(model.channels), hint)

    @property
    def flank(self) -> int:
        """Total context in nt (both sides), the number in OpenSpliceAI's folder names."""
        return 2 * self.context

    def to_dict(self) -> dict:
        out = asdict(self)
        out["channels"] = list(self.channels)
        return out

    def portable(self) -> dict:
        """:meth:`to_dict` without the weights path: what checkpoints and prepared folders store (no machine paths)."""
        return {k: v for k, v in self.to_dict().items() if k != "weights"}

    @classmethod
    def from_dict(cls, data: dict) -> BaseModelRecord:
        try:
            return cls(
                name=str(data["name"]),
                weights_checksum=str(data["weights_checksum"]),
                context=int(data["context"]),
                channels=tuple(data["channels"]),
                weights=data.get("weights"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InputDataError(f"malformed base-model record {data!r} ({err})") from None

    def describe(self) -> str:
        return f"{self.name} (weights {self.weights_checksum}, context {self.context})"

    def differences(self, other: BaseModelRecord) -> list[str]:
        return [
            f"{key} {getattr(self, key)} vs {getattr(other, key)}"
            for key in ("name", "weights_checksum", "context", "channels")
            if getattr(self, key) != getattr(other, key)
        ]

    def require(self, model_or_record, what: str = "this") -> None:
        """Raise InputDataError unless ``model_or_record`` is the same base model as this record."""
        other = model_or_record if isinstance(model_or_record, BaseModelRecord) else BaseModelRecord.of(model_or_record)
        diff = self.differences(other)
        if diff:
            raise InputDataError(
                f"{what} was made with base model {self.describe()}, not {other.describe()} ({'; '.join(diff)}): "
                "pass the same --base-model / --weights"
            )

    def load(
        self,
        device: DeviceLike = None,
        weights: str | os.PathLike | None = None,
        models_dir: str | os.PathLike | None = None,
        dtype=None,
    ):
        """Load this base model again: ``weights`` if given, else the recorded path if it still exists, else
        the lookup by name and flank; the checksum must match."""
        if weights is None and self.weights and Path(self.weights).exists():
            weights = self.weights
        flank = self.flank if self.name == "openspliceai" else None
        model = load_base_model(
            self.name, weights=weights, device=device, dtype=dtype, flank=flank, models_dir=models_dir
        )
        self.require(model, "the checkpoint")
        return model
