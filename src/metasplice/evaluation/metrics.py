"""Splice-site metrics on flat arrays of scores and labels (no scikit-learn needed).

``labels`` are int codes (0 neither, 1 acceptor, 2 donor); ``scores`` the
probability of one class per nucleotide.
"""

from __future__ import annotations

import numpy as np


def topk_accuracy(scores: np.ndarray, is_site: np.ndarray) -> float:
    """SpliceAI's top-k accuracy: with k true sites, the fraction of them among the k top scores."""
    is_site = np.asarray(is_site, dtype=bool)
    k = int(is_site.sum())
    if k == 0:
        return float("nan")
    top = np.argpartition(-np.asarray(scores), k - 1)[:k]
    return float(is_site[top].sum() / k)


def average_precision(scores: np.ndarray, is_site: np.ndarray) -> float:
    """Area under the precision-recall curve as average precision (step-wise, ties grouped)."""
    scores = np.asarray(scores, dtype=np.float64)
    is_site = np.asarray(is_site, dtype=bool)
    n_pos = int(is_site.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], is_site[order]
    # one point per distinct threshold: the last index of each run of equal scores
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def confusion_at(scores: np.ndarray, is_site: np.ndarray, threshold: float) -> tuple[int, int]:
    """(false positives, false negatives) when calling ``score >= threshold`` a site."""
    called = np.asarray(scores) >= threshold
    is_site = np.asarray(is_site, dtype=bool)
    return int((called & ~is_site).sum()), int((~called & is_site).sum())


def site_metrics(probs: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Acceptor and donor metrics from ``probs [N, 3]`` (neither, acceptor, donor) and ``labels [N]``."""
    out: dict[str, float] = {}
    for cls, name in ((1, "acceptor"), (2, "donor")):
        is_site = labels == cls
        out[f"topk_{name}"] = topk_accuracy(probs[:, cls], is_site)
        out[f"pr_auc_{name}"] = average_precision(probs[:, cls], is_site)
        fp, fn = confusion_at(probs[:, cls], is_site, threshold)
        out[f"fp_{name}"], out[f"fn_{name}"] = fp, fn
        out[f"n_{name}"] = int(is_site.sum())
    out["pr_auc_macro"] = (out["pr_auc_acceptor"] + out["pr_auc_donor"]) / 2
    out["n_nt"] = int(len(labels))
    return out
