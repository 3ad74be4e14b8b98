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


def f1_optimal_threshold(scores: np.ndarray, is_site: np.ndarray) -> float:
    """The score threshold (call ``score >= t``) that maximises F1; chosen on validation genes."""
    scores = np.asarray(scores, dtype=np.float64)
    is_site = np.asarray(is_site, dtype=bool)
    n_pos = int(is_site.sum())
    if n_pos == 0:
        return 0.5
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], is_site[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[last]
    f1 = 2 * tp / (last + 1 + n_pos)
    return float(s[last[int(np.argmax(f1))]])


def reliability_curve(probs: np.ndarray, is_site: np.ndarray, bins: int = 15) -> dict[str, list]:
    """Per equal-width bin of predicted probability: mean prediction, observed frequency, count."""
    probs = np.asarray(probs, dtype=np.float64)
    is_site = np.asarray(is_site, dtype=np.float64)
    idx = np.minimum((probs * bins).astype(int), bins - 1)
    count = np.bincount(idx, minlength=bins)
    mean_pred = np.bincount(idx, weights=probs, minlength=bins) / np.maximum(count, 1)
    observed = np.bincount(idx, weights=is_site, minlength=bins) / np.maximum(count, 1)
    return {"mean_predicted": mean_pred.tolist(), "observed": observed.tolist(), "count": count.tolist()}


def expected_calibration_error(probs: np.ndarray, is_site: np.ndarray, bins: int = 15) -> float:
    """ECE of one class (one-vs-rest): count-weighted mean |observed - predicted| over bins."""
    curve = reliability_curve(probs, is_site, bins)
    count = np.asarray(curve["count"], dtype=np.float64)
    gap = np.abs(np.asarray(curve["observed"]) - np.asarray(curve["mean_predicted"]))
    return float((count * gap).sum() / max(count.sum(), 1))


def canonical_metrics(probs: np.ndarray, labels: np.ndarray, thresholds: dict[int, float] | None = None) -> dict:
    """The meta-layer's report card on ``probs [N, 3]`` vs ``labels [N]``.

    FP/FN are summed over acceptor and donor; ``*_at_f1opt`` uses per-class
    ``thresholds`` (chosen on validation genes); ``ece`` is the mean of the
    acceptor and donor one-vs-rest ECEs.
    """
    thresholds = thresholds or {1: 0.5, 2: 0.5}
    out: dict[str, float] = {}
    fp5 = fn5 = fpo = fno = 0
    eces = []
    for cls, name in ((1, "acceptor"), (2, "donor")):
        is_site = labels == cls
        out[f"pr_auc_{name}"] = average_precision(probs[:, cls], is_site)
        out[f"topk_{name}"] = topk_accuracy(probs[:, cls], is_site)
        fp, fn = confusion_at(probs[:, cls], is_site, 0.5)
        fp5, fn5 = fp5 + fp, fn5 + fn
        fp, fn = confusion_at(probs[:, cls], is_site, thresholds[cls])
        fpo, fno = fpo + fp, fno + fn
        eces.append(expected_calibration_error(probs[:, cls], is_site))
    out["pr_auc_macro"] = (out["pr_auc_acceptor"] + out["pr_auc_donor"]) / 2
    out["topk_mean"] = (out["topk_acceptor"] + out["topk_donor"]) / 2
    out["fp_at_0.5"], out["fn_at_0.5"] = fp5, fn5
    out["fp_at_f1opt"], out["fn_at_f1opt"] = fpo, fno
    out["ece"] = float(np.mean(eces))
    return out


def precision_recall_curve(scores: np.ndarray, is_site: np.ndarray, max_points: int = 400) -> dict[str, list]:
    """Precision and recall at (at most ``max_points``) distinct thresholds, for plotting."""
    scores = np.asarray(scores, dtype=np.float64)
    is_site = np.asarray(is_site, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], is_site[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[last]
    precision, recall = tp / (last + 1), tp / max(int(is_site.sum()), 1)
    # evenly spaced in recall, where the curve changes; the long tail of near-zero scores is one point
    levels = np.linspace(0, recall[-1], max_points)
    keep = np.unique(np.minimum(np.searchsorted(recall, levels), len(recall) - 1))
    return {"precision": precision[keep].tolist(), "recall": recall[keep].tolist()}
