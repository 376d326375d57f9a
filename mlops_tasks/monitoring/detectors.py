"""Degradation and drift detectors calibrated to a false-alarm budget.

Both are pure, stateful objects: ``observe`` takes what one check interval brought (labeled
outcomes, or a score histogram), updates the state and says whether the alert condition holds.
The scheduled job keeps their state in Redis between checks (``to_state``/``from_state``);
offline they need nothing but numpy and scipy.

The budget. A month of checks every ``interval`` seconds is ``M = 30 d / interval`` checks
(2,880 at 15 minutes). Each check runs one one-sided test per window (the last 1, 4, 24 and 96
intervals by default) at level ``alpha = budget / (M * windows)``. By linearity of
expectation the expected number of checks at which any window rejects under stationary
traffic is at most ``M * windows * alpha = budget`` -- whatever the correlation between
windows and checks, and with the baseline's own sampling error included, because each test
compares two samples (baseline and window) and is calibrated over both. An alert is a
transition from not-degraded to degraded, so there are at most as many as rejecting checks.

Degradation. The null hypothesis is "the window's accuracy is at least ``(1 - margin)`` times
the baseline's": the practical-significance margin is part of the hypothesis, so it applies to
a confidence bound rather than to the point estimate, and a true 5 % drop is caught as soon
as the data can show that the drop exceeds the margin. The statistic is a score z for the
ratio with the Agresti-Caffo adjustment (one success and one failure added to each sample),
which keeps small windows honest; at zero or tiny counts a window simply cannot reject.

Drift. A two-sample Kolmogorov-Smirnov test between the baseline's and the window's score
histograms at the same per-window level, and a practical margin on the distance: scores that
moved by less than ``drift_min_distance`` of probability mass are not reported however many
there are.

Hysteresis: once degraded (or drifted), the state clears only when no window shows even weak
evidence (every p-value at least ``clear_level``), so one borderline window does not make an
alert flap.

The baseline grows. It starts from the first ``baseline_min`` labeled outcomes (what
``MLOPS_BASELINE_SIZE`` always meant); afterwards every interval that leaves the longest
window is added to it while the detector is not alerting, until it holds ``baseline_max`` (the
interval that crosses it is added whole). The windows
never overlap the baseline, and a larger baseline makes every later test sharper. A manual
baseline (`mlops set-baseline`) does not grow.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps

from ..settings import Settings
from ..stats import ks_from_histograms

MONTH_S = 30 * 86400
DEFAULT_WINDOWS = (1, 4, 24, 96)


@dataclass(frozen=True)
class DetectorSettings:
    """The knobs of both detectors; ``from_settings`` reads them from the environment."""

    false_alarms_per_month: float = 1.0
    interval_s: float = 900.0
    windows: tuple[int, ...] = DEFAULT_WINDOWS
    margin_percent: float = 0.5
    clear_level: float = 0.05
    baseline_min: int = 1000
    baseline_max: int = 50000
    drift_min_distance: float = 0.03

    @classmethod
    def from_settings(cls, s: Settings) -> DetectorSettings:
        return cls(false_alarms_per_month=s.false_alarms_per_month,
                   interval_s=float(s.degradation_interval_s),
                   margin_percent=s.degradation_min_percent, baseline_min=s.baseline_size,
                   baseline_max=max(s.baseline_size, s.baseline_max),
                   drift_min_distance=s.drift_min_distance)

    @property
    def checks_per_month(self) -> float:
        return MONTH_S / self.interval_s

    @property
    def alpha(self) -> float:
        """The level of each window's test (Bonferroni over windows and checks)."""
        return self.false_alarms_per_month / (self.checks_per_month * len(self.windows))

    @property
    def longest(self) -> int:
        return max(self.windows)

    def holds(self, p: float, was: bool) -> bool:
        """The alert condition with hysteresis: entered below ``alpha``, left only once the
        strongest evidence is no longer even weak (``clear_level``)."""
        return p < self.alpha or (was and p < self.clear_level)

    def reason(self, now: bool, was: bool, p: float, started: str, still: str,
               quiet: str) -> str:
        """Why a check concluded what it did, in one line."""
        if now and not was:
            return f"{started}: p = {p:.2g} < {self.alpha:.2g}"
        if now:
            return f"{still}: p = {p:.2g} < {self.clear_level:g} (clears above)"
        return f"{quiet}: smallest p = {p:.2g}, needs < {self.alpha:.2g}"


# ---------------------------------------------------------------- the tests (vectorized)
def drop_z(x0: Any, n0: Any, x: Any, n: Any, margin: float) -> np.ndarray:
    """z of H1: p < (1 - margin) p0, on arrays of counts (Agresti-Caffo adjusted)."""
    x0, n0, x, n = (np.asarray(a, dtype=np.float64) for a in (x0, n0, x, n))
    p0 = (x0 + 1) / (n0 + 2)
    p = (x + 1) / (n + 2)
    r = 1.0 - margin
    se = np.sqrt(r * r * p0 * (1 - p0) / (n0 + 2) + p * (1 - p) / (n + 2))
    return np.asarray((r * p0 - p) / se)


def drop_p(x0: Any, n0: Any, x: Any, n: Any, margin: float) -> np.ndarray:
    """One-sided p-values of :func:`drop_z`; 1 where a window holds nothing."""
    z = drop_z(x0, n0, x, n, margin)
    return np.where(np.asarray(n) > 0, sps.norm.sf(z), 1.0)


def relative_drop_ci(x0: int, n0: int, x: int, n: int,
                     confidence: float = 0.95) -> tuple[float, float] | None:
    """Interval of the relative drop ``1 - p / p0`` (Katz's log-ratio interval, with half a
    success added where a count is zero)."""
    if n0 <= 0 or n <= 0:
        return None
    a, b = max(x, 0.5), max(x0, 0.5)
    se = math.sqrt(max(1 / a - 1 / n + 1 / b - 1 / n0, 0.0))
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    ratio = (a / n) / (b / n0)
    return (1 - ratio * math.exp(z * se), 1 - ratio * math.exp(-z * se))


# ---------------------------------------------------------------- degradation
@dataclass(frozen=True)
class DegradationObservation:
    """What one check concluded, and the evidence an operator reads in the alert."""

    degraded: bool
    started: bool  # this check turned the alert on
    reason: str
    p_value: float | None = None  # of the window with the strongest evidence (unadjusted)
    alpha: float = 0.0  # the level it is compared with
    window_checks: int | None = None
    window_correct: int = 0
    window_total: int = 0
    baseline_correct: int = 0
    baseline_total: int = 0
    drop_percent: float | None = None
    drop_ci95: tuple[float, float] | None = None  # percent

    @property
    def baseline_accuracy(self) -> float | None:
        return self.baseline_correct / self.baseline_total if self.baseline_total else None

    @property
    def window_accuracy(self) -> float | None:
        return self.window_correct / self.window_total if self.window_total else None

    def to_dict(self) -> dict[str, Any]:
        return {"degraded": self.degraded, "started": self.started, "reason": self.reason,
                "p_value": self.p_value, "alpha": self.alpha,
                "window_checks": self.window_checks, "window_correct": self.window_correct,
                "window_total": self.window_total, "window_accuracy": self.window_accuracy,
                "baseline_correct": self.baseline_correct,
                "baseline_total": self.baseline_total,
                "baseline_accuracy": self.baseline_accuracy,
                "drop_percent": self.drop_percent,
                "drop_ci95": list(self.drop_ci95) if self.drop_ci95 else None}


@dataclass
class DegradationDetector:
    """Accuracy against the baseline, over several windows of check intervals.

    >>> d = DegradationDetector(baseline_correct=1712, baseline_total=2000)
    >>> d.observe(correct=688, total=750).degraded
    False
    """

    baseline_correct: int = 0
    baseline_total: int = 0
    settings: DetectorSettings = field(default_factory=DetectorSettings)
    grow: bool = True
    degraded: bool = False
    intervals: deque[tuple[int, int]] = field(default_factory=deque)

    def observe(self, correct: int, total: int) -> DegradationObservation:
        """The labeled outcomes of one check interval (possibly none)."""
        correct, total = int(correct), int(total)
        if not 0 <= correct <= total:
            raise ValueError(f"correct: expected 0 <= correct <= total, got {correct}/{total}")
        if self.baseline_total < self.settings.baseline_min:
            self.baseline_correct += correct
            self.baseline_total += total
            return DegradationObservation(
                degraded=False, started=False,
                reason=f"collecting the baseline: {self.baseline_total} of "
                f"{self.settings.baseline_min} labeled outcomes",
                baseline_correct=self.baseline_correct, baseline_total=self.baseline_total)
        self.intervals.append((correct, total))
        if len(self.intervals) > self.settings.longest:
            old_x, old_n = self.intervals.popleft()
            if self.grow and not self.degraded and \
                    self.baseline_total < self.settings.baseline_max:
                self.baseline_correct += old_x
                self.baseline_total += old_n
        return self._judge(update=True)

    def evaluate(self) -> DegradationObservation:
        """The current verdict without a new interval (`mlops verify-degradation`)."""
        return self._judge(update=False)

    def window_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(window lengths, correct, total) of every window; a window longer than the
        intervals seen so far holds all of them (and counts once)."""
        arr = np.array(self.intervals, dtype=np.int64).reshape(-1, 2)[::-1]  # newest first
        cum = np.vstack([np.zeros((1, 2), dtype=np.int64), np.cumsum(arr, axis=0)])
        lengths = np.array(sorted({min(w, max(len(arr), 1)) for w in self.settings.windows}),
                           dtype=np.int64)
        at = np.minimum(lengths, len(arr))
        return lengths, cum[at, 0], cum[at, 1]

    def _judge(self, update: bool) -> DegradationObservation:
        s = self.settings
        lengths, x, n = self.window_counts()
        p = drop_p(self.baseline_correct, self.baseline_total, x, n, s.margin_percent / 100)
        best = int(np.argmin(p))
        p_min = float(p[best])
        was = self.degraded
        now = s.holds(p_min, was)
        if update:
            self.degraded = now
        bx, bn = int(x[best]), int(n[best])
        drop = None
        ci = None
        if bn and self.baseline_total and self.baseline_correct:
            drop = (1 - (bx / bn) / (self.baseline_correct / self.baseline_total)) * 100
            interval = relative_drop_ci(self.baseline_correct, self.baseline_total, bx, bn)
            ci = (interval[0] * 100, interval[1] * 100) if interval else None
        reason = "no labeled outcomes in any window" if not bn else s.reason(
            now, was, p_min, f"accuracy fell by {drop:.1f}% over the last {lengths[best]} "
            "check(s)", "still degraded", f"no drop beyond {s.margin_percent:g}% shown")
        return DegradationObservation(
            degraded=now, started=now and not was, reason=reason, p_value=p_min,
            alpha=s.alpha, window_checks=int(lengths[best]), window_correct=bx,
            window_total=bn, baseline_correct=self.baseline_correct,
            baseline_total=self.baseline_total, drop_percent=drop, drop_ci95=ci)

    def to_state(self) -> dict[str, Any]:
        return {"baseline_correct": self.baseline_correct,
                "baseline_total": self.baseline_total, "grow": self.grow,
                "degraded": self.degraded, "intervals": [list(i) for i in self.intervals]}

    @classmethod
    def from_state(cls, state: dict[str, Any], settings: DetectorSettings) -> DegradationDetector:
        keep = settings.longest
        intervals = deque((int(x), int(n)) for x, n in state.get("intervals", [])[-keep:])
        return cls(int(state["baseline_correct"]), int(state["baseline_total"]), settings,
                   grow=bool(state.get("grow", True)), degraded=bool(state.get("degraded")),
                   intervals=intervals)


# ---------------------------------------------------------------- drift
@dataclass(frozen=True)
class DriftObservation:
    drifted: bool
    started: bool
    reason: str
    ks_statistic: float | None = None
    p_value: float | None = None
    alpha: float = 0.0
    window_checks: int | None = None
    window_scores: int = 0
    baseline_scores: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"drifted": self.drifted, "started": self.started, "reason": self.reason,
                "ks_statistic": self.ks_statistic, "p_value": self.p_value,
                "alpha": self.alpha, "window_checks": self.window_checks,
                "window_scores": self.window_scores, "baseline_scores": self.baseline_scores}


@dataclass
class DriftDetector:
    """Score distribution against the baseline's, over the same windows of intervals.

    Histograms have any fixed number of bins over [0, 1]; the caller keeps it constant."""

    baseline: np.ndarray | None = None
    settings: DetectorSettings = field(default_factory=DetectorSettings)
    grow: bool = True
    drifted: bool = False
    intervals: deque[np.ndarray] = field(default_factory=deque)

    def observe(self, hist: Any) -> DriftObservation:
        h = np.asarray(hist, dtype=np.int64)
        if h.ndim != 1 or (h < 0).any():
            raise ValueError("hist: expected a 1-D histogram of non-negative counts")
        if self.baseline is None:
            self.baseline = np.zeros_like(h)
        if h.shape != self.baseline.shape:
            raise ValueError(f"hist: expected {self.baseline.size} bins, got {h.size}")
        if self.baseline.sum() < self.settings.baseline_min:
            self.baseline = self.baseline + h
            return DriftObservation(drifted=False, started=False,
                                    reason="collecting the baseline: "
                                    f"{int(self.baseline.sum())} of "
                                    f"{self.settings.baseline_min} scores",
                                    baseline_scores=int(self.baseline.sum()))
        self.intervals.append(h)
        if len(self.intervals) > self.settings.longest:
            old = self.intervals.popleft()
            if self.grow and not self.drifted and \
                    self.baseline.sum() < self.settings.baseline_max:
                self.baseline = self.baseline + old
        return self._judge(update=True)

    def evaluate(self) -> DriftObservation:
        return self._judge(update=False)

    def _judge(self, update: bool) -> DriftObservation:
        s = self.settings
        base = self.baseline if self.baseline is not None else np.zeros(1, dtype=np.int64)
        recent = list(self.intervals)[::-1]
        best: tuple[float, float, int, int] | None = None  # p, d, window, scores
        for w in sorted({min(w, max(len(recent), 1)) for w in s.windows}):
            window = np.sum(recent[:w], axis=0) if recent else np.zeros_like(base)
            d, p = ks_from_histograms(base, window)
            if d < s.drift_min_distance:
                p = 1.0  # not a difference anyone acts on, however significant
            if best is None or p < best[0]:
                best = (p, d, w, int(np.sum(window)))
        p, d, w, scores = best or (1.0, 0.0, 1, 0)
        was = self.drifted
        now = s.holds(p, was)
        if update:
            self.drifted = now
        reason = "no scores in any window" if not scores else s.reason(
            now, was, p, f"score distribution moved (KS distance {d:.3f}) over the last {w} "
            "check(s)", "still shifted", f"no shift of at least {s.drift_min_distance:g} shown")
        return DriftObservation(now, now and not was, reason, ks_statistic=d, p_value=p,
                                alpha=s.alpha, window_checks=w, window_scores=scores,
                                baseline_scores=int(base.sum()))

    def to_state(self) -> dict[str, Any]:
        return {"baseline": None if self.baseline is None else self.baseline.tolist(),
                "grow": self.grow, "drifted": self.drifted,
                "intervals": [i.tolist() for i in self.intervals]}

    @classmethod
    def from_state(cls, state: dict[str, Any], settings: DetectorSettings) -> DriftDetector:
        base = state.get("baseline")
        return cls(None if base is None else np.asarray(base, dtype=np.int64), settings,
                   grow=bool(state.get("grow", True)), drifted=bool(state.get("drifted")),
                   intervals=deque(np.asarray(i, dtype=np.int64)
                                   for i in state.get("intervals", [])[-settings.longest:]))
