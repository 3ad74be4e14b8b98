"""score_vcf --checkpoint: the MetaLayer= field (meta-layer deltas and variant-model outputs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meta_layer_cli.inference.variants import score_vcf
from meta_layer_cli.io.vcf import read_vcf
from meta_layer_cli.models.checkpoint import save_model
from meta_layer_cli.models.meta import build_meta_model
from tests.conftest import TINY_MODEL
from tests.inference.test_score_vcf import genome, info_of, write_input  # noqa: F401 (fixture)


def meta_checkpoint(path, base, perturb: bool = False):
    """An untrained V2 meta model (= the base model) or one with a random correction, saved as `train` saves."""
    torch.manual_seed(0)
    model = build_meta_model({**TINY_MODEL, "channels": list(base.channels)})
    if perturb:
        with torch.no_grad():
            model.head.weight.normal_(0, 0.5)
    base_entry = {"name": base.name, "weights_checksum": base.weights_checksum, "weights": None, "tracks": ""}
    return save_model(path, model, {"run": {"base_models": [base_entry], "channels": list(base.channels)}})


def entries(path, key):
    _, records = read_vcf(path)
    out = []
    for r in records:
        info = info_of(r.columns)
        out.append(info[key].split(",") if key in info else None)
    return out


@pytest.mark.parametrize("mask", [False, True])
def test_untrained_meta_layer_reproduces_the_base_deltas(osai80, genome, tmp_path, mask):  # noqa: F811
    """A V2 model starts as its base model, so MetaLayer DS/DP must repeat SpliceAI= (both strands, indels)."""
    body = write_input(tmp_path / "in.vcf", None)
    ck = meta_checkpoint(tmp_path / "meta", osai80)
    out = tmp_path / "out.vcf"
    score_vcf(tmp_path / "in.vcf", out, genome / "ref.fa", genome / "annotation.txt", base_model=osai80,
              mask=mask, progress=False, checkpoints=[ck])  # fmt: skip
    header, records = read_vcf(out)
    assert len(records) == len(body)
    assert any(m.startswith("##INFO=<ID=MetaLayer,") for m in header.meta)
    base, meta = entries(out, "SpliceAI"), entries(out, "MetaLayer")
    compared = 0
    for b, m in zip(base, meta):
        assert (b is None) == (m is None), "a MetaLayer entry exactly where there is a SpliceAI entry"
        if b is None:
            continue
        assert len(b) == len(m)
        for eb, em in zip(b, m):
            fb, fm = eb.split("|"), em.split("|")
            assert len(fm) == 13 and fm[:2] == fb[:2] and fm[10:] == [".", ".", "."]
            if fb[2] == ".":
                assert fm[2:10] == ["."] * 8
                continue
            ds_b, ds_m = np.array(fb[2:6], float), np.array(fm[2:6], float)
            assert np.abs(ds_b - ds_m).max() <= 0.0100001
            strong = ds_b >= 0.05  # the position of a clear maximum is the same
            assert [p for p, s in zip(fb[6:], strong) if s] == [p for p, s in zip(fm[6:], strong) if s]
            compared += 1
    assert compared >= 15


def test_a_trained_correction_changes_meta_deltas_only(osai80, genome, tmp_path):  # noqa: F811
    write_input(tmp_path / "in.vcf", None)
    outs = {}
    for name, perturb in (("plain", False), ("meta", True)):
        ck = meta_checkpoint(tmp_path / name, osai80, perturb=perturb)
        outs[name] = tmp_path / f"{name}.vcf"
        score_vcf(tmp_path / "in.vcf", outs[name], genome / "ref.fa", genome / "annotation.txt",
                  base_model=osai80, progress=False, checkpoints=[ck])  # fmt: skip
    assert entries(outs["plain"], "SpliceAI") == entries(outs["meta"], "SpliceAI")
    assert entries(outs["plain"], "MetaLayer") != entries(outs["meta"], "MetaLayer")


def test_checkpoint_of_another_base_model_is_refused(osai80, spliceai, genome, tmp_path):  # noqa: F811
    write_input(tmp_path / "in.vcf", ["donor_plus1"])
    ck = meta_checkpoint(tmp_path / "meta", spliceai)
    with pytest.raises(ValueError, match="trained on spliceai tracks"):
        score_vcf(tmp_path / "in.vcf", tmp_path / "out.vcf", genome / "ref.fa", genome / "annotation.txt",
                  base_model=osai80, progress=False, checkpoints=[ck])  # fmt: skip
    assert not (tmp_path / "out.vcf").exists()
