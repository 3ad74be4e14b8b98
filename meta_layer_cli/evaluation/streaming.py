"""Splice-site metrics from scores streamed gene by gene, in memory that does not grow with the genome.

:mod:`meta_layer_cli.evaluation.metrics` needs every score at once (a whole genome's test genes are
hundreds of millions of positions). :class:`SiteScores` instead keeps, for one site class
(one-vs-rest):

* every **positive**'s score exactly (sites are ~1 in 1,000 positions);
* the **negatives** in a histogram over the float32 bit pattern: ``2**mantissa_bits`` bins per
  octave over the whole float32 range from 0 to 1 (the default 15 bits: 4.2 M bins, 33 MB; bins are
  3e-5 of their score wide, down to the smallest scores a decoder's posteriors reach);
* the negatives scoring at least :data:`EXACT_ABOVE` (1/16) exactly too, up to 4 M of them: at the
  top of the ranking few positions decide the precision, and bins near 1 are wide in ``1 - p``;
* exact counts of false positives/negatives at the thresholds given up front, and exact sums for
  the reliability curve and ECE.

Average precision only needs, for each positive, how many negatives score at least as high: exact
except for negatives that share the positive's bin (and exact then too when the positive is its bin's
lowest value, as 0 and 1 are). :meth:`SiteScores.average_precision` returns the estimate (those
bin-mates spread evenly over the bin) and a bound on its error: the largest change if every bin-mate
scored above, or below, the positive. Top-k accuracy (k = number of sites) and the
F1-optimal threshold are read from the same histogram, with the same kind of bound. With
``mantissa_bits=23`` every float32 value has its own bin and everything is exact (but the histogram
then needs 2.7 GB).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RELIABILITY_BINS = 15
EXACT_ABOVE = 2.0**-4  # negatives scoring at least this (a bin boundary) are kept exactly ...
EXACT_LIMIT = 1 << 22  # ... up to 4 M of them (16 MB); a model with more is counted in the histogram
# a gene's few exact scores are one small array, ~100 bytes of header each: joined every PIECES genes, so that
# what is held grows with the scores kept, not with the number of genes (1.4 kB a gene before, over 6 lists)
PIECES = 256


class _Pieces:
    """Arrays added a gene at a time, held as few: every :data:`PIECES` new ones are joined into one, and a
    joined one is not copied again until :meth:`array` (joining everything each time made evaluation
    quadratic in the genes: 130,944 test genes ran at two thirds of the rate of 32,736)."""

    def __init__(self):
        self.joined: list[np.ndarray] = []
        self.recent: list[np.ndarray] = []

    def append(self, values: np.ndarray) -> None:
        self.recent.append(values)
        if len(self.recent) >= PIECES:
            self.joined.append(np.concatenate(self.recent))
            self.recent = []

    def array(self) -> np.ndarray:
        """Everything added, in order, as one array (kept as such until more is added)."""
        parts = self.joined + self.recent
        whole = parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.zeros(0, np.float32)
        self.joined, self.recent = [whole], []
        return whole

    def sort(self) -> None:
        self.joined, self.recent = [np.sort(self.array())], []


def _bits(scores: np.ndarray) -> np.ndarray:
    """Non-negative float32 scores -> their bit patterns (monotone in the score)."""
    s = np.ascontiguousarray(scores, dtype=np.float32)
    return np.where(s > 0, s, np.float32(0)).view(np.uint32)  # -0.0, negative noise and NaN count as 0


class ScoreHistogram:
    """Counts of float32 scores in ``[0, 1]`` by bit pattern (module docstring)."""

    def __init__(self, mantissa_bits: int = 15):
        if not 0 <= mantissa_bits <= 23:
            raise ValueError(f"mantissa_bits must be in 0..23, got {mantissa_bits}")
        self.shift = 23 - mantissa_bits
        self.low = 0  # every float32 from 0 up (decoded posteriors reach 1e-30 and below)
        self.high = 127 << 23  # 1.0
        self.n_bins = ((self.high - self.low) >> self.shift) + 1
        self.counts = np.zeros(self.n_bins, dtype=np.int64)
        self._pending: list[np.ndarray] = []
        self._pending_n = 0

    def bins(self, scores: np.ndarray) -> np.ndarray:
        """Bin index of each score (``uint32``)."""
        b = np.clip(_bits(scores), self.low, self.high)
        b -= np.uint32(self.low)
        b >>= np.uint32(self.shift)
        return b

    def offset(self, scores: np.ndarray) -> np.ndarray:
        """Where in its bin each score lies, in [0, 1) (0: the bin's lowest value)."""
        within = (np.clip(_bits(scores), self.low, self.high) - self.low) & ((1 << self.shift) - 1)
        return within.astype(np.float64) / (1 << self.shift)

    def add(self, scores: np.ndarray) -> None:
        if len(scores):
            self._pending.append(self.bins(scores))
            self._pending_n += len(scores)
            # bincount costs O(bins): small genes are batched. A quarter of the bins' count of scores costs the same
            # per score as all of them (12 vs 11 ns, measured) and holds a quarter of the pending memory (4 MB)
            if self._pending_n >= self.n_bins // 4:
                self.flush()

    def flush(self) -> None:
        if self._pending:
            self.counts += np.bincount(np.concatenate(self._pending), minlength=self.n_bins)
            self._pending, self._pending_n = [], 0

    def total(self) -> int:
        self.flush()
        return int(self.counts.sum())


class SiteScores:
    """One site class's scores and truth, streamed (module docstring).

    ``thresholds``: scores at which false positives/negatives are counted exactly (``score >= t``
    is a call). Add genes with :meth:`add`; read metrics at any time.
    """

    def __init__(self, thresholds: Sequence[float] = (), mantissa_bits: int = 15, exact_limit: int = EXACT_LIMIT):
        self.negatives = ScoreHistogram(mantissa_bits)
        self._positives = _Pieces()
        # negatives scoring >= EXACT_ABOVE, exactly (where precision is most sensitive), up to exact_limit of them
        self._high = _Pieces()
        self._high_n = 0
        self._high_sorted = False
        self._folded = False
        self.exact_limit = exact_limit
        self.thresholds = [float(t) for t in thresholds]
        self.false_positives = np.zeros(len(self.thresholds), dtype=np.int64)
        self.false_negatives = np.zeros(len(self.thresholds), dtype=np.int64)
        self.reliability_count = np.zeros(RELIABILITY_BINS, dtype=np.int64)
        self.reliability_predicted = np.zeros(RELIABILITY_BINS)
        self.reliability_observed = np.zeros(RELIABILITY_BINS)
        self.n = 0

    def add(self, scores: np.ndarray, is_site: np.ndarray) -> None:
        """``scores [N]`` of one class and ``is_site [N]`` (bool) of some genes."""
        scores = np.asarray(scores, dtype=np.float32)
        is_site = np.asarray(is_site, dtype=bool)
        self.n += len(scores)
        self._positives.append(scores[is_site])
        negatives = scores[~is_site]
        if self._high_n <= self.exact_limit:
            high = negatives >= EXACT_ABOVE
            self._high.append(negatives[high])
            self._high_n += int(high.sum())
            self._high_sorted = False
            negatives = negatives[~high]
            if self._high_n > self.exact_limit:  # too many: from now on they are histogram counts like the rest
                self.negatives.add(self._high.array())
                self._high, self._folded = _Pieces(), True
        self.negatives.add(negatives)
        for i, t in enumerate(self.thresholds):
            called = scores >= t
            self.false_positives[i] += int((called & ~is_site).sum())
            self.false_negatives[i] += int((~called & is_site).sum())
        p = scores.astype(np.float64)
        idx = np.minimum((p * RELIABILITY_BINS).astype(int), RELIABILITY_BINS - 1)
        self.reliability_count += np.bincount(idx, minlength=RELIABILITY_BINS)
        self.reliability_predicted += np.bincount(idx, weights=p, minlength=RELIABILITY_BINS)
        self.reliability_observed += np.bincount(idx, weights=is_site.astype(np.float64), minlength=RELIABILITY_BINS)

    # -- what the histogram says ----------------------------------------------------------------
    @property
    def positives(self) -> np.ndarray:
        return self._positives.array()

    @property
    def n_sites(self) -> int:
        return len(self.positives)

    @property
    def high_negatives(self) -> np.ndarray:
        """The negatives kept exactly (scores >= :data:`EXACT_ABOVE`), sorted."""
        if not self._high_sorted:
            self._high.sort()
            self._high_sorted = True
        return self._high.array()

    def _ranked(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per distinct positive score, highest first: (score, positives >= it, negatives >= it: lowest,
        estimate, highest possible)."""
        hist = self.negatives
        hist.flush()
        values, counts = np.unique(self.positives, return_counts=True)
        values, counts = values[::-1], counts[::-1]
        tp = np.cumsum(counts)
        above = np.cumsum(hist.counts[::-1])[::-1] - hist.counts  # negatives in higher bins
        b = hist.bins(values)
        mates = hist.counts[b]
        offset = hist.offset(values)
        # a positive that is its bin's lowest value has every bin-mate at or above it: counted exactly
        lo = above[b] + np.where(offset == 0, mates, 0)
        estimate = above[b] + mates * (1.0 - offset)
        high = self.high_negatives
        exact = len(high) - np.searchsorted(high, values, side="left")  # kept negatives >= each value
        return (
            values,
            tp,
            (lo + exact).astype(np.float64),
            estimate + exact,
            (above[b] + mates + exact).astype(np.float64),
        )

    def average_precision(self) -> tuple[float, float]:
        """(average precision, bound on its error); NaN without sites (as :func:`average_precision`)."""
        n_pos = self.n_sites
        if n_pos == 0:
            return float("nan"), 0.0
        values, tp, lo, est, hi = self._ranked()
        weight = np.diff(np.r_[0, tp]) / n_pos

        def ap(neg: np.ndarray) -> float:
            return float(np.sum(weight * tp / (tp + neg)))

        value = ap(est)
        return value, max(ap(lo) - value, value - ap(hi), 0.0)

    def topk(self) -> tuple[float, float]:
        """(SpliceAI's top-k accuracy, bound): the fraction of sites among the k top scores, k = sites. The
        bound covers how ties at the k-th score are broken (any way) and the histogram's bins."""
        k = self.n_sites
        if k == 0:
            return float("nan"), 0.0
        high = self.high_negatives
        top_sites = self.positives[self.positives >= EXACT_ABOVE]
        if not self._folded and len(top_sites) + len(high) >= k:
            # the k top scores are all >= EXACT_ABOVE, where every score is known: exact, but for ties at the
            # k-th score, which :func:`~meta_layer_cli.evaluation.metrics.topk_accuracy` breaks arbitrarily
            t = np.partition(np.concatenate([top_sites, high]), len(top_sites) + len(high) - k)[-k]
            above = int((top_sites > t).sum() + (high > t).sum())
            sites_above, tied_sites = int((top_sites > t).sum()), int((top_sites == t).sum())
            tied = tied_sites + int((high == t).sum())
            taken = k - above
            low = sites_above + max(0, taken - (tied - tied_sites))
            high_count = sites_above + min(tied_sites, taken)
            return (low + high_count) / 2 / k, (high_count - low) / 2 / k
        hist = self.negatives
        hist.flush()
        pos_bins = np.bincount(hist.bins(self.positives), minlength=hist.n_bins)
        counts = hist.counts + np.bincount(hist.bins(high), minlength=hist.n_bins)
        both = pos_bins + counts
        from_top = np.cumsum(both[::-1])[::-1]  # items in this bin or higher
        b = int(np.flatnonzero(from_top >= k)[-1])  # the bin holding the k-th highest score
        above = int(from_top[b] - both[b])
        taken = k - above
        sites_above = int(pos_bins[b + 1 :].sum())
        low = sites_above + max(0, taken - int(counts[b]))
        high = sites_above + min(int(pos_bins[b]), taken)
        return (low + high) / 2 / k, (high - low) / 2 / k

    def f1_optimal_threshold(self) -> float:
        """The score threshold (``score >= t``) with the highest F1 (as :func:`f1_optimal_threshold`)."""
        n_pos = self.n_sites
        if n_pos == 0:
            return 0.5
        values, tp, _, est, _ = self._ranked()
        f1 = 2 * tp / (tp + est + n_pos)
        return float(values[int(np.argmax(f1))])

    def confusion_at(self, threshold: float) -> tuple[int, int]:
        """(false positives, false negatives) at one of the thresholds given when created (exact)."""
        i = self.thresholds.index(float(threshold))
        return int(self.false_positives[i]), int(self.false_negatives[i])

    def precision_recall_curve(self, max_points: int = 400) -> dict[str, list]:
        """Precision and recall at (at most ``max_points``) thresholds, evenly spaced in recall (for plots)."""
        n_pos = self.n_sites
        if n_pos == 0:
            return {"precision": [0.0], "recall": [0.0]}
        values, tp, _, est, _ = self._ranked()
        precision, recall = tp / (tp + est), tp / n_pos
        hist = self.negatives
        high = self.high_negatives
        if (len(high) and high[-1] > values[0]) or hist.counts[hist.bins(values[:1])[0] + 1 :].sum() > 0:
            # a negative scores above every site
            precision, recall = np.r_[0.0, precision], np.r_[0.0, recall]
        levels = np.linspace(0, recall[-1], max_points)
        keep = np.unique(np.minimum(np.searchsorted(recall, levels), len(recall) - 1))
        return {"precision": precision[keep].tolist(), "recall": recall[keep].tolist()}

    def reliability(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(count, summed prediction, summed truth) per reliability bin."""
        return self.reliability_count, self.reliability_predicted, self.reliability_observed

    def expected_calibration_error(self) -> float:
        return calibration_error(*self.reliability())


def reliability_from_sums(count: np.ndarray, predicted: np.ndarray, observed: np.ndarray) -> dict[str, list]:
    """A reliability curve (as :func:`~meta_layer_cli.evaluation.metrics.reliability_curve`) from bin sums."""
    n = np.maximum(count, 1)
    return {"mean_predicted": (predicted / n).tolist(), "observed": (observed / n).tolist(), "count": count.tolist()}


def calibration_error(count: np.ndarray, predicted: np.ndarray, observed: np.ndarray) -> float:
    """ECE from reliability bin sums: count-weighted mean |observed - predicted|."""
    n = np.maximum(count, 1)
    gap = np.abs(observed / n - predicted / n)
    return float((count * gap).sum() / max(count.sum(), 1))


def add_gene(by_class: dict[int, SiteScores], probs: np.ndarray, labels: np.ndarray) -> None:
    """One gene's ``probs [L, 3]`` (neither, acceptor, donor) and ``labels [L]`` into a streamed score per site
    class, ``by_class`` ``{1: acceptor, 2: donor}`` (:class:`SiteScores`, or anything with its ``add``)."""
    labels = np.asarray(labels)
    for c, scores in by_class.items():
        scores.add(probs[:, c], labels == c)


def add_source(scores: dict[str, dict[int, SiteScores]], name: str, probs: np.ndarray, labels: np.ndarray) -> None:
    """:func:`add_gene` into ``scores[name]``, made on the source's first gene. One pair of :class:`SiteScores` per
    source, each with a 33-MB histogram: ``dict.setdefault`` built a pair for every gene and dropped it (267 s of a
    430-s evaluation at 32,736 genes)."""
    if name not in scores:
        scores[name] = {c: SiteScores() for c in (1, 2)}
    add_gene(scores[name], probs, labels)


class CanonicalScores:
    """:func:`~meta_layer_cli.evaluation.metrics.canonical_metrics` of probabilities streamed gene by gene.

    ``thresholds``: the per-class F1-optimal thresholds (chosen on validation genes) at which errors
    are counted, as well as at 0.5.
    """

    def __init__(self, thresholds: dict[int, float] | None = None, mantissa_bits: int = 15):
        self.thresholds = thresholds or {1: 0.5, 2: 0.5}
        self.classes = {c: SiteScores(sorted({0.5, float(self.thresholds[c])}), mantissa_bits) for c in (1, 2)}

    def add(self, probs: np.ndarray, labels: np.ndarray) -> None:
        """``probs [L, 3]`` (neither, acceptor, donor) and ``labels [L]`` of one gene."""
        add_gene(self.classes, probs, labels)

    def metrics(self) -> dict:
        """The report card (keys of ``canonical_metrics``), plus ``pr_auc_error_bound`` (on each class's
        PR-AUC and the macro mean) and ``topk_error_bound``."""
        out: dict[str, float] = {}
        fp5 = fn5 = fpo = fno = 0
        eces, ap_bounds, topk_bounds = [], [], []
        for c, name in ((1, "acceptor"), (2, "donor")):
            s = self.classes[c]
            out[f"pr_auc_{name}"], bound = s.average_precision()
            ap_bounds.append(bound)
            out[f"topk_{name}"], bound = s.topk()
            topk_bounds.append(bound)
            fp, fn = s.confusion_at(0.5)
            fp5, fn5 = fp5 + fp, fn5 + fn
            fp, fn = s.confusion_at(self.thresholds[c])
            fpo, fno = fpo + fp, fno + fn
            eces.append(s.expected_calibration_error())
        out["pr_auc_macro"] = (out["pr_auc_acceptor"] + out["pr_auc_donor"]) / 2
        out["topk_mean"] = (out["topk_acceptor"] + out["topk_donor"]) / 2
        out["fp_at_0.5"], out["fn_at_0.5"] = fp5, fn5
        out["fp_at_f1opt"], out["fn_at_f1opt"] = fpo, fno
        out["ece"] = float(np.mean(eces))
        out["pr_auc_error_bound"] = float(max(ap_bounds))
        out["topk_error_bound"] = float(max(topk_bounds))
        return out

    def reliability_curve(self) -> dict[str, list]:
        """Acceptor and donor scores together against ``is_site`` (as the evaluator reports it)."""
        sums = [sum(s.reliability()[i] for s in self.classes.values()) for i in range(3)]
        return reliability_from_sums(*sums)

    def pr_curves(self) -> dict[str, dict]:
        return {name: self.classes[c].precision_recall_curve() for c, name in ((1, "acceptor"), (2, "donor"))}

    def f1_optimal_thresholds(self) -> dict[int, float]:
        return {c: s.f1_optimal_threshold() for c, s in self.classes.items()}


class BinnedScores:
    """One class's scores summarised per histogram bin (count, sites, summed score): what a monotone
    calibration map is fitted on when the scores themselves do not fit in memory. Positions within one
    bin (``2**-mantissa_bits`` of their score apart) are one weighted point."""

    def __init__(self, mantissa_bits: int = 15):
        self.histogram = ScoreHistogram(mantissa_bits)
        self.count = np.zeros(self.histogram.n_bins, dtype=np.int64)
        self.sites = np.zeros(self.histogram.n_bins, dtype=np.int64)
        self.total = np.zeros(self.histogram.n_bins)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_n = 0

    def add(self, scores: np.ndarray, is_site: np.ndarray) -> None:
        scores = np.asarray(scores, dtype=np.float32)
        self._pending.append((scores, np.asarray(is_site, dtype=bool)))
        self._pending_n += len(scores)
        # bincount costs O(bins): small genes are batched, up to a quarter of the bins' count as in ScoreHistogram.add
        # (the whole count held 21 MB of scores and ~100 MB of temporaries while flushing them)
        if self._pending_n >= self.histogram.n_bins // 4:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        scores = np.concatenate([s for s, _ in self._pending])
        is_site = np.concatenate([t for _, t in self._pending])
        self._pending, self._pending_n = [], 0
        b = self.histogram.bins(scores)
        n = self.histogram.n_bins
        self.count += np.bincount(b, minlength=n)
        self.sites += np.bincount(b[is_site], minlength=n)
        self.total += np.bincount(b, weights=scores.astype(np.float64), minlength=n)

    def points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean score, fraction of sites, count) of each non-empty bin, by increasing score."""
        self.flush()
        used = np.flatnonzero(self.count)
        n = self.count[used].astype(np.float64)
        return self.total[used] / n, self.sites[used] / n, n

    def reliability(self, mapped: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reliability bin sums of the scores, or of ``mapped`` (one value per :meth:`points` bin: the
        calibrated mean score), each bin's positions counted at that value."""
        mean, frac, n = self.points()
        value = mean if mapped is None else np.asarray(mapped, dtype=np.float64)
        idx = np.minimum((value * RELIABILITY_BINS).astype(int), RELIABILITY_BINS - 1)
        count = np.bincount(idx, weights=n, minlength=RELIABILITY_BINS).round().astype(np.int64)
        return (
            count,
            np.bincount(idx, weights=n * value, minlength=RELIABILITY_BINS),
            np.bincount(idx, weights=n * frac, minlength=RELIABILITY_BINS),
        )
