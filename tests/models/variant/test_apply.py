"""Running a variant model over a dataset: named outputs per task, batching, kind override, calibration."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meta_layer_cli.features.variants import EFFECT_TYPES, TARGET_KINDS
from meta_layer_cli.models.calibration import IsotonicCalibrator, TemperatureScaler
from meta_layer_cli.models.variant import (
    build_variant_model,
    calibrated_predictions,
    model_outputs,
    predict_variants,
)
from tests.models.variant.tensors import TINY, inputs, randomise


def batch_of(x) -> dict[str, torch.Tensor]:
    return dict(zip(("ref_seq", "alt_seq", "ref_tracks", "alt_tracks", "mask"), x))


@pytest.mark.parametrize(
    "name, calibration, keys",
    [
        ("validated", "none", {"quantiles", "delta"}),
        ("validated", "quantile", {"quantiles", "delta"}),
        ("splice_inducing", "none", {"logit"}),
        ("effect_type", "none", {"effect_logits"}),
        ("unified", "none", {"logit", "effect_logits"}),
    ],
)
def test_model_outputs_are_named_by_task(name, calibration, keys):
    model = build_variant_model(name, {**TINY, "calibration": calibration}).eval()
    randomise(model)
    x = inputs()
    out = model_outputs(model, batch_of(x))
    assert set(out) == keys
    if "delta" in out:
        torch.testing.assert_close(out["delta"], model(x))
        assert out["quantiles"].shape[1] == (3 if calibration == "quantile" else 1)


class Rows:
    """The slice of :class:`VariantDataset` that predict_variants / calibrated_predictions read."""

    def __init__(self, x, kind):
        self.x, self.kind = x, np.asarray(kind)

    def __len__(self):
        return len(self.kind)

    def batch(self, index, device="cpu"):
        idx = torch.as_tensor(np.asarray(index))
        out = {k: v[idx].to(device) for k, v in batch_of(self.x).items()}
        out["kind"] = torch.as_tensor(self.kind[np.asarray(index)]).to(device)
        return out


def test_predict_variants_batches_and_overrides_the_kind():
    model = build_variant_model("validated", TINY).eval()
    randomise(model)
    model.set_target_scales({"delta_psi_percent": 10.0, "log2_ratio": 2.0})
    x = inputs()
    rows = Rows(x, [0, 1, 0])
    whole = predict_variants(model, rows)["delta"]
    np.testing.assert_allclose(predict_variants(model, rows, batch_size=1)["delta"], whole, rtol=1e-5)
    kind = torch.tensor([0, 1, 0])
    np.testing.assert_allclose(whole, model(x, kind).detach().numpy(), rtol=1e-5)
    as_log2 = predict_variants(model, rows, kind="log2_ratio")["delta"]
    np.testing.assert_allclose(as_log2, model(x, torch.ones(3, dtype=torch.long)).detach().numpy(), rtol=1e-5)
    assert as_log2[1] == pytest.approx(whole[1]) and as_log2[0] != pytest.approx(whole[0])


def test_predict_variants_runs_without_tf32(monkeypatch):
    """Variant models are applied with cuDNN's TF32 off, as the meta model and the base models are: a GPU's
    default TF32 would move the reported numbers."""
    model = build_variant_model("validated", TINY).eval()
    seen = []
    forward = model.quantiles

    def recording(*args):
        seen.append(torch.backends.cudnn.allow_tf32)
        return forward(*args)

    monkeypatch.setattr(model, "quantiles", recording)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    predict_variants(model, Rows(inputs(), [0, 1, 0]), batch_size=2)
    assert seen == [False, False]
    assert torch.backends.cudnn.allow_tf32 is True


def test_calibrated_predictions_apply_each_calibrator_to_its_rows():
    rows = Rows(inputs(), [TARGET_KINDS.index("delta_psi_percent"), TARGET_KINDS.index("log2_ratio"), 0])
    double = IsotonicCalibrator([-100.0, 100.0], [-200.0, 200.0])  # y = 2x
    delta = calibrated_predictions(
        build_variant_model("validated", TINY),
        {"delta": np.array([1.0, 1.0, -3.0])},
        {"isotonic": {"log2_ratio": double}},
        rows,
    )["delta"]
    np.testing.assert_allclose(delta, [1.0, 2.0, -3.0])  # only the log2_ratio row is mapped
    unified = build_variant_model("unified", TINY)
    logits = np.zeros((3, len(EFFECT_TYPES)))
    logits[:, EFFECT_TYPES.index("normal")] = np.log(3.0)  # p(normal) = 3 / (3 + 6) = 1/3 untempered
    out = calibrated_predictions(
        unified,
        {"logit": np.array([0.0, 2.0, -2.0]), "effect_logits": logits},
        {"temperature": TemperatureScaler(2.0)},
        rows,
    )
    np.testing.assert_allclose(out["probability"], 1 / (1 + np.exp(-np.array([0.0, 1.0, -1.0]))))
    np.testing.assert_allclose(out["effect_probs"][:, EFFECT_TYPES.index("normal")], 1 / 3)
    # an effect-type classifier alone: splice-altering = anything but "normal"
    alone = calibrated_predictions(build_variant_model("effect_type", TINY), {"effect_logits": logits}, {}, rows)
    np.testing.assert_allclose(alone["probability"], 2 / 3)
