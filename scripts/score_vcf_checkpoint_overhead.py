"""What ``score-vcf --checkpoint`` adds to a plain ``score-vcf`` run (the meta-layer's MetaLayer= deltas).

Scores the SpliceAI reference fixture VCF (tests/fixtures/spliceai_vcf_reference: 22 records on a small real
genome, SNVs and indels on both strands) with SpliceAI, without and with a canonical checkpoint of the
lightweight architecture (what ``metalayer demo`` trains; untrained: the cost does not depend on the weights),
``--repeats`` times each, and prints the best time of each and their ratio. Results: scripts/RESULTS.md.

    OMP_NUM_THREADS=2 python scripts/score_vcf_checkpoint_overhead.py --repeats 3
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "spliceai_vcf_reference"


def lightweight_checkpoint(path: Path, base) -> Path:
    """An untrained meta-layer of the lightweight config on ``base``'s channels, saved as train-canonical saves."""
    import torch

    from meta_layer_cli.base_models.record import BaseModelRecord
    from meta_layer_cli.models.checkpoint import save_model
    from meta_layer_cli.models.meta import build_meta_model
    from meta_layer_cli.runtime.config import read_yaml

    torch.manual_seed(0)
    architecture = read_yaml(REPO / "configs" / "lightweight.yaml")["model"]
    model = build_meta_model({**architecture, "channels": list(base.channels)})
    record = BaseModelRecord.of(base).to_dict()
    return save_model(path, model, {"run": {"base_models": [record], "channels": list(base.channels)}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--base-model", default="spliceai")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import meta_layer_cli
    from meta_layer_cli import load_base_model
    from meta_layer_cli.inference.vcf import score_vcf
    from meta_layer_cli.models.apply import model_margin
    from meta_layer_cli.models.checkpoint import load_model

    base = load_base_model(args.base_model, weights=args.weights, device=args.device)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in ("ref.fa", "annotation.txt", "input.vcf"):
            shutil.copy(FIXTURE / name, tmp / name)
        checkpoint = lightweight_checkpoint(tmp / "meta", base)
        margin = model_margin(load_model(checkpoint)[0])
        best: dict[str, float] = {}
        for label, checkpoints in (("plain", None), ("with checkpoint", [checkpoint])) * args.repeats:
            started = time.perf_counter()
            summary = score_vcf(
                tmp / "input.vcf",
                tmp / "out.vcf",
                tmp / "ref.fa",
                tmp / "annotation.txt",
                base_model=base,
                device=args.device,
                progress=False,
                checkpoints=checkpoints,
            )
            seconds = time.perf_counter() - started
            best[label] = min(best.get(label, float("inf")), seconds)
        print(f"code: {Path(meta_layer_cli.__file__).parent}")
        print(
            f"{args.base_model} (context {base.context}), meta-layer margin {margin} nt, "
            f"{summary['records']} records, {summary['entries']} entries"
        )
        for label, seconds in best.items():
            print(f"  {label:16s} {seconds:6.2f} s")
        print(f"  ratio            {best['with checkpoint'] / best['plain']:6.2f}x")


if __name__ == "__main__":
    main()
