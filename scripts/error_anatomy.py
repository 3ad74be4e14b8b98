"""Where a canonical checkpoint's remaining errors are (issue 21: why the network + decoder stops short of its
targets), on the genes of one part of its split.

    python scripts/error_anatomy.py --checkpoint RUN/checkpoints/best --data PREPARED --part test
    python scripts/error_anatomy.py --checkpoint RUN/checkpoints/best --data PREPARED --part train --max-genes 600

For each source (the base model, the network alone, network + decoder as the checkpoint applies it) at the
checkpoint's own thresholds (chosen on its validation genes):

- PR-AUC and mean top-k on these genes (``--part train``: genes it trained on, so the gap to ``test`` is what
  does not generalise; what stays low on training genes is what the model cannot fit);
- true positives, false positives, false negatives; the false negatives whose base score was below 0.01 (sites
  the base model does not see at all), and those in genes where the source found none of the annotated sites;
- the false positives at a canonical dinucleotide (AG before an acceptor, GT/GC after a donor: a plausible site
  the annotation does not name) and in genes annotated with no splice site at all (single-exon models);
- how concentrated the errors are: the share of all FP + FN in the worst 5 % and 10 % of genes.

Prints Markdown (and ``--json`` the numbers). Read-only: writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

CANONICAL = {1: ({"AG"}, -2), 2: ({"GT", "GC"}, 1)}  # class -> (dinucleotides, offset of the first base)
BASES = np.array(list("ACGTN"))


def dinucleotides(codes: np.ndarray, positions: np.ndarray, offset: int) -> np.ndarray:
    """The two bases at ``positions + offset`` (``NN`` past either end)."""
    padded = np.concatenate([[4, 4, 4], np.minimum(codes, 4), [4, 4, 4]])
    i = positions + offset + 3
    return np.char.add(BASES[padded[i]], BASES[padded[i + 1]])


def anatomy(checkpoint: str, data: str, part: str, max_genes: int | None, device: str | None) -> dict:
    from meta_layer_cli.artifacts import load_gene_arrays, read_manifest
    from meta_layer_cli.evaluation.evaluator import gene_probabilities
    from meta_layer_cli.evaluation.streaming import CanonicalScores
    from meta_layer_cli.models.checkpoint import CanonicalCheckpoint, load_model
    from meta_layer_cli.models.site_calibration import calibration_from_config
    from meta_layer_cli.models.structure import structure_from_config
    from meta_layer_cli.runtime.device import resolve_device

    device = str(resolve_device(device))
    model, config = load_model(checkpoint, device)
    stored = CanonicalCheckpoint.read(checkpoint, config)
    ids = list(stored.split[part])[: max_genes or None]
    manifest = read_manifest(data)
    channels, genes = load_gene_arrays(data, ids, [manifest])
    thresholds = stored.run["thresholds"]
    structure, calibration = structure_from_config(config), calibration_from_config(config)
    scores: dict[str, CanonicalScores] = {}
    counts: dict[str, dict[str, int]] = {}
    per_gene: dict[str, list[int]] = {}
    for gene, labels, sources in gene_probabilities(model, channels, genes, device, structure, calibration):
        codes = np.asarray(gene.codes)
        base = sources.get("base")
        annotated_sites = int((labels > 0).sum())
        for name, p in sources.items():
            if name not in thresholds:
                continue
            if name not in scores:
                scores[name] = CanonicalScores({int(k): v for k, v in thresholds[name].items()})
                counts[name], per_gene[name] = {}, []
            c = counts[name]
            errors = 0
            for cls in (1, 2):
                called = p[:, cls] >= thresholds[name][str(cls)]
                is_site = labels == cls
                tp, fp, fn = called & is_site, called & ~is_site, ~called & is_site
                errors += int(fp.sum() + fn.sum())
                c["tp"] = c.get("tp", 0) + int(tp.sum())
                c["fp"] = c.get("fp", 0) + int(fp.sum())
                c["fn"] = c.get("fn", 0) + int(fn.sum())
                if base is not None:
                    c["fn_base_below_0.01"] = c.get("fn_base_below_0.01", 0) + int((fn & (base[:, cls] < 0.01)).sum())
                if is_site.any() and not (called & is_site).any():
                    c["fn_in_genes_with_no_site_found"] = c.get("fn_in_genes_with_no_site_found", 0) + int(fn.sum())
                wanted, offset = CANONICAL[cls]
                fp_at = np.flatnonzero(fp)
                c["fp_canonical_dinucleotide"] = c.get("fp_canonical_dinucleotide", 0) + int(
                    np.isin(dinucleotides(codes, fp_at, offset), list(wanted)).sum()
                )
                if annotated_sites == 0:
                    c["fp_in_genes_without_sites"] = c.get("fp_in_genes_without_sites", 0) + int(fp.sum())
            per_gene[name].append(errors)
            scores[name].add(p, labels)
    out = {"part": part, "genes": len(ids), "nt": int(sum(len(g) for g in genes)), "sources": {}}
    for name, s in scores.items():
        m = s.metrics()
        errors = np.sort(np.asarray(per_gene[name]))[::-1]
        total = max(int(errors.sum()), 1)
        top = {
            f"worst_{q}pct_share": float(errors[: max(1, round(len(errors) * q / 100))].sum() / total) for q in (5, 10)
        }
        out["sources"][name] = {
            "pr_auc_macro": m["pr_auc_macro"],
            "topk_mean": m["topk_mean"],
            **counts[name],
            **top,
            "genes_without_errors": int((errors == 0).sum()),
        }
    return out


def markdown(result: dict) -> str:
    names = list(result["sources"])
    keys = [k for k in result["sources"][names[0]] if k not in ("pr_auc_macro", "topk_mean")]
    lines = [
        f"{result['part']} genes: {result['genes']:,} ({result['nt'] / 1e6:.1f} Mnt), the checkpoint's thresholds",
        "",
        "| | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for key in ("pr_auc_macro", "topk_mean", *keys):
        cells = []
        for n in names:
            v = result["sources"][n].get(key)
            cells.append("—" if v is None else f"{v:.4f}" if isinstance(v, float) else f"{v:,}")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True, help="the prepared folder the checkpoint trained on")
    parser.add_argument("--part", choices=("train", "validation", "test"), default="test")
    parser.add_argument("--max-genes", type=int, help="the first N genes of that part (in the split's order)")
    parser.add_argument("--device")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    result = anatomy(args.checkpoint, args.data, args.part, args.max_genes, args.device)
    print(json.dumps(result, indent=1) if args.json else markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
