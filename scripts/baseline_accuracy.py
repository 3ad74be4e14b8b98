"""Base-model accuracy over demo genes, from `metalayer prepare` output (the meta-layer's baselines).

metalayer prepare -b spliceai --dataset demo --out tracks/spliceai
metalayer prepare -b openspliceai --weights ../shared/models/openspliceai-mane/10000nt \\
    --dataset demo --out tracks/osai10k
metalayer prepare -b openspliceai --weights ../shared/models/openspliceai-mane/80nt --dataset demo --out tracks/osai80
python scripts/baseline_accuracy.py spliceai=tracks/spliceai osai10k=tracks/osai10k osai80=tracks/osai80
"""

from __future__ import annotations

import sys

from meta_layer_cli.artifacts import common_gene_ids
from meta_layer_cli.evaluation import evaluate_tracks

KEYS = [
    "n_genes",
    "n_nt",
    "topk_acceptor",
    "topk_donor",
    "pr_auc_acceptor",
    "pr_auc_donor",
    "fp_acceptor",
    "fp_donor",
    "fn_acceptor",
    "fn_donor",
]


def main(pairs: list[str]) -> None:
    named = dict(pair.split("=", 1) for pair in pairs)
    # every model on exactly the same genes: those finished in every directory
    genes = common_gene_ids(list(named.values()))
    rows = {name: evaluate_tracks(directory, genes) for name, directory in named.items()}
    print("| model | " + " | ".join(KEYS) + " |")
    print("|---" * (len(KEYS) + 1) + "|")
    for name, r in rows.items():
        cells = [f"{r[k]:.4f}" if isinstance(r[k], float) else f"{r[k]:,}" for k in KEYS]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
