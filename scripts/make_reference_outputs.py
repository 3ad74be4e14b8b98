"""Generate reference outputs of the OFFICIAL SpliceAI (Keras) and OpenSpliceAI
(PyTorch) implementations on four fixed 13,000-nt windows, for use as test
fixtures (tests/fixtures/reference_outputs.npz).

This script is NOT part of the test suite and is not run by CI; it needs a
throw-away environment with the official packages:

    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install torch==2.13.0          # CPU wheel is fine
    /tmp/refenv/bin/pip install tensorflow tf_keras spliceai openspliceai \
        numpy h5py frame-alignment-checks
    /tmp/refenv/bin/python scripts/make_reference_outputs.py \
        --osai-dir /work/shared/models/openspliceai-mane \
        [--genes-npz PATH/relevant_validation_genes.npz] \
        [--spliceai-models-dir PATH/spliceai/models] \
        [--out tests/fixtures/reference_outputs.npz]

(`frame-alignment-checks` is only installed to obtain its data file; it is not
imported. Pass --genes-npz to use a copy of the file instead.)  SpliceAI
weights default to the `spliceai/models/spliceai{1..5}.h5` files of the
installed `spliceai` distribution, located via importlib.metadata.

Compatibility shims (SpliceAI 1.3.1 on current TF/numpy):
  * `keras` is aliased to `tf_keras` (TF_USE_LEGACY_KERAS=1 and
    sys.modules['keras'] = tf_keras) so the Keras-2 .h5 models load;
  * `np.fromstring` (removed in numpy 2) is monkeypatched to `np.frombuffer`
    so `spliceai.utils.one_hot_encode` works;
  * models are loaded with compile=False;
  * if `pkg_resources` is missing (setuptools >= 81 or none), a tiny shim
    module provides the two functions spliceai imports from it.

Windows: for each (gene key, out_start) below, the gene's one-hot sequence is
padded with 5000 N (all-zero rows) on each side and sliced
padded[out_start : out_start + 13000], so the 3000-nt output region
gene[out_start : out_start+3000] has exactly 5000 nt of context on each side.

Outputs (all float32, shape [4, 3000, 3], length-major, channel order
(neither, acceptor, donor)):
  spliceai              mean over the 5 Keras models of model.predict(x)
                        (the Keras models end in a softmax over channels).
  openspliceai_10000nt  mean over seeds rs10..rs14 of SpliceAI(L=32, W, AR)(x),
                        the model's own forward = F.softmax(logits, dim=1)
                        (softmax over the channel dim of [N, 3, L]), averaged
                        exactly as openspliceai.predict.predict.predict() does
                        (torch.mean(torch.stack([...]), axis=0)), then
                        permuted [N,3,L] -> [N,L,3].  Input: the whole window.
  openspliceai_80nt     same with the 80nt models; input
                        window[:, 5000-40 : 5000+3000+40] (3080 nt).
Plus seq_codes (uint8 [4, 13000], 0..3 = A,C,G,T, 4 = N), gene_ids (str),
out_start (int64).
"""

import argparse
import importlib.metadata
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

CONTEXT = 10000  # total SpliceAI context (5000 each side)
OUT_LEN = 3000
WINDOWS = [  # (gene key, output-region start in gene coordinates)
    ("x1", 0),
    ("x3", 10000),
    ("x8", 0),  # x7 was requested but does not exist in the npz; next key is x8
    ("x12", 5000),
]
OSAI_SEEDS = [10, 11, 12, 13, 14]

# Copied verbatim from openspliceai/predict/predict.py (load_model, v0.0.7).
OSAI_ARCH = {
    80: (np.asarray([11, 11, 11, 11]), np.asarray([1, 1, 1, 1])),
    10000: (
        np.asarray([11, 11, 11, 11, 11, 11, 11, 11, 21, 21, 21, 21, 41, 41, 41, 41]),
        np.asarray([1, 1, 1, 1, 4, 4, 4, 4, 10, 10, 10, 10, 25, 25, 25, 25]),
    ),
}


def _dist_file(dist, rel):
    p = importlib.metadata.distribution(dist).locate_file(rel)
    return str(p)


def build_windows(genes_npz):
    data = np.load(genes_npz)
    codes = []
    for key, start in WINDOWS:
        x = data[key]
        assert x.ndim == 2 and x.shape[1] == 4
        assert x.shape[0] >= start + OUT_LEN, (key, x.shape)
        assert np.all(x.sum(1) <= 1)
        c = np.where(x.sum(1) == 0, 4, x.argmax(1)).astype(np.uint8)
        padded = np.concatenate([np.full(CONTEXT // 2, 4, np.uint8), c, np.full(CONTEXT // 2, 4, np.uint8)])
        w = padded[start : start + OUT_LEN + CONTEXT]
        assert w.shape == (OUT_LEN + CONTEXT,)
        codes.append(w)
    return np.stack(codes)


def codes_to_onehot(codes):
    eye = np.concatenate([np.eye(4, dtype=np.float32), np.zeros((1, 4), np.float32)])
    return eye[codes]  # [..., L, 4], N -> zeros


def run_spliceai(seq_codes, models_dir):
    import tf_keras

    sys.modules["keras"] = tf_keras
    np.fromstring = lambda s, dtype=float: np.frombuffer(  # noqa: E731
        s.encode() if isinstance(s, str) else s, dtype=dtype
    )
    try:
        import pkg_resources  # noqa: F401  (spliceai imports it; gone in new setuptools)
    except ImportError:
        import types

        shim = types.ModuleType("pkg_resources")
        shim.get_distribution = lambda name: types.SimpleNamespace(version=importlib.metadata.version(name))
        shim.resource_filename = lambda pkg, rel: _dist_file(pkg, f"{pkg}/{rel}")
        sys.modules["pkg_resources"] = shim
    from spliceai.utils import one_hot_encode  # official encoder

    x = np.stack([one_hot_encode("".join("ACGTN"[c] for c in row)) for row in seq_codes]).astype(np.float32)
    assert np.array_equal(x, codes_to_onehot(seq_codes))
    preds = []
    for i in range(1, 6):
        path = os.path.join(models_dir, f"spliceai{i}.h5")
        model = tf_keras.models.load_model(path, compile=False)
        preds.append(model.predict(x, batch_size=len(x), verbose=0))
        tf_keras.backend.clear_session()
    y = np.mean(preds, axis=0).astype(np.float32)
    assert y.shape == (len(seq_codes), OUT_LEN, 3), y.shape
    return y


def run_openspliceai(seq_codes, osai_dir, flank):
    import torch
    from openspliceai.train_base.openspliceai import SpliceAI

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    W, AR = OSAI_ARCH[flank]
    assert 2 * np.sum(AR * (W - 1)) == flank
    lo = CONTEXT // 2 - flank // 2
    hi = CONTEXT // 2 + OUT_LEN + flank // 2
    x = torch.tensor(codes_to_onehot(seq_codes[:, lo:hi])).permute(0, 2, 1)  # [N,4,L]
    models = []
    for s in OSAI_SEEDS:
        m = SpliceAI(32, W, AR)
        sd = torch.load(
            os.path.join(osai_dir, f"{flank}nt", f"model_{flank}nt_rs{s}.pt"),
            map_location="cpu",
            weights_only=True,
        )
        m.load_state_dict(sd)
        m.eval()
        models.append(m)
    # As in openspliceai.predict.predict.predict():
    with torch.no_grad():
        y = torch.mean(torch.stack([models[m](x).detach().cpu() for m in range(len(models))]), axis=0)
    y = y.permute(0, 2, 1).contiguous().numpy().astype(np.float32)  # [N, L, 3]
    assert y.shape == (len(seq_codes), OUT_LEN, 3), y.shape
    return y


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--genes-npz", default=None)
    ap.add_argument("--spliceai-models-dir", default=None)
    ap.add_argument("--osai-dir", default="/work/shared/models/openspliceai-mane")
    ap.add_argument(
        "--out",
        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference_outputs.npz"),
    )
    a = ap.parse_args()
    genes_npz = a.genes_npz or _dist_file(
        "frame-alignment-checks", "frame_alignment_checks/data/relevant_validation_genes.npz"
    )
    sai_dir = a.spliceai_models_dir or os.path.dirname(_dist_file("spliceai", "spliceai/models/spliceai1.h5"))

    seq_codes = build_windows(genes_npz)
    out = dict(
        seq_codes=seq_codes,
        gene_ids=np.array([k for k, _ in WINDOWS]),
        out_start=np.array([s for _, s in WINDOWS], dtype=np.int64),
    )
    out["openspliceai_80nt"] = run_openspliceai(seq_codes, a.osai_dir, 80)
    out["openspliceai_10000nt"] = run_openspliceai(seq_codes, a.osai_dir, 10000)
    out["spliceai"] = run_spliceai(seq_codes, sai_dir)
    for k, v in out.items():
        print(k, v.shape, v.dtype)
    np.savez_compressed(a.out, **out)
    print("wrote", a.out, os.path.getsize(a.out), "bytes")


if __name__ == "__main__":
    main()
