"""Metrics for variant-effect predictions, in numpy (no scipy / scikit-learn needed).

* :func:`pearson`, :func:`spearman` (Pearson of average ranks, ties share their mean rank);
* :func:`roc_auc` (Mann-Whitney U, ties counted one half) and average precision
  (:func:`meta_layer_cli.evaluation.metrics.average_precision`) for "splice-altering"
  = ``|target| >= threshold``;
* :func:`regression_metrics` bundles them; :func:`base_delta_metrics` does the same for
  raw base-model deltas, choosing the best delta column and its sign as documented there.

Default thresholds per target kind: :data:`meta_layer_cli.features.variants.DEFAULT_THRESHOLDS`
(``|delta PSI| >= 20`` percent, ``|log2 ratio| >= 1``, splice_altering at 0.5).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from meta_layer_cli.evaluation.metrics import average_precision

#: Base-model delta columns (of :func:`meta_layer_cli.artifacts.sequences.score_sequences`) tried as raw predictors.
BASE_CANDIDATES = ("delta_acceptor", "delta_donor", "delta_sites", "max_abs_delta", "signed_max_delta")


def _finite(*arrays: np.ndarray) -> list[np.ndarray]:
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    keep = np.ones(len(arrays[0]), dtype=bool)
    for a in arrays:
        keep &= np.isfinite(a)
    return [a[keep] for a in arrays]


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation over finite pairs; NaN with fewer than 2 pairs or a constant input."""
    x, y = _finite(x, y)
    if len(x) < 2:
        return float("nan")
    x, y = x - x.mean(), y - y.mean()
    denom = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denom) if denom > 0 else float("nan")


def rankdata(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their average rank (as ``scipy.stats.rankdata(method='average')``)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_x)) + 1]
    ends = np.r_[starts[1:], len(x)]
    avg = (starts + ends + 1) / 2.0  # mean of 1-based ranks starts+1 .. ends
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation over finite pairs (average ranks for ties)."""
    x, y = _finite(x, y)
    if len(x) < 2:
        return float("nan")
    return pearson(rankdata(x), rankdata(y))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (probability a positive outscores a negative, ties 1/2); NaN if one class."""
    scores, labels = _finite(scores, labels)
    positive = labels > 0.5
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def pr_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision (step-wise area under the precision-recall curve, ties grouped); NaN without positives."""
    scores, labels = _finite(scores, labels)
    return average_precision(scores, labels > 0.5)


def regression_metrics(
    prediction: np.ndarray, target: np.ndarray, threshold: float, score: np.ndarray | None = None
) -> dict[str, float]:
    """Pearson / Spearman of ``prediction`` with ``target``; AUROC / AUPRC of ``score`` (default
    ``|prediction|``) for ``|target| >= threshold``. Rows with a missing target or prediction are left out."""
    prediction, target = np.asarray(prediction, np.float64), np.asarray(target, np.float64)
    score = np.abs(prediction) if score is None else np.asarray(score, np.float64)
    keep = np.isfinite(target) & np.isfinite(prediction) & np.isfinite(score)
    p, t, s = prediction[keep], target[keep], score[keep]
    labels = (np.abs(t) >= threshold).astype(np.float64)
    return {
        "pearson": pearson(p, t),
        "spearman": spearman(p, t),
        "auroc": roc_auc(s, labels),
        "auprc": pr_auc(s, labels),
        "n": int(len(t)),
        "n_positive": int(labels.sum()),
        "threshold": float(threshold),
    }


def classifier_metrics(probability: np.ndarray, target: np.ndarray, threshold: float) -> dict[str, float]:
    """A classifier's probability of "splice-altering" against a measured effect.

    AUROC / AUPRC for ``|target| >= threshold``; Pearson / Spearman with ``|target|``
    (reported as ``pearson_abs`` / ``spearman_abs``: a probability has no sign).
    """
    probability, target = np.asarray(probability, np.float64), np.asarray(target, np.float64)
    keep = np.isfinite(probability) & np.isfinite(target)
    p, t = probability[keep], target[keep]
    labels = (np.abs(t) >= threshold).astype(np.float64)
    return {
        "pearson_abs": pearson(p, np.abs(t)),
        "spearman_abs": spearman(p, np.abs(t)),
        "auroc": roc_auc(p, labels),
        "auprc": pr_auc(p, labels),
        "n": int(len(t)),
        "n_positive": int(labels.sum()),
        "threshold": float(threshold),
    }


def base_candidates(deltas: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Raw base-model predictors from :func:`score_sequences` columns.

    ``delta_acceptor`` / ``delta_donor``: alt - ref at the exon's acceptor / donor;
    ``delta_sites``: their sum; ``max_abs_delta``: the largest gain or loss of any
    splice channel within the window around the variant (unsigned, SpliceAI's
    ``max(DS_AG, DS_AL, DS_DG, DS_DL)``); ``signed_max_delta``: the same with the sign
    of whichever is larger, gain (+) or loss (-).
    """
    acc = np.asarray(deltas["delta_acceptor"], np.float64)
    don = np.asarray(deltas["delta_donor"], np.float64)
    gain = np.asarray(deltas["delta_gain"], np.float64)
    loss = np.asarray(deltas["delta_loss"], np.float64)
    return {
        "delta_acceptor": acc,
        "delta_donor": don,
        "delta_sites": acc + don,
        "max_abs_delta": np.asarray(deltas["max_abs_delta"], np.float64),
        "signed_max_delta": np.where(gain >= loss, gain, -loss),
    }


def base_delta_metrics(deltas: Mapping[str, np.ndarray], target: np.ndarray, threshold: float) -> dict:
    """Metrics of every raw base-model delta (:func:`base_candidates`) and of the best one.

    Each candidate is **sign-adjusted**, as published comparisons of SpliceAI-type
    tools on exon-inclusion assays do: multiplied by the sign of its Pearson
    correlation with the target (so, e.g., ``-max_abs_delta`` predicts the mostly
    negative delta PSI), then scored like a trained model (AUROC / AUPRC from its
    absolute value). ``best`` is the candidate with the highest sign-adjusted Pearson.
    The sign and the choice are made on the evaluated rows themselves, which can only
    flatter the base model. Returns ``{candidate: metrics + sign, ..., "best": name}``.
    """
    out: dict = {}
    target = np.asarray(target, np.float64)
    for name, values in base_candidates(deltas).items():
        r = pearson(values, target)
        sign = -1.0 if np.isfinite(r) and r < 0 else 1.0
        metrics = regression_metrics(sign * values, target, threshold, score=np.abs(values))
        metrics["sign"] = sign
        out[name] = metrics
    ranked = [n for n in BASE_CANDIDATES if np.isfinite(out[n]["pearson"])]
    out["best"] = max(ranked, key=lambda n: out[n]["pearson"]) if ranked else BASE_CANDIDATES[0]
    return out


def binned_calibration_error(prediction: np.ndarray, target: np.ndarray, bins: int = 10) -> tuple[float, dict]:
    """A regression reliability measure: the rows in ``bins`` equal-count bins of the prediction, the mean over
    rows of ``|mean predicted - mean measured|`` of their bin (0: predictions are right on average at every
    level). Returns (that error, the curve ``{mean_predicted, observed, count}``)."""
    p, t = np.asarray(prediction, np.float64), np.asarray(target, np.float64)
    keep = np.isfinite(p) & np.isfinite(t)
    p, t = p[keep], t[keep]
    order = np.argsort(p, kind="stable")
    parts = [part for part in np.array_split(order, min(bins, len(p))) if len(part)]
    curve = {
        "mean_predicted": [float(p[i].mean()) for i in parts],
        "observed": [float(t[i].mean()) for i in parts],
        "count": [int(len(i)) for i in parts],
    }
    error = sum(c * abs(a - b) for a, b, c in zip(curve["mean_predicted"], curve["observed"], curve["count"]))
    return float(error / max(len(p), 1)), curve
