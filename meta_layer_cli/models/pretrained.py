"""A pretrained ``transformers`` model as the sequence encoder (optional: ``pip install metalayer[transformers]``).

The model is read from a local folder in the Hugging Face layout (``config.json`` + ``model.safetensors``
or ``pytorch_model.bin``, and the tokenizer's vocabulary), e.g. a DNA language model the user
downloaded beforehand. Nothing is ever downloaded here (``local_files_only``), and the folder's
own code never runs unless ``trust_remote_code: true`` is set in the model config (off by default).

Bases are fed as single-nucleotide tokens: the ids of ``A``, ``C``, ``G``, ``T`` and ``N`` come from
the folder's vocabulary (``tokenizer.json``, ``vocab.json`` or ``vocab.txt``; ``N`` falls back to
the unknown token). Models whose vocabulary has no such tokens (k-mer or BPE-only tokenizers) are
refused with a clear error. The input is cut into tiles of ``pretrained_tile`` nt (default: the
model's maximum length), each encoded on its own, so an output sees at most its tile; the last
hidden state is projected to the meta model's width.

``[B, 4, L]`` one-hot in, ``[B, width, L]`` out, like the other sequence encoders.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from meta_layer_cli.runtime.errors import InputDataError, UsageError

BASES = ("A", "C", "G", "T", "N")
DEFAULT_TILE = 1024


def _transformers():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: no hub access at run time
    try:
        import transformers
    except ImportError:
        raise UsageError(
            "sequence_encoder transformers needs the transformers package (pip install 'metalayer[transformers]')"
        ) from None
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


def read_vocabulary(folder: str | os.PathLike) -> dict[str, int]:
    """Token ids of A, C, G, T, N from a model folder's tokenizer files (see the module docstring)."""
    folder = Path(folder)
    vocab: dict[str, int] = {}
    unk: str | None = None
    if (folder / "tokenizer.json").is_file():
        data = json.loads((folder / "tokenizer.json").read_text())
        model = data.get("model", {})
        raw = model.get("vocab", {})
        vocab = {tok: i for i, (tok, *_) in enumerate(raw)} if isinstance(raw, list) else dict(raw)
        vocab.update({t["content"]: t["id"] for t in data.get("added_tokens", [])})
        unk = model.get("unk_token")
    elif (folder / "vocab.json").is_file():
        vocab = json.loads((folder / "vocab.json").read_text())
    elif (folder / "vocab.txt").is_file():
        vocab = {line.rstrip("\n"): i for i, line in enumerate((folder / "vocab.txt").read_text().splitlines())}
    else:
        raise InputDataError(f"{folder}: no tokenizer.json, vocab.json or vocab.txt to read the base tokens from")
    if (folder / "tokenizer_config.json").is_file():
        unk = json.loads((folder / "tokenizer_config.json").read_text()).get("unk_token", unk)
        unk = unk.get("content") if isinstance(unk, dict) else unk
    tokens: dict[str, int] = {}
    for base in BASES:
        for candidate in (base, base.lower()):
            if candidate in vocab:
                tokens[base] = int(vocab[candidate])
                break
    if "N" not in tokens:
        for candidate in (unk, "[UNK]", "<unk>"):
            if candidate and candidate in vocab:
                tokens["N"] = int(vocab[candidate])
                break
    missing = [b for b in BASES if b not in tokens]
    if missing:
        raise InputDataError(
            f"{folder}: the vocabulary has no single-nucleotide token for {', '.join(missing)} "
            "(k-mer / BPE-only tokenizers are not supported)"
        )
    return tokens


def describe_folder(folder: str | os.PathLike, trust_remote_code: bool = False) -> tuple[dict, dict[str, int]]:
    """(the model's config as a dict, base token ids) of a local Hugging Face model folder."""
    folder = Path(folder).expanduser()
    if not (folder / "config.json").is_file():
        raise InputDataError(f"pretrained_model {folder}: no config.json (expected a Hugging Face model folder)")
    transformers = _transformers()
    config = transformers.AutoConfig.from_pretrained(
        str(folder), local_files_only=True, trust_remote_code=trust_remote_code
    )
    return config.to_dict(), read_vocabulary(folder)


class PretrainedEncoder(nn.Module):
    """``[B, 4, L]`` -> ``[B, width, L]`` through a ``transformers`` model (module docstring)."""

    def __init__(
        self,
        width: int,
        hf_config: dict,
        tokens: dict[str, int],
        tile: int | None = None,
        trust_remote_code: bool = False,
        weights_folder: str | None = None,
        freeze: bool = False,
    ):
        super().__init__()
        transformers = _transformers()
        config_dict = dict(hf_config)
        model_type = config_dict.pop("model_type", None)
        if model_type is None:
            raise InputDataError("pretrained_config has no model_type")
        if weights_folder is not None:
            self.backbone = transformers.AutoModel.from_pretrained(
                str(Path(weights_folder).expanduser()), local_files_only=True, trust_remote_code=trust_remote_code
            )
        else:  # rebuilt from a checkpoint: the trained weights are loaded afterwards
            config = transformers.AutoConfig.for_model(model_type, **config_dict)
            self.backbone = transformers.AutoModel.from_config(config, trust_remote_code=trust_remote_code)
        hidden = int(getattr(self.backbone.config, "hidden_size", 0) or getattr(self.backbone.config, "d_model", 0))
        if hidden <= 0:
            raise InputDataError("the pretrained model's config names no hidden_size / d_model")
        limit = getattr(self.backbone.config, "max_position_embeddings", None)
        self.tile = int(tile or (min(int(limit), 1 << 16) if limit else DEFAULT_TILE))
        if limit and self.tile > int(limit):
            raise UsageError(f"pretrained_tile {self.tile} exceeds the model's max_position_embeddings {limit}")
        self.register_buffer("token_ids", torch.tensor([tokens[b] for b in BASES], dtype=torch.long), persistent=False)
        self.proj = nn.Conv1d(hidden, width, 1)
        self.receptive_field = self.tile
        if freeze:
            for p in self.backbone.parameters():
                p.requires_grad_(False)

    @classmethod
    def from_config(cls, config) -> PretrainedEncoder:
        """Build from a :class:`~meta_layer_cli.models.meta.MetaModelConfig`; a ``pretrained_model`` folder's
        architecture and vocabulary are copied into the config (so the checkpoint rebuilds without it)."""
        if config.pretrained_model:
            hf_config, tokens = describe_folder(config.pretrained_model, config.trust_remote_code)
            config.pretrained_config, config.pretrained_tokens = hf_config, tokens
        if not config.pretrained_config or not config.pretrained_tokens:
            raise InputDataError("sequence_encoder transformers: no pretrained_model folder and no stored config")
        return cls(
            config.width,
            config.pretrained_config,
            config.pretrained_tokens,
            config.pretrained_tile,
            config.trust_remote_code,
            config.pretrained_model,
            config.freeze_encoder,
        )

    def tokens(self, one_hot: torch.Tensor) -> torch.Tensor:
        """One-hot ``[B, 4, L]`` -> token ids ``[B, L]`` (all-zero columns are N)."""
        index = torch.where(one_hot.sum(dim=1) > 0, one_hot.argmax(dim=1), torch.full_like(one_hot[:, 0], 4).long())
        return self.token_ids[index]

    def forward(self, one_hot: torch.Tensor) -> torch.Tensor:
        ids = self.tokens(one_hot)
        outputs = []
        for start in range(0, ids.shape[1], self.tile):
            part = ids[:, start : start + self.tile]
            hidden = self.backbone(input_ids=part, attention_mask=torch.ones_like(part)).last_hidden_state
            outputs.append(hidden)
        return self.proj(torch.cat(outputs, dim=1).transpose(1, 2).to(self.proj.weight.dtype))
