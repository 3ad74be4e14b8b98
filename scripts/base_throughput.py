"""SpliceAI ensemble throughput: the official tool's blocking vs metalayer's default path.

Prints, for one run on the same real input (default 1 Mb of demo gene sequence):

(a) official blocking: 5,000-nt output blocks, each with its full 10,000-nt
    context, batch 1, through a plain port of the published network
    (zero-padded Conv1d, BatchNorm unfused) — what the `spliceai` tool does;
(a') the same blocking through metalayer's fused network, to separate the
    blocking gain from the kernel gain;
(b) metalayer's default path (`predict_sequence`);

the ratio (b)/(a), the max |difference| of their outputs, and the fraction of
the machine's float32 peak (a large matmul) that (b) reaches, counting the
multiply-adds its valid convolutions actually perform.

    python scripts/base_throughput.py [--nt 1000000] [--device cpu]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from meta_layer_cli import load_base_model
from meta_layer_cli.base_models.network import reference_forward
from meta_layer_cli.base_models.spliceai import default_weights, read_keras_network
from meta_layer_cli.io.demo import demo_gene_ids, demo_gene_length, load_demo_gene
from meta_layer_cli.io.sequence import codes_to_one_hot, sequence_to_codes

OFFICIAL_BLOCK = 5000


def real_sequence(n: int) -> str:
    """The first ``n`` nt of the longest demo genes, joined (real DNA, no N padding inside)."""
    ids = sorted(demo_gene_ids(), key=demo_gene_length, reverse=True)
    parts, total = [], 0
    for g in ids:
        parts.append(load_demo_gene(g).sequence)
        total += len(parts[-1])
        if total >= n:
            break
    return "".join(parts)[:n]


def peak_flops(device: torch.device, n: int = 4096, repeats: int = 5) -> float:
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def valid_conv_macs(model, out_len: int) -> float:
    """Multiply-adds of the fused valid-convolution ensemble for one forward pass of ``out_len``."""
    total = 0.0
    for net in model.networks:
        length = out_len + 2 * net.context
        c = net.in_conv.out_channels
        total += length * 4 * c + length * c * c  # input conv + input skip
        for i, (conv1, crop) in enumerate(zip(net.conv1, net.crops)):
            k = conv1.kernel_size[1]
            total += (length - crop) * c * c * k + (length - 2 * crop) * c * c * k
            length -= 2 * crop
            if (i + 1) % 4 == 0:
                total += length * c * c
        total += out_len * c * net.out_conv.out_channels
    return total


def default_path_macs(model, n: int) -> float:
    blocks = [model.block_size] * (n // model.block_size) + ([n % model.block_size] if n % model.block_size else [])
    return sum(valid_conv_macs(model, b) for b in blocks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nt", type=int, default=1_000_000)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)

    seq = real_sequence(args.nt)
    n = len(seq)
    model = load_base_model("spliceai", device=args.device)
    c = model.context
    codes = sequence_to_codes("N" * c + seq + "N" * c)
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {device}; input {n:,} nt of real sequence"
    )

    # (b) default path
    model.predict_sequence(seq[:20_000])  # warm-up
    t = time.perf_counter()
    fast = model.predict_sequence(seq)
    _sync(device)
    t_fast = time.perf_counter() - t

    # (a) official blocking, plain port
    params = [read_keras_network(p) for p in default_weights()]
    params_dev = [_to(p, device) for p in params]
    official = np.empty_like(fast)
    t = time.perf_counter()
    with torch.inference_mode():
        for s in range(0, n, OFFICIAL_BLOCK):
            e = min(s + OFFICIAL_BLOCK, n)
            x = torch.from_numpy(codes_to_one_hot(codes[s : e + 2 * c])[None]).to(device)
            official[s:e] = (sum(reference_forward(p, x) for p in params_dev) / len(params_dev))[0].T.cpu().numpy()
    _sync(device)
    t_official = time.perf_counter() - t

    # (a') official blocking, fused network
    blocked = load_base_model("spliceai", device=args.device, block_size=OFFICIAL_BLOCK, batch_size=1)
    t = time.perf_counter()
    blocked_out = blocked.predict_sequence(seq)
    _sync(device)
    t_blocked = time.perf_counter() - t

    peak = peak_flops(device)
    achieved = 2 * default_path_macs(model, n) / t_fast
    rate = {k: n / v for k, v in (("a", t_official), ("a2", t_blocked), ("b", t_fast))}
    print(f"(a)  official blocking, plain port     : {rate['a']:>10,.0f} nt/s")
    print(f"(a') official blocking, fused network  : {rate['a2']:>10,.0f} nt/s")
    print(
        f"(b)  metalayer default path            : {rate['b']:>10,.0f} nt/s  "
        f"(block {model.block_size:,}, batch {model.batch_size})"
    )
    print(f"ratio (b)/(a)                           : {rate['b'] / rate['a']:.2f}x")
    print(f"ratio (a')/(a)                          : {rate['a2'] / rate['a']:.2f}x")
    print(f"max |(b) - (a)|                         : {np.abs(fast - official).max():.2e}")
    print(f"max |(a') - (a)|                        : {np.abs(blocked_out - official).max():.2e}")
    print(f"peak float32 matmul                     : {peak / 1e9:.1f} GFLOP/s")
    print(
        f"(b) achieved                            : {achieved / 1e9:.1f} GFLOP/s = {achieved / peak:.1%} of peak "
        f"({2 * default_path_macs(model, n) / n / 1e6:.2f} MFLOP per output nt)"
    )


def _to(params, device):
    if device.type == "cpu":
        return params
    import dataclasses

    def move(v):
        if torch.is_tensor(v):
            return v.to(device)
        if isinstance(v, list):
            return [move(x) for x in v]
        if dataclasses.is_dataclass(v):
            return type(v)(**{f.name: move(getattr(v, f.name)) for f in dataclasses.fields(v)})
        return v

    return move(params)


if __name__ == "__main__":
    main()
