"""Base-model tracks for the variant benchmark computed on a GPU machine, then cached here.

The variant benchmark (``variant_models.py``) spends most of its CPU time on base-model
tracks (SpliceAI ~1 h, Pangolin ~2.5 h on 2 cores). This script moves that work to a
GPU machine in three steps, without changing a single cache key:

1. ``collect`` (here): builds the variant datasets exactly as the benchmark does, with a
   stand-in model that records every (sequence, upstream, downstream) input the base
   model would be asked for, and writes them to ``items.npz``;
2. ``predict`` (GPU machine): imports only :mod:`meta_layer_cli.base_models` (no polars,
   pydantic or pysam needed there), predicts every item with the real weights and writes
   ``[len, C]`` float32 scores in parts small enough to bring back;
3. ``ingest`` (here): puts every score into the :class:`PredictionCache` under the key
   the benchmark will look up (model name, weights checksum, padded input).

Predictions on the GPU run in float32 with TF32 off (see
:meth:`meta_layer_cli.base_models.base.NeuralBaseModel.predict`), so they equal the CPU's up
to summation order; ``predict`` also rescoring a sample on the CPU checks that.

    python scripts/gpu_tracks.py collect --out items.npz
    python scripts/gpu_tracks.py predict --items items.npz --base-model pangolin --weights DIR \\
        --device cuda --out OUTDIR
    python scripts/gpu_tracks.py ingest --scores OUTDIR --base-model pangolin --weights DIR --cache CACHE
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("METALAYER_SHARED", REPO.parent / "shared"))
PART_BYTES = 14 * 2**20  # files come back from the GPU machine at 16 MiB at most


class _RecordingModel:
    """Looks like a base model to ``predict_sequences``; records inputs, returns zeros."""

    def __init__(self, model):
        self.name, self.weights_checksum = model.name, model.weights_checksum
        self.context, self.channels = model.context, model.channels
        self.items: dict[tuple[str, str, str], None] = {}

    def predict_genes(self, genes):
        out = []
        for g in genes:
            self.items[(g.sequence, g.upstream, g.downstream)] = None
            out.append(np.zeros((len(g.sequence), len(self.channels)), dtype=np.float32))
        return out

    def predict_codes(self, codes):  # never called: marks the stand-in as able to predict new sequences
        raise NotImplementedError


def collect(a: argparse.Namespace) -> None:
    from meta_layer_cli.artifacts.cache import PredictionCache
    from meta_layer_cli.base_models import load_base_model
    from meta_layer_cli.base_models.base import padded_codes
    from meta_layer_cli.features.variants import build_variant_dataset
    from meta_layer_cli.jobs.variants import resolve_variant_config

    variants = a.shared / "data" / "variants"
    cfg = resolve_variant_config(
        None,
        train=[
            {"loader": "vexseq", "path": str(variants / "vexseq_hepg2_train.csv")},
            {"loader": "mapsy", "path": str(variants / "mapsy.csv"), "max_rows": a.mapsy_rows},
        ],
        evaluate=[{"loader": "wt1_saturation"}],
    )
    recorder = _RecordingModel(load_base_model("openspliceai", weights=str(a.shared / "models/openspliceai-mane/80nt")))
    build = dict(window=cfg.window, cache=None, delta_window=cfg.delta_window)
    build_variant_dataset([s.load() for s in cfg.train], recorder, **build)
    for spec in cfg.evaluate:
        build_variant_dataset(spec.load(), recorder, **build)
    items = list(recorder.items)
    if a.skip_cached:
        cache = PredictionCache(a.cache)
        model = load_base_model(a.skip_cached)
        items = [i for i in items if cache.get(model, padded_codes(model.context, *i)) is None]
    flanks = list(dict.fromkeys([i[1] for i in items] + [i[2] for i in items]))
    index = {f: k for k, f in enumerate(flanks)}
    seqs = np.array([i[0] for i in items], dtype=bytes)
    up, down = np.array([index[i[1]] for i in items]), np.array([index[i[2]] for i in items])
    np.savez_compressed(a.out, seq=seqs, flanks=np.array(flanks, dtype=bytes), up=up, down=down)
    print(f"{len(items)} inputs, {sum(len(i[0]) for i in items):,} nt -> {a.out}")


def read_items(path: Path) -> list[tuple[str, str, str]]:
    with np.load(path) as data:
        seqs, flanks = [s.decode() for s in data["seq"]], [f.decode() for f in data["flanks"]]
        return [(s, flanks[u], flanks[d]) for s, u, d in zip(seqs, data["up"], data["down"])]


def predict(a: argparse.Namespace) -> None:
    import torch

    from meta_layer_cli.base_models import load_base_model
    from meta_layer_cli.io.genes import GeneSequence

    items = read_items(a.items)
    model = load_base_model(a.base_model, weights=a.weights, device=a.device)
    genes = [
        GeneSequence(str(i), "", "", "+", s, np.zeros(len(s), np.int8), None, u, d) for i, (s, u, d) in enumerate(items)
    ]
    if a.device.startswith("cuda"):
        model.predict_genes(genes[:8])  # warm-up: cuDNN picks its kernels
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    scores: list[np.ndarray] = []
    step = 2000
    for i in range(0, len(genes), step):
        scores += model.predict_genes(genes[i : i + step])
    seconds = time.perf_counter() - t0
    nt = sum(len(i[0]) for i in items)
    summary = {
        "model": model.name,
        "checksum": model.weights_checksum,
        "device": a.device,
        "inputs": len(items),
        "nt": nt,
        "seconds": round(seconds, 2),
        "gpu": torch.cuda.get_device_name() if a.device.startswith("cuda") else None,
    }
    if a.check_cpu:
        cpu = load_base_model(a.base_model, weights=a.weights, device="cpu")
        rng = np.random.default_rng(0)
        pick = rng.choice(len(genes), size=min(a.check_cpu, len(genes)), replace=False)
        ref = cpu.predict_genes([genes[i] for i in pick])
        summary["cpu_check_max_abs_diff"] = float(max(np.abs(r - scores[i]).max() for r, i in zip(ref, pick)))
        summary["cpu_check_inputs"] = len(pick)
    a.out.mkdir(parents=True, exist_ok=True)
    part, size, k = {}, 0, 0

    def flush():
        nonlocal part, size, k
        if part:
            np.savez_compressed(a.out / f"{model.name}_{k:02d}.npz", **part)
            part, size, k = {}, 0, k + 1

    for i, s in enumerate(scores):
        part[f"s{i}"] = s.astype(np.float32)
        size += s.nbytes  # float32 probabilities barely compress
        if size >= PART_BYTES:
            flush()
    flush()
    (a.out / f"{model.name}_summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))


def ingest(a: argparse.Namespace) -> None:
    from meta_layer_cli.artifacts.cache import PredictionCache
    from meta_layer_cli.base_models import load_base_model
    from meta_layer_cli.base_models.base import padded_codes

    items = read_items(a.items)
    model = load_base_model(a.base_model, weights=a.weights)
    summary = json.loads((a.scores / f"{model.name}_summary.json").read_text())
    if summary["checksum"] != model.weights_checksum:
        raise SystemExit(f"scores were made with weights {summary['checksum']}, these are {model.weights_checksum}")
    cache = PredictionCache(a.cache)
    done = 0
    for path in sorted(a.scores.glob(f"{model.name}_[0-9][0-9].npz")):
        with np.load(path) as part:
            for key in part.files:
                i = int(key[1:])
                seq, up, down = items[i]
                value = part[key]
                if value.shape != (len(seq), len(model.channels)):
                    raise SystemExit(f"{path.name}:{key}: shape {value.shape} for a {len(seq)}-nt input")
                cache.put(model, padded_codes(model.context, seq, up, down), value)
                done += 1
    if done != len(items):
        raise SystemExit(f"only {done} of {len(items)} inputs have scores")
    print(f"{done} predictions of {model.name} -> {a.cache}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="step", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--shared", type=Path, default=SHARED)
    c.add_argument("--mapsy-rows", type=int, default=None)
    c.add_argument("--out", type=Path, default=Path("items.npz"))
    c.add_argument("--skip-cached", metavar="BASE_MODEL", default=None, help="leave out inputs this model has cached")
    c.add_argument("--cache", default=None, help="the cache --skip-cached looks in")
    p = sub.add_parser("predict")
    p.add_argument("--items", type=Path, required=True)
    p.add_argument("--base-model", required=True)
    p.add_argument("--weights", default=None)
    p.add_argument("--device", default="cuda")
    p.add_argument("--check-cpu", type=int, default=0, help="also predict this many inputs on the CPU and compare")
    p.add_argument("--out", type=Path, required=True)
    i = sub.add_parser("ingest")
    i.add_argument("--items", type=Path, required=True)
    i.add_argument("--scores", type=Path, required=True)
    i.add_argument("--base-model", required=True)
    i.add_argument("--weights", default=None)
    i.add_argument("--cache", required=True)
    a = ap.parse_args()
    {"collect": collect, "predict": predict, "ingest": ingest}[a.step](a)


if __name__ == "__main__":
    main()
