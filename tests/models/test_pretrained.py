"""A transformers model from a local folder as the sequence encoder: built from a tiny config in the test itself
(no download), trained a step, saved as safetensors and rebuilt without the folder."""

import json

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from meta_layer_cli.models.checkpoint import load_model, save_model  # noqa: E402
from meta_layer_cli.models.meta import MetaModelConfig, build_meta_model  # noqa: E402
from meta_layer_cli.models.pretrained import read_vocabulary  # noqa: E402
from meta_layer_cli.runtime.errors import InputDataError  # noqa: E402

SMALL = {"width": 8, "kernel": 5, "sequence_dilations": [1], "score_dilations": [1], "trunk_dilations": [1]}


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A 1-layer BERT saved in the Hugging Face layout with a single-nucleotide vocabulary."""
    folder = tmp_path_factory.mktemp("tiny_lm")
    config = transformers.BertConfig(
        vocab_size=9,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "A", "C", "G", "T", "N"]) + "\n")
    return folder


def one_hot(seq: str) -> torch.Tensor:
    from meta_layer_cli.io.sequence import one_hot_encode

    return torch.from_numpy(one_hot_encode(seq))[None]


def test_bases_map_to_the_folders_tokens(tiny_lm):
    assert read_vocabulary(tiny_lm) == {"A": 4, "C": 5, "G": 6, "T": 7, "N": 8}
    model = build_meta_model(
        MetaModelConfig(
            channels=["neither", "acceptor", "donor"],
            sequence_encoder="transformers",
            pretrained_model=str(tiny_lm),
            **SMALL,
        )
    )
    assert model.sequence_encoder.tokens(one_hot("ACGTN")).tolist() == [[4, 5, 6, 7, 8]]
    # the pretrained weights were loaded, not a fresh initialisation
    fresh = transformers.BertModel.from_pretrained(str(tiny_lm), local_files_only=True)
    for name, value in fresh.state_dict().items():
        torch.testing.assert_close(model.sequence_encoder.backbone.state_dict()[name], value)


def test_trains_saves_and_reloads_without_the_folder(tiny_lm, tmp_path):
    config = MetaModelConfig(
        channels=["neither", "acceptor", "donor"],
        sequence_encoder="transformers",
        pretrained_model=str(tiny_lm),
        **SMALL,
    )
    torch.manual_seed(1)
    model = build_meta_model(config)
    x = one_hot("ACGT" * 40)  # 160 nt: three 64-nt tiles
    tracks = torch.rand(1, 3, 160)
    tracks = tracks / tracks.sum(1, keepdim=True)
    before = model.sequence_encoder.backbone.embeddings.word_embeddings.weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model.head.weight.data.normal_(0, 0.1)  # let gradients reach the encoder
    loss = model(x, tracks)[0, 1].sum()
    loss.backward()
    opt.step()
    assert not torch.equal(before, model.sequence_encoder.backbone.embeddings.word_embeddings.weight)
    save_model(tmp_path / "ck", model)
    saved = json.loads((tmp_path / "ck" / "config.json").read_text())["model"]
    assert saved["pretrained_tokens"]["T"] == 7 and saved["pretrained_config"]["model_type"] == "bert"
    moved = tmp_path / "moved"
    tiny_lm.rename(moved)  # the checkpoint must not need the folder any more
    try:
        again, _ = load_model(tmp_path / "ck")
        model.eval()
        np.testing.assert_allclose(again(x, tracks).detach().numpy(), model(x, tracks).detach().numpy(), atol=1e-6)
    finally:
        moved.rename(tiny_lm)


def test_remote_code_is_never_run_by_default(tiny_lm, tmp_path):
    folder = tmp_path / "custom"
    folder.mkdir()
    config = json.loads((tiny_lm / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel", "AutoConfig": "modeling_evil.EvilConfig"}
    config["model_type"] = "evil"
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_evil.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').write('x')\n")
    (folder / "vocab.txt").write_text((tiny_lm / "vocab.txt").read_text())
    with pytest.raises(Exception) as info:
        build_meta_model(
            MetaModelConfig(
                channels=["neither", "acceptor", "donor"],
                sequence_encoder="transformers",
                pretrained_model=str(folder),
                **SMALL,
            )
        )
    assert "trust_remote_code" in str(info.value) or "evil" in str(info.value)
    assert not (tmp_path / "ran").exists()


def test_a_kmer_vocabulary_is_refused(tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\nAAA\nAAC\n")
    (tmp_path / "tokenizer_config.json").write_text('{"unk_token": null}')
    with pytest.raises(InputDataError, match="no single-nucleotide token for A, C, G, T \\(k-mer"):
        read_vocabulary(tmp_path)
