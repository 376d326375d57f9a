"""Metric formulas over counts: pure functions, scikit-learn's definitions, None for 0/0."""

from __future__ import annotations

from typing import Any

import numpy as np

from .binning import COARSE_BINS, coarse_value


def ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def confusion_metrics(tp: float, fp: float, tn: float, fn: float) -> dict[str, Any]:
    """accuracy, precision, recall, f1 and false-positive rate of a confusion matrix.

    A metric whose denominator is zero is None (JSON null), never 0."""
    tp, fp, tn, fn = int(tp), int(fp), int(tn), int(fn)
    count = tp + fp + tn + fn
    return {
        "count": count,
        "accuracy": ratio(tp + tn, count),
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "false_positive_rate": ratio(fp, fp + tn),
        "tp": tp, "fp": fp, "tn": tn, "fn": fn,
    }


CONFUSION = ("tp", "fp", "tn", "fn")  # the order of confusion_from_arrays


def confusion_from_arrays(actual: np.ndarray, predicted: np.ndarray) -> tuple[int, int, int, int]:
    """(tp, fp, tn, fn) of binary outcomes: ``actual`` and ``predicted`` as 0/1 or booleans."""
    a = np.asarray(actual, dtype=bool)
    p = np.asarray(predicted, dtype=bool)
    return (int(np.sum(a & p)), int(np.sum(~a & p)), int(np.sum(~a & ~p)), int(np.sum(a & ~p)))


def histogram_quantiles(counts: np.ndarray, quantiles: tuple[float, ...],
                        base: float) -> list[float | None]:
    """Quantiles of values kept in coarse log bins (see binning.coarse_bin); bin 0 is ignored."""
    c = np.asarray(counts, dtype=np.float64).copy()
    c[0] = 0
    total = c.sum()
    if total <= 0:
        return [None for _ in quantiles]
    cum = np.cumsum(c)
    values = coarse_value(np.arange(COARSE_BINS), base)
    out: list[float | None] = []
    for q in quantiles:
        idx = int(np.searchsorted(cum, q * total, side="left"))
        out.append(float(values[min(idx, COARSE_BINS - 1)]))
    return out


def exact_quantiles(values: np.ndarray, quantiles: tuple[float, ...]) -> list[float | None]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return [None for _ in quantiles]
    return [float(x) for x in np.quantile(v, quantiles)]


def samples_to_detect_drop(accuracy: float, relative_drop: float = 0.05, alpha: float = 0.05,
                           power: float = 0.8) -> int | None:
    """Labeled predictions needed in each of two windows for a one-sided two-proportion z-test
    to detect ``accuracy`` falling by ``relative_drop`` (e.g. 5 %) at level ``alpha``."""
    from scipy.stats import norm  # noqa: PLC0415 - scipy is slow to import; only needed here

    p0 = float(accuracy)
    p1 = p0 * (1.0 - relative_drop)
    if not 0.0 < p1 < p0 < 1.0:
        return None
    pbar = (p0 + p1) / 2
    za, zb = norm.ppf(1 - alpha), norm.ppf(power)
    n = (za * np.sqrt(2 * pbar * (1 - pbar)) + zb * np.sqrt(p0 * (1 - p0) + p1 * (1 - p1))) ** 2 \
        / (p0 - p1) ** 2
    return int(np.ceil(n))
