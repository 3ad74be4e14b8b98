"""Stress test of `metalayer prepare`: N concurrent shard jobs into one folder, killed with SIGKILL at random
moments and restarted until every shard finishes; the folder must then be byte-identical to one clean run.

    python scripts/stress_prepare.py --weights ../shared/models/openspliceai-mane/80nt --shards 4 --kills 12

Prints the kills, restarts and exit codes seen, and the comparison (every gene file and manifest.json). Exit
status 0 only when the result is identical. Uses a small genome built from real demo genes
(meta_layer_cli.io.demo.write_demo_genome) and, by default, OpenSpliceAI 80 nt (cheap on 2 cores).
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def compare(clean: Path, stressed: Path) -> list[str]:
    problems = []
    if (clean / "manifest.json").read_bytes() != (stressed / "manifest.json").read_bytes():
        problems.append("manifest.json differs")
    a = {p.name: p for p in (clean / "genes").iterdir()}
    b = {p.name: p for p in (stressed / "genes").iterdir()}
    if set(a) != set(b):
        problems.append(f"gene files differ: {sorted(set(a) ^ set(b))[:5]}")
    problems += [f"{name} differs" for name in sorted(set(a) & set(b)) if a[name].read_bytes() != b[name].read_bytes()]
    leftovers = [p.name for p in (stressed / "genes").iterdir() if p.name.startswith(".")]
    if leftovers:
        problems.append(f"temporary files left: {leftovers[:5]}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="../shared/models/openspliceai-mane/80nt")
    parser.add_argument("--base-model", default="openspliceai")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--kills", type=int, default=12, help="SIGKILLs to deliver before letting shards finish")
    parser.add_argument("--genes", type=int, default=60, help="demo genes (<= 12 kb) in the genome")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    from meta_layer_cli.io.demo import demo_gene_ids, demo_gene_info, demo_gene_length, write_demo_genome

    work = args.work or Path(tempfile.mkdtemp(prefix="metalayer-stress-"))
    info = demo_gene_info()
    ids = [g for g in demo_gene_ids() if g in info and demo_gene_length(g) <= 12_000][: args.genes]
    fasta, gtf = write_demo_genome(work / "genome", ids, spacer=3000)
    cli = [
        sys.executable,
        "-m",
        "meta_layer_cli",
        "--quiet",
        "prepare",
        "--fasta",
        str(fasta),
        "--gtf",
        str(gtf),
        "-b",
        args.base_model,
        "--weights",
        args.weights,
        "--device",
        "cpu",
        "--no-progress",
    ]

    clean, stressed = work / "clean", work / "stressed"
    for d in (clean, stressed):
        shutil.rmtree(d, ignore_errors=True)
    t = time.perf_counter()
    subprocess.run([*cli, "--out", str(clean)], check=True)
    clean_s = time.perf_counter() - t

    def start(k: int) -> subprocess.Popen:
        return subprocess.Popen(
            [*cli, "--out", str(stressed), "--shard", f"{k}/{args.shards}"], stderr=subprocess.PIPE, text=True
        )

    running = {k: start(k) for k in range(1, args.shards + 1)}
    kills = restarts = 0
    codes: dict[int, int] = {}
    t = time.perf_counter()
    while running:
        time.sleep(rng.uniform(0.2, 2.0))
        for k, proc in list(running.items()):
            code = proc.poll()
            if code is None:
                continue
            codes[code] = codes.get(code, 0) + 1
            if code == 0:
                del running[k]
            else:  # killed (-9) or refused: start the shard again
                running[k] = start(k)
                restarts += 1
        if kills < args.kills and running:
            k = rng.choice(sorted(running))
            running[k].kill()
            kills += 1
    stressed_s = time.perf_counter() - t
    problems = compare(clean, stressed)
    print(
        f"genome: {len(ids)} genes; shards: {args.shards}; SIGKILLs: {kills}; restarts: {restarts}; "
        f"exit codes seen: {dict(sorted(codes.items()))}"
    )
    print(f"clean run {clean_s:.1f} s; stressed run {stressed_s:.1f} s")
    print("result: byte-identical to the clean run" if not problems else "result: DIFFERS\n" + "\n".join(problems))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
