"""The vectorized threshold search: pure functions over histograms (or raw scores).

A prediction is positive at threshold t when its score >= t. From the score histograms of the
negatives and the positives, one reversed cumulative sum gives, for every bin b, how many of each
score at least b; indexing it with the grid's bins gives the confusion matrix at every candidate
threshold at once. The cost depends on the number of bins and thresholds, never on the number of
predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..binning import SCORE_BINS, SCORE_RESOLUTION, threshold_bin

METRIC_NAMES = ("precision", "recall", "f1", "accuracy")


@dataclass(frozen=True)
class Confusion:
    """Confusion counts at each threshold (arrays of the same length)."""

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    tn: np.ndarray
    fn: np.ndarray

    @property
    def n(self) -> int:
        return int(self.tp[0] + self.fp[0] + self.tn[0] + self.fn[0]) if self.tp.size else 0


def from_histograms(neg: np.ndarray, pos: np.ndarray, thresholds: np.ndarray) -> Confusion:
    """Confusion at each threshold from per-bin counts of negatives and positives."""
    neg = np.asarray(neg, dtype=np.int64)
    pos = np.asarray(pos, dtype=np.int64)
    at_least_neg = np.concatenate([np.cumsum(neg[::-1])[::-1], [0]])
    at_least_pos = np.concatenate([np.cumsum(pos[::-1])[::-1], [0]])
    t = np.asarray(thresholds, dtype=np.float64)
    bins = np.clip(np.rint(t * SCORE_RESOLUTION).astype(np.int64), 0, SCORE_BINS)
    tp = at_least_pos[bins]
    fp = at_least_neg[bins]
    return Confusion(t, tp, fp, neg.sum() - fp, pos.sum() - tp)


def from_scores(scores: np.ndarray, actual: np.ndarray, thresholds: np.ndarray) -> Confusion:
    """Confusion at each threshold from raw scores: one sort and a binary search per threshold."""
    s = np.asarray(scores, dtype=np.float64)
    a = np.asarray(actual, dtype=bool)
    t = np.asarray(thresholds, dtype=np.float64)
    pos_sorted = np.sort(s[a])
    neg_sorted = np.sort(s[~a])
    tp = pos_sorted.size - np.searchsorted(pos_sorted, t, side="left")
    fp = neg_sorted.size - np.searchsorted(neg_sorted, t, side="left")
    return Confusion(t, tp, fp, neg_sorted.size - fp, pos_sorted.size - tp)


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def metrics(c: Confusion) -> dict[str, np.ndarray]:
    """precision, recall, f1, accuracy at each threshold; NaN where undefined (0/0)."""
    return {
        "precision": _div(c.tp, c.tp + c.fp),
        "recall": _div(c.tp, c.tp + c.fn),
        "f1": _div(2 * c.tp, 2 * c.tp + c.fp + c.fn),
        "accuracy": _div(c.tp + c.tn, c.tp + c.fp + c.tn + c.fn),
    }


def score(c: Confusion, metric: str, *, beta: float | None = None,
          cost_fp: float | None = None, cost_fn: float | None = None) -> np.ndarray:
    """The quantity to maximize. ``cost`` is minus the mean cost per prediction."""
    if metric in METRIC_NAMES:
        return metrics(c)[metric]
    if metric == "f_beta":
        if beta is None:
            raise ValueError("metric f_beta: beta is required")
        b2 = float(beta) ** 2
        return _div((1 + b2) * c.tp, (1 + b2) * c.tp + b2 * c.fn + c.fp)
    if metric == "cost":
        if cost_fp is None or cost_fn is None:
            raise ValueError("metric cost: cost_fp and cost_fn are required")
        n = c.tp + c.fp + c.tn + c.fn
        return -_div(float(cost_fp) * c.fp + float(cost_fn) * c.fn, n)
    raise ValueError(f"metric: unknown metric {metric!r}")


def choose(thresholds: np.ndarray, scores: np.ndarray, current: float) -> int | None:
    """Index of the best threshold; ties go to the one closest to ``current``, then the lower.
    None when no threshold has a defined score."""
    s = np.asarray(scores, dtype=np.float64)
    if not np.any(np.isfinite(s)):
        return None
    best = np.nanmax(s)
    tied = np.flatnonzero(np.isclose(s, best, rtol=0, atol=1e-12))
    t = np.asarray(thresholds, dtype=np.float64)[tied]
    order = np.lexsort((t, np.abs(t - current)))
    return int(tied[order[0]])


def improvement_percent(best: float | None, current: float | None) -> float | None:
    if best is None or current is None or not np.isfinite(best) or not np.isfinite(current):
        return None
    if current == 0:
        return None if best == 0 else float("inf")
    return float((best - current) / abs(current) * 100)


def bootstrap_improvement(neg: np.ndarray, pos: np.ndarray, current: float, best: float,
                          metric: str, reps: int = 2000, confidence: float = 0.95,
                          seed: int = 0, **params: Any) -> tuple[float, float] | None:
    """Percentile interval of the improvement in percent, (score(best) - score(current)) /
    |score(current)| x 100, over resamples of the window.

    Resampling n outcomes from the (label, bin) cells is a multinomial draw; the two thresholds
    only split each label's bins into three segments, so six cells suffice and every resample
    is evaluated at once."""
    neg = np.asarray(neg, dtype=np.int64)
    pos = np.asarray(pos, dtype=np.int64)
    n = int(neg.sum() + pos.sum())
    if n == 0:
        return None
    lo_b, hi_b = sorted((threshold_bin(current), threshold_bin(best)))
    cells = np.array([neg[:lo_b].sum(), neg[lo_b:hi_b].sum(), neg[hi_b:].sum(),
                      pos[:lo_b].sum(), pos[lo_b:hi_b].sum(), pos[hi_b:].sum()], dtype=np.float64)
    draws = np.random.default_rng(seed).multinomial(n, cells / n, size=reps)
    n0, n1 = draws[:, :3].sum(axis=1), draws[:, 3:].sum(axis=1)

    def at(threshold: float) -> np.ndarray:
        above = 1 if threshold_bin(threshold) == lo_b else 2
        fp = draws[:, above:3].sum(axis=1)
        tp = draws[:, 3 + above:].sum(axis=1)
        return score(Confusion(np.zeros(reps), tp, fp, n0 - fp, n1 - tp), metric, **params)

    base = at(current)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = (at(best) - base) / np.abs(base) * 100
    diff = diff[np.isfinite(diff)]
    if diff.size == 0:
        return None
    low, high = np.quantile(diff, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)
