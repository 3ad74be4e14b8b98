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
- how concentrated the errors are: the share of all FP + FN in the worst 5 % and 10 % of genes;
- what keeps mean top-k below 1 (``topk`` part of the output, network + decoder): per class, the non-sites that
  rank among the k top scores of the part (k = its annotated sites) and the sites they push out, by the base
  model's score (< 0.01, >= 0.5), by dinucleotide, and by distance to the nearest annotated site of the class
  (<= 10 nt: the same site shifted; otherwise a site elsewhere that the annotation does not name, or a decoy).

Prints Markdown (and ``--json`` the numbers). Read-only: writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Sequence

import numpy as np

# class -> (its canonical dinucleotides, offset of their first base from the site)
CANONICAL = {1: (("AG",), -2), 2: (("GT", "GC"), 1)}
COUNTS = (
    "tp",
    "fp",
    "fn",
    "fn_base_below_0.01",
    "fn_in_genes_with_no_site_found",
    "fp_canonical_dinucleotide",
    "fp_in_genes_without_sites",
)


def at_dinucleotide(codes: np.ndarray, positions: np.ndarray, offset: int, wanted: Sequence[str]) -> np.ndarray:
    """Whether the two bases at ``positions + offset`` are one of ``wanted`` (False past either end)."""
    from meta_layer_cli.io.sequence import sequence_to_codes

    first = positions + offset
    inside = (first >= 0) & (first + 1 < len(codes))
    pairs = np.full((len(positions), 2), -1, dtype=np.int16)
    pairs[inside] = np.stack([codes[first[inside]], codes[first[inside] + 1]], axis=1)
    return np.any([(pairs == sequence_to_codes(w)).all(axis=1) for w in wanted], axis=0)


CLASS_NAMES = {1: "acceptor", 2: "donor"}
KEEP_ABOVE = 1e-3  # non-sites kept for the top-k breakdown; the k-th score must be above it (checked)


def topk_rows(score: np.ndarray, is_site: np.ndarray, base: np.ndarray, codes: np.ndarray, cls: int) -> np.ndarray:
    """``[n, 5]`` rows (meta score, is site, base score, canonical dinucleotide, nt to the nearest annotated site
    of the class) for one gene's positions that could rank in a top k: sites, and non-sites scoring > KEEP_ABOVE."""
    keep = np.flatnonzero(is_site | (score > KEEP_ABOVE))
    sites = np.flatnonzero(is_site)
    if len(sites):
        right = np.clip(np.searchsorted(sites, keep), 0, len(sites) - 1)
        left = np.clip(right - 1, 0, len(sites) - 1)
        distance = np.minimum(np.abs(sites[right] - keep), np.abs(sites[left] - keep))
    else:
        distance = np.full(len(keep), 10**9)
    wanted, offset = CANONICAL[cls]
    canonical = at_dinucleotide(codes, keep, offset, wanted)
    return np.stack([score[keep], is_site[keep], base[keep], canonical, distance], axis=1).astype(np.float64)


def topk_anatomy(rows: np.ndarray) -> dict:
    """The top-k's intruders (non-sites among the k top scores) and the sites they push out, described."""
    k = int(rows[:, 1].sum())
    order = np.argsort(-rows[:, 0], kind="stable")
    top = np.zeros(len(rows), dtype=bool)
    top[order[:k]] = True
    site = rows[:, 1] > 0
    intruders, missed = rows[top & ~site], rows[~top & site]
    if rows[order[k - 1], 0] <= KEEP_ABOVE:  # non-sites below KEEP_ABOVE were not kept: the count would be short
        raise SystemExit(f"top-k's k-th score is {rows[order[k - 1], 0]:.1e}, below {KEEP_ABOVE}: lower KEEP_ABOVE")
    return {
        "sites": k,
        "kth_score": float(rows[order[k - 1], 0]),
        "topk": float((top & site).sum() / k),
        "intruders": len(intruders),
        "intruders_base_at_least_0.5": int((intruders[:, 2] >= 0.5).sum()),
        "intruders_base_below_0.01": int((intruders[:, 2] < 0.01).sum()),
        "intruders_canonical_dinucleotide": int(intruders[:, 3].sum()),
        "intruders_within_10nt_of_a_site": int((intruders[:, 4] <= 10).sum()),
        "missed_sites": len(missed),
        "missed_base_at_least_0.5": int((missed[:, 2] >= 0.5).sum()),
        "missed_base_below_0.01": int((missed[:, 2] < 0.01).sum()),
        "missed_canonical_dinucleotide": int(missed[:, 3].sum()),
    }


def anatomy(checkpoint: str, data: str, part: str, max_genes: int | None, device: str | None) -> dict:
    from meta_layer_cli.artifacts import load_gene_arrays
    from meta_layer_cli.evaluation.evaluator import gene_probabilities
    from meta_layer_cli.evaluation.streaming import CanonicalScores
    from meta_layer_cli.models.apply import CanonicalPredictor
    from meta_layer_cli.models.checkpoint import CanonicalCheckpoint

    predictor = CanonicalPredictor.load(checkpoint, device)
    stored = CanonicalCheckpoint.read(checkpoint, predictor.config)
    ids = list(stored.split[part])[: max_genes or None]
    channels, genes = load_gene_arrays(data, ids)
    thresholds = stored.run["thresholds"]
    scores: dict[str, CanonicalScores] = {}
    counts: dict[str, Counter] = {}
    per_gene: dict[str, list[int]] = {}
    ranked: dict[int, list[np.ndarray]] = {1: [], 2: []}  # rows (meta score, is site, base, canonical, distance)
    probabilities = gene_probabilities(
        predictor.model, channels, genes, predictor.device, predictor.structure, predictor.calibration
    )
    for gene, labels, sources in probabilities:
        codes = np.asarray(gene.codes)
        base = sources.get("base")
        if base is not None and "meta" in sources:
            for cls in (1, 2):
                ranked[cls].append(topk_rows(sources["meta"][:, cls], labels == cls, base[:, cls], codes, cls))
        for name, p in sources.items():
            if name not in thresholds:
                continue
            if name not in scores:
                scores[name] = CanonicalScores({int(k): v for k, v in thresholds[name].items()})
                counts[name], per_gene[name] = Counter(dict.fromkeys(COUNTS, 0)), []
            c = counts[name]
            errors = 0
            for cls in (1, 2):
                called = p[:, cls] >= thresholds[name][str(cls)]
                is_site = labels == cls
                tp, fp, fn = called & is_site, called & ~is_site, ~called & is_site
                errors += int(fp.sum() + fn.sum())
                c["tp"] += int(tp.sum())
                c["fp"] += int(fp.sum())
                c["fn"] += int(fn.sum())
                if base is not None:
                    c["fn_base_below_0.01"] += int((fn & (base[:, cls] < 0.01)).sum())
                if is_site.any() and not tp.any():
                    c["fn_in_genes_with_no_site_found"] += int(fn.sum())
                wanted, offset = CANONICAL[cls]
                c["fp_canonical_dinucleotide"] += int(at_dinucleotide(codes, np.flatnonzero(fp), offset, wanted).sum())
                if not (labels > 0).any():
                    c["fp_in_genes_without_sites"] += int(fp.sum())
            per_gene[name].append(errors)
            scores[name].add(p, labels)
    out = {"part": part, "genes": len(ids), "nt": int(sum(len(g) for g in genes)), "sources": {}}
    if ranked[1]:
        out["topk"] = {CLASS_NAMES[cls]: topk_anatomy(np.concatenate(rows)) for cls, rows in ranked.items()}
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
    if "topk" in result:
        classes = list(result["topk"])
        lines += ["", "top-k of network + decoder, what keeps it below 1:", ""]
        lines += ["| | " + " | ".join(classes) + " |", "|---|" + "---:|" * len(classes)]
        for key in result["topk"][classes[0]]:
            cells = [result["topk"][c][key] for c in classes]
            text = [f"{v:.4f}" if isinstance(v, float) else f"{v:,}" for v in cells]
            lines.append(f"| {key} | " + " | ".join(text) + " |")
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
