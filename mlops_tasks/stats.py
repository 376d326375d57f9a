"""Significance tests for alerting: pure functions over counts and histograms.

A drop in accuracy is only real when it is large enough to matter *and* unlikely under chance:
on 100 predictions a 5-point drop is about one standard error. These functions say how unlikely.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

MIN_EXPECTED_CELL = 5


@dataclass(frozen=True)
class DropTest:
    """One-sided test that the current proportion is lower than the baseline's."""

    method: str  # "z-test" or "fisher-exact"
    statistic: float | None
    p_value: float


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> DropTest:
    """H1: p2 < p1 (pooled two-proportion z-test)."""
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return DropTest("z-test", None, 1.0 if p2 >= p1 else 0.0)
    z = (p1 - p2) / se
    return DropTest("z-test", z, float(sps.norm.sf(z)))


def fisher_drop(x1: int, n1: int, x2: int, n2: int) -> DropTest:
    """H1: p2 < p1, Fisher's exact test on the 2x2 table of successes and failures."""
    table = [[x1, n1 - x1], [x2, n2 - x2]]
    odds, p = sps.fisher_exact(table, alternative="greater")
    return DropTest("fisher-exact", float(odds) if math.isfinite(odds) else None, float(p))


def drop_test(x1: int, n1: int, x2: int, n2: int, exact: bool = False) -> DropTest:
    """Fisher's exact test when asked or when an expected cell is small, else the z-test."""
    if n1 <= 0 or n2 <= 0:
        raise ValueError("both samples need at least one observation")
    pooled = (x1 + x2) / (n1 + n2)
    smallest = min(n1, n2) * min(pooled, 1 - pooled)
    if exact or smallest < MIN_EXPECTED_CELL:
        return fisher_drop(x1, n1, x2, n2)
    return two_proportion_z(x1, n1, x2, n2)


def wilson_interval(x: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion."""
    if n <= 0:
        return None
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_drop(x1: int, n1: int, x2: int, n2: int, reps: int = 20000,
                   confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of p1 - p2 (vectorized: resampling n binary outcomes with
    k successes is a binomial draw)."""
    rng = np.random.default_rng(seed)
    d = rng.binomial(n1, x1 / n1, reps) / n1 - rng.binomial(n2, x2 / n2, reps) / n2
    lo, hi = np.quantile(d, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def ks_from_histograms(h1: np.ndarray, h2: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and asymptotic p-value from binned counts."""
    a = np.asarray(h1, dtype=np.float64)
    b = np.asarray(h2, dtype=np.float64)
    n1, n2 = a.sum(), b.sum()
    if n1 == 0 or n2 == 0:
        return 0.0, 1.0
    d = float(np.max(np.abs(np.cumsum(a) / n1 - np.cumsum(b) / n2)))
    en = math.sqrt(n1 * n2 / (n1 + n2))
    return d, float(sps.kstwobign.sf(d * en))


def psi(h1: np.ndarray, h2: np.ndarray, bins: int = 20, floor: float = 1e-4) -> float:
    """Population stability index between two histograms, regrouped into ``bins`` equal bins."""
    a = np.asarray(h1, dtype=np.float64)
    b = np.asarray(h2, dtype=np.float64)
    if a.sum() == 0 or b.sum() == 0:
        return 0.0
    edges = np.linspace(0, a.size, bins + 1).round().astype(int)
    pa = np.add.reduceat(a, edges[:-1]) / a.sum()
    pb = np.add.reduceat(b, edges[:-1]) / b.sum()
    pa, pb = np.maximum(pa, floor), np.maximum(pb, floor)
    return float(np.sum((pb - pa) * np.log(pb / pa)))
