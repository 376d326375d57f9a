"""Alert quality of the degradation and drift detectors (issue 12): false alerts per model-month
and detection delays on months of synthetic traffic with a simulated clock, side by side with the
rule that shipped first, replayed on the same random streams in the same run.

    .venv/bin/python bench/alert_quality.py [--months 100] [--volumes 50,100,...,100000]
        [--accuracies 0.95,0.85,0.75] [--seed 0] [--warmup-days 7] [--horizon-days 3]
        [--margin PERCENT] [--windows 1,4,24,96] [--clear-level P] [--baseline-max N]
        [--min-distance D] [--budget ALERTS] [--crosscheck-months 2] [--skip degradation|drift]
        [--json-only]

Traffic. One check every ``DetectorSettings.interval_s`` (900 s: 2,880 checks are one
model-month of 30 days). Per check interval the labeled count is Poisson(volume * 900 / 3600)
and the correct count Binomial(n, accuracy); intervals are independent (no daily cycle, labels
counted in the interval they arrive in). Scores: every prediction has one (as many per hour as
the volume), 15 % positives ~ Beta(8, 2), negatives ~ Beta(2, 8), counted in 50 equal bins of
0.02 over [0, 1] (the last one closed), as the scheduled job's drift histogram. A bin's count is
Poisson (thinning of a Poisson number of scores drawn from the mixture, which is the same).

Stationary months start at deployment with an empty baseline: the detector collects the first
``baseline_min`` labeled outcomes (or scores), then grows the baseline as documented in
mlops_tasks/monitoring/detectors.py, so the baseline's own sampling error is in every figure.
A false alert is a transition from not alerting to alerting (``observation.started``); mean and
90th percentile over the simulated months.

Delays. A stationary warm-up (``--warmup-days``, 7: the baseline has grown by then; its median
size at the change is printed), then a change: a relative accuracy drop of 5, 10 or 20 %, or a
score shift of 0.1 (negatives up, or positives down, clipped to [0, 1]). The delay is the number
of checks from the change to the first alerting check, counted inclusively: 1 is the first check
whose interval holds changed traffic. A run not alerting within ``--horizon-days`` (3) counts as
undetected (infinite); median and 90th percentile are order statistics (inverted CDF), so a
percentile with undetected runs prints as ">horizon".

The detectors are replayed vectorized: numpy over the runs, a Python loop over the checks only.
``VectorDetector`` repeats the classes' steps (baseline collection to ``baseline_min``, the ring
of intervals, windows, growth of the baseline by each evicted interval while not alerting and
below ``baseline_max``, hysteresis with ``clear_level``) and calls the module's own ``drop_p``
and ``DetectorSettings``; drift is ``stats.ks_from_histograms`` on arrays. Every run first
replays a few months through the real ``DegradationDetector`` and ``DriftDetector`` on the same
streams (default settings and a stress setting with many transitions) and stops unless every
check's state and smallest p-value are identical: that is the evidence the figures are the
shipped code's.

The rule that shipped first (mlops_tasks/monitoring/degradation.py as of 52ef6b9, replaced by
the detectors in 320bc94; its thresholds are constants here since those settings are retired): the
baseline is the first MLOPS_BASELINE_SIZE labeled outcomes after deployment, in whole check
intervals (capture_baseline summed whole buckets), captured once and fixed; every check compares
the last hour (4 intervals, possibly overlapping the baseline at first) with it and is degraded
iff the relative drop of the point estimates is at least 5 % (the old default of
MLOPS_DEGRADATION_MIN_PERCENT) and ``stats.drop_test`` gives p < 0.05; an hour without labeled
outcomes keeps the state. Its drift rule: ``ks_from_histograms`` p < 0.05 and ``psi`` >= 0.2
between the baseline's scores (the same first intervals) and the last hour's, only with at least
100 scores on each side (else the state is kept). The tests run vectorized and are cross-checked
against the scalar functions of mlops_tasks.stats on the cross-check streams.

Progress goes to stderr; stdout gets the tables and, as its last line, one JSON document with
every figure. No Redis and no worker: pure computation (about 1.5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from _harness import log, machine_facts, phase, print_json, print_table, run_main
from scipy import stats as sps

from mlops_tasks.monitoring.detectors import (
    DegradationDetector,
    DetectorSettings,
    DriftDetector,
    drop_p,
)
from mlops_tasks.stats import MIN_EXPECTED_CELL, drop_test, ks_from_histograms, psi

VOLUMES = (50, 100, 300, 1000, 3000, 10000, 30000, 100000)
ACCURACIES = (0.95, 0.85, 0.75)
DROPS = (0.05, 0.10, 0.20)
DAY_S = 86400
HOUR_S = 3600

BINS = 50
EDGES = np.linspace(0.0, 1.0, BINS + 1)
POSITIVE_SHARE = 0.15
NEGATIVE_BETA = (2.0, 8.0)
POSITIVE_BETA = (8.0, 2.0)
SHIFTS = {"negatives +0.1": (0.1, 0.0), "positives -0.1": (0.0, -0.1)}  # (negatives, positives)

# The rule that shipped first, as it ran with its defaults.
OLD_MIN_PERCENT = 5.0
OLD_LEVEL = 0.05
OLD_PSI = 0.2
OLD_WINDOW_S = 3600
OLD_DRIFT_MIN_SCORES = 100  # degradation.DRIFT_MIN_SAMPLES
_PSI_DEFAULTS = inspect.signature(psi).parameters
PSI_GROUPS = int(_PSI_DEFAULTS["bins"].default)
PSI_FLOOR = float(_PSI_DEFAULTS["floor"].default)

# Issue 12's targets.
TARGET_FALSE_PER_MONTH = 1.0
TARGET_5_VOLUME, TARGET_5_MEDIAN, TARGET_5_P90 = 10000, 2, 4
TARGET_10_VOLUME, TARGET_10_P90 = 300, 96
TARGET_SHIFT_P90 = 4  # "within a few checks", read as one hour at the 90th percentile

CROSSCHECK_VOLUMES = (100, 10000)
# Many transitions, a stopped and a capped baseline, windows whose shortest is not one interval.
STRESS = {"false_alarms_per_month": 300.0, "clear_level": 0.2, "baseline_max": 3000,
          "windows": (2, 6, 24), "drift_min_distance": 0.02}


class CrossCheckError(RuntimeError):
    """The vectorized replay disagrees with the detector classes or mlops_tasks.stats."""


# --------------------------------------------------------------------------- traffic
def per_check(volume: float, s: DetectorSettings) -> float:
    """Expected events per check interval at ``volume`` per hour."""
    return volume * s.interval_s / HOUR_S


def rng_for(*key: float) -> np.random.Generator:
    """A generator of its own for every block of runs: a block's figures do not depend on which
    other volumes or accuracies run beside it."""
    return np.random.default_rng([round(k * 1000) for k in key])


def label_stream(rng: np.random.Generator, mean: float, runs: int,
                 accuracy: np.ndarray) -> np.ndarray:
    """(runs, checks, 2): correct and total labeled outcomes of every check interval."""
    total = rng.poisson(mean, size=(runs, accuracy.size))
    correct = rng.binomial(total, accuracy[None, :])
    return np.stack([correct, total], axis=-1)


def accuracy_path(accuracy: float, checks: int, change_at: int, drop: float) -> np.ndarray:
    t = np.arange(checks)
    return np.where(t >= change_at, accuracy * (1 - drop), accuracy)


def class_bins(beta: tuple[float, float], shift: float) -> np.ndarray:
    """Probability of each bin for scores clip(s + shift, 0, 1), s ~ Beta(*beta)."""
    cdf = sps.beta.cdf(EDGES - shift, *beta)
    cdf[0], cdf[-1] = 0.0, 1.0
    return np.diff(cdf)


def score_means(mean: float, negatives_shift: float = 0.0,
                positives_shift: float = 0.0) -> np.ndarray:
    """Expected count of each bin per check interval."""
    return mean * ((1 - POSITIVE_SHARE) * class_bins(NEGATIVE_BETA, negatives_shift)
                   + POSITIVE_SHARE * class_bins(POSITIVE_BETA, positives_shift))


@dataclasses.dataclass(frozen=True)
class HistBlock:
    """Runs of one volume (and one change) drawing their histograms from their own generator."""

    rng: np.random.Generator
    runs: int
    before: np.ndarray  # expected bin counts per check before the change
    after: np.ndarray  # ... and from the change on


def hist_source(blocks: Sequence[HistBlock], checks: int, change_at: int,
                chunk: int = 32) -> Iterator[np.ndarray]:
    """Per check, the (runs, bins) histograms of all blocks stacked, drawn a chunk of checks at
    a time (the whole stream of a month would not fit in memory)."""
    for t0 in range(0, checks, chunk):
        t = np.arange(t0, min(t0 + chunk, checks))
        parts = []
        for b in blocks:
            means = np.where((t >= change_at)[:, None], b.after[None, :], b.before[None, :])
            parts.append(b.rng.poisson(means[None], size=(b.runs, t.size, BINS)))
        h = np.concatenate(parts)
        for i in range(t.size):
            yield np.ascontiguousarray(h[:, i])


# --------------------------------------------------------------------------- tests on arrays
def ks_arrays(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``stats.ks_from_histograms`` over the last axis of broadcastable arrays of counts:
    (distance, p); (0, 1) where a side is empty."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n1, n2 = a.sum(axis=-1), b.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.abs(np.cumsum(a, axis=-1) / n1[..., None]
                   - np.cumsum(b, axis=-1) / n2[..., None]).max(axis=-1)
        en = np.sqrt(n1 * n2 / (n1 + n2))
        empty = (n1 == 0) | (n2 == 0)
        d = np.where(empty, 0.0, d)
        p = np.where(empty, 1.0, sps.kstwobign.sf(d * en))
    return d, p


def psi_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``stats.psi`` (its default groups and floor) of every row pair of two 2-D arrays."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    edges = np.linspace(0, a.shape[-1], PSI_GROUPS + 1).round().astype(int)
    na, nb = a.sum(axis=-1, keepdims=True), b.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        pa = np.maximum(np.add.reduceat(a, edges[:-1], axis=-1) / na, PSI_FLOOR)
        pb = np.maximum(np.add.reduceat(b, edges[:-1], axis=-1) / nb, PSI_FLOOR)
        index = np.sum((pb - pa) * np.log(pb / pa), axis=-1)
    return np.where((na[:, 0] == 0) | (nb[:, 0] == 0), 0.0, index)


def drop_test_p(x1: np.ndarray, n1: np.ndarray, x2: np.ndarray, n2: np.ndarray) -> np.ndarray:
    """``stats.drop_test(exact=False)`` on arrays: Fisher's exact test (one-sided, as
    ``scipy.stats.fisher_exact(alternative="greater")`` computes it) where an expected cell is
    below MIN_EXPECTED_CELL, else the pooled two-proportion z-test. n1, n2 > 0."""
    x1, n1, x2, n2 = (np.asarray(v, dtype=np.int64) for v in (x1, n1, x2, n2))
    pooled = (x1 + x2) / (n1 + n2)
    fisher = np.minimum(n1, n2) * np.minimum(pooled, 1 - pooled) < MIN_EXPECTED_CELL
    p = np.ones(pooled.shape)
    z = ~fisher
    p1, p2 = x1[z] / n1[z], x2[z] / n2[z]
    se = np.sqrt(pooled[z] * (1 - pooled[z]) * (1 / n1[z] + 1 / n2[z]))
    with np.errstate(divide="ignore", invalid="ignore"):
        p[z] = np.where(se == 0, np.where(p2 >= p1, 1.0, 0.0), sps.norm.sf((p1 - p2) / se))
    f1, fn1, f2, fn2 = x1[fisher], n1[fisher], x2[fisher], n2[fisher]
    failures = (fn1 - f1) + (fn2 - f2)
    degenerate = (f1 + f2 == 0) | (failures == 0)
    pf = np.minimum(sps.hypergeom.cdf(fn1 - f1, fn1 + fn2, fn1, failures), 1.0)
    p[fisher] = np.where(degenerate, 1.0, pf)
    return p


# --------------------------------------------------------------------------- the detectors
Judge = Callable[["VectorDetector", np.ndarray], np.ndarray]


class VectorDetector:
    """Many DegradationDetector (or DriftDetector) objects at once, one row each, stepping
    exactly as ``observe`` does; ``judge`` gives the smallest p-value of each active row.

    An interval is a row of counts: (correct, total) for degradation, the histogram for drift;
    the baseline's size is its ``size_column`` (total) or, when None, its sum (scores)."""

    def __init__(self, rows: int, checks: int, width: int, s: DetectorSettings,
                 size_column: int | None, judge: Judge) -> None:
        self.s = s
        self.size_column = size_column
        self.judge = judge
        self.baseline = np.zeros((rows, width), dtype=np.int64)
        self.ring = np.zeros((rows, s.longest, width), dtype=np.int64)
        self.sums = np.zeros((rows, len(s.windows), width), dtype=np.int64)  # per window
        self.count = np.zeros(rows, dtype=np.int64)  # intervals appended since the baseline
        self.alerting = np.zeros(rows, dtype=bool)
        self.state = np.zeros((rows, checks), dtype=bool)  # alerting after each check
        self.p_min = np.full((rows, checks), np.nan)  # NaN while collecting the baseline
        self.baseline_sizes = np.zeros((rows, checks), dtype=np.int64)

    def baseline_size(self) -> np.ndarray:
        if self.size_column is None:
            return self.baseline.sum(axis=1)
        return self.baseline[:, self.size_column]

    def step(self, t: int, h: np.ndarray) -> None:
        """``observe`` of every row with its interval ``h[row]``."""
        s = self.s
        collecting = self.baseline_size() < s.baseline_min
        self.baseline[collecting] += h[collecting]
        act = np.flatnonzero(~collecting)
        if act.size:
            j = self.count[act]  # index of the new interval; the ring holds the last `longest`
            new = h[act]
            for i, w in enumerate(s.windows):  # running sums: add the new, drop what leaves
                leaving = self.ring[act, (j - w) % s.longest]
                leaving[j < w] = 0
                self.sums[act, i] += new - leaving
            slot = j % s.longest
            evicted = self.ring[act, slot]
            grow = (j >= s.longest) & ~self.alerting[act] & \
                (self.baseline_size()[act] < s.baseline_max)
            self.baseline[act[grow]] += evicted[grow]
            self.ring[act, slot] = new
            self.count[act] += 1
            p = self.judge(self, act)
            was = self.alerting[act]
            self.alerting[act] = (p < s.alpha) | (was & (p < s.clear_level))
            self.p_min[act, t] = p
        self.state[:, t] = self.alerting
        self.baseline_sizes[:, t] = self.baseline_size()


def degradation_judge(det: VectorDetector, act: np.ndarray) -> np.ndarray:
    """DegradationDetector._judge: the smallest ``drop_p`` over the windows; a window longer
    than the intervals seen so far holds all of them (the running sums do exactly that)."""
    base = det.baseline[act]
    p = drop_p(base[:, :1], base[:, 1:], det.sums[act, :, 0], det.sums[act, :, 1],
               det.s.margin_percent / 100)
    return p.min(axis=1)


def drift_judge(det: VectorDetector, act: np.ndarray) -> np.ndarray:
    """DriftDetector._judge: the smallest KS p-value over the windows (as above), 1 where the
    distance is below ``drift_min_distance``."""
    d, p = ks_arrays(det.baseline[act][:, None, :], det.sums[act])
    return np.where(d < det.s.drift_min_distance, 1.0, p).min(axis=1)


class OldRule:
    """The rule that shipped first: a baseline captured once, the last hour against it. An
    interval's size is its ``size_column`` (labeled) or, when None, its sum (scores)."""

    def __init__(self, rows: int, checks: int, width: int, size_column: int | None,
                 baseline_size: int, window_checks: int) -> None:
        self.size_column = size_column
        self.baseline_size = baseline_size
        self.base = np.zeros((rows, width), dtype=np.int64)
        self.captured = np.zeros(rows, dtype=bool)
        self.ring = np.zeros((rows, window_checks, width), dtype=np.int64)
        self.hour = np.zeros((rows, width), dtype=np.int64)
        self.alerting = np.zeros(rows, dtype=bool)
        self.state = np.zeros((rows, checks), dtype=bool)

    def size(self, counts: np.ndarray) -> np.ndarray:
        return counts.sum(axis=1) if self.size_column is None else counts[:, self.size_column]

    def collect(self, t: int, h: np.ndarray) -> None:
        """Add the interval to the baseline until captured (the check that completes it
        compares at once, as capture_baseline did), and to the last hour."""
        self.base[~self.captured] += h[~self.captured]
        self.captured |= self.size(self.base) >= self.baseline_size
        slot = t % self.ring.shape[1]
        self.hour += h - self.ring[:, slot]
        self.ring[:, slot] = h


class OldDegradation(OldRule):
    def step(self, t: int, h: np.ndarray) -> None:
        self.collect(t, h)
        x1, n1 = self.base[:, 0], self.base[:, 1]
        x2, n2 = self.hour[:, 0], self.hour[:, 1]
        idx = np.flatnonzero(self.captured & (n2 > 0) & (x1 > 0))  # else: state kept
        acc0 = x1[idx] / n1[idx]
        drop = (acc0 - x2[idx] / n2[idx]) / acc0 * 100
        large = drop >= OLD_MIN_PERCENT
        p = np.ones(idx.size)
        big = idx[large]
        p[large] = drop_test_p(x1[big], n1[big], x2[big], n2[big])
        self.alerting[idx] = large & (p < OLD_LEVEL)
        self.state[:, t] = self.alerting


class OldDrift(OldRule):
    def step(self, t: int, h: np.ndarray) -> None:
        self.collect(t, h)
        idx = np.flatnonzero(self.captured
                             & (self.size(self.base) >= OLD_DRIFT_MIN_SCORES)
                             & (self.size(self.hour) >= OLD_DRIFT_MIN_SCORES))
        if idx.size:
            _, p = ks_arrays(self.base[idx], self.hour[idx])
            drifted = p < OLD_LEVEL
            hit = idx[drifted]
            drifted[drifted] = psi_rows(self.base[hit], self.hour[hit]) >= OLD_PSI
            self.alerting[idx] = drifted
        self.state[:, t] = self.alerting


def replay_degradation(stream: np.ndarray,
                       s: DetectorSettings) -> tuple[VectorDetector, OldDegradation]:
    rows, checks, _ = stream.shape
    new = VectorDetector(rows, checks, 2, s, 1, degradation_judge)
    old = OldDegradation(rows, checks, 2, 1, s.baseline_min, round(OLD_WINDOW_S / s.interval_s))
    for t in range(checks):
        h = np.ascontiguousarray(stream[:, t])
        new.step(t, h)
        old.step(t, h)
    return new, old


def replay_drift(source: Iterator[np.ndarray], rows: int, checks: int,
                 s: DetectorSettings) -> tuple[VectorDetector, OldDrift]:
    new = VectorDetector(rows, checks, BINS, s, None, drift_judge)
    old = OldDrift(rows, checks, BINS, None, s.baseline_min, round(OLD_WINDOW_S / s.interval_s))
    for t, h in enumerate(source):
        new.step(t, h)
        old.step(t, h)
    return new, old


# --------------------------------------------------------------------------- figures
def alerts_per_run(state: np.ndarray) -> np.ndarray:
    """Transitions from not alerting to alerting in each run."""
    before = np.zeros_like(state)
    before[:, 1:] = state[:, :-1]
    return (state & ~before).sum(axis=1)


def delays(state: np.ndarray, change_at: int) -> np.ndarray:
    """Checks from the change to the first alerting check (1 = the first changed interval);
    inf when never within the horizon."""
    after = state[:, change_at:]
    return np.where(after.any(axis=1), after.argmax(axis=1) + 1.0, np.inf)


def quantile(values: np.ndarray, q: float) -> float:
    return float(np.quantile(values, q, method="inverted_cdf"))


def count_summary(counts: np.ndarray) -> dict[str, float]:
    return {"mean": float(counts.mean()), "p90": quantile(counts, 0.9),
            "max": float(counts.max())}


def delay_summary(d: np.ndarray) -> dict[str, Any]:
    def finite(x: float) -> float | None:
        return x if math.isfinite(x) else None
    return {"median": finite(quantile(d, 0.5)), "p90": finite(quantile(d, 0.9)),
            "detected_share": float(np.isfinite(d).mean())}


def delay_cell(summary: dict[str, Any], horizon: int) -> str:
    def one(x: float | None) -> str:
        return f">{horizon}" if x is None else f"{x:.0f}"
    cell = f"{one(summary['median'])}/{one(summary['p90'])}"
    if summary["detected_share"] < 1:
        cell += f" ({summary['detected_share']:.0%})"
    return cell


def yes_no(ok: bool | None) -> str:
    return "-" if ok is None else ("yes" if ok else "NO")


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one run measures."""

    s: DetectorSettings
    volumes: tuple[int, ...]
    accuracies: tuple[float, ...]
    months: int
    seed: int
    month: int  # checks per model-month
    warmup: int  # checks before the change (at least 1)
    horizon: int  # checks after it

    @property
    def change_checks(self) -> int:
        return self.warmup + self.horizon


# --------------------------------------------------------------------------- degradation
def degradation_false_alerts(plan: Plan, accuracy: float) -> list[dict[str, Any]]:
    acc = np.full(plan.month, accuracy)
    stream = np.concatenate([
        label_stream(rng_for(plan.seed, 1, accuracy, v), per_check(v, plan.s), plan.months, acc)
        for v in plan.volumes])
    new, old = replay_degradation(stream, plan.s)
    new_alerts, old_alerts = alerts_per_run(new.state), alerts_per_run(old.state)
    rows = []
    for i, v in enumerate(plan.volumes):
        part = slice(i * plan.months, (i + 1) * plan.months)
        n = count_summary(new_alerts[part])
        rows.append({"accuracy": accuracy, "volume": v, "new": n,
                     "old": count_summary(old_alerts[part]),
                     "new_alerting_checks_mean": float(new.state[part].sum(axis=1).mean()),
                     "old_alerting_checks_mean": float(old.state[part].sum(axis=1).mean()),
                     "baseline_at_month_end_median": float(np.median(
                         new.baseline_sizes[part, -1])),
                     "target_met": n["mean"] <= TARGET_FALSE_PER_MONTH})
    return rows


def delay_targets(volume: int, by_drop: dict[float, dict[str, Any]]) -> dict[str, bool | None]:
    five, ten = by_drop.get(0.05), by_drop.get(0.10)
    met: dict[str, bool | None] = {"drop5": None, "drop10": None}
    if five is not None and volume >= TARGET_5_VOLUME:
        m, p = five["median"], five["p90"]
        met["drop5"] = m is not None and p is not None and m <= TARGET_5_MEDIAN and \
            p <= TARGET_5_P90
    if ten is not None and volume >= TARGET_10_VOLUME:
        met["drop10"] = ten["p90"] is not None and ten["p90"] <= TARGET_10_P90
    return met


def degradation_delays(plan: Plan, accuracy: float) -> list[dict[str, Any]]:
    blocks = [(drop, v) for drop in DROPS for v in plan.volumes]
    stream = np.concatenate([
        label_stream(rng_for(plan.seed, 2, accuracy, drop, v), per_check(v, plan.s),
                     plan.months, accuracy_path(accuracy, plan.change_checks, plan.warmup, drop))
        for drop, v in blocks])
    new, old = replay_degradation(stream, plan.s)
    new_d, old_d = delays(new.state, plan.warmup), delays(old.state, plan.warmup)
    rows: dict[int, dict[str, Any]] = {}
    for i, (drop, v) in enumerate(blocks):
        part = slice(i * plan.months, (i + 1) * plan.months)
        row = rows.setdefault(v, {"accuracy": accuracy, "volume": v, "new": {}, "old": {},
                                  "new_alerting_at_change": {}, "old_alerting_at_change": {}})
        row["new"][drop] = delay_summary(new_d[part])
        row["old"][drop] = delay_summary(old_d[part])
        row["new_alerting_at_change"][drop] = float(new.state[part, plan.warmup - 1].mean())
        row["old_alerting_at_change"][drop] = float(old.state[part, plan.warmup - 1].mean())
        row["baseline_at_change_median"] = float(np.median(
            new.baseline_sizes[part, plan.warmup - 1]))
    for row in rows.values():
        row["targets_met"] = delay_targets(row["volume"], row["new"])
    return list(rows.values())


# --------------------------------------------------------------------------- drift
def drift_false_alerts(plan: Plan) -> list[dict[str, Any]]:
    blocks = [HistBlock(rng_for(plan.seed, 3, v), plan.months, score_means(per_check(v, plan.s)),
                        score_means(per_check(v, plan.s))) for v in plan.volumes]
    source = hist_source(blocks, plan.month, plan.month)
    new, old = replay_drift(source, len(blocks) * plan.months, plan.month, plan.s)
    new_alerts, old_alerts = alerts_per_run(new.state), alerts_per_run(old.state)
    rows = []
    for i, v in enumerate(plan.volumes):
        part = slice(i * plan.months, (i + 1) * plan.months)
        n = count_summary(new_alerts[part])
        rows.append({"volume": v, "new": n, "old": count_summary(old_alerts[part]),
                     "target_met": n["mean"] <= TARGET_FALSE_PER_MONTH})
    return rows


def drift_delays(plan: Plan) -> list[dict[str, Any]]:
    keys = [(name, v) for name in SHIFTS for v in plan.volumes]
    blocks = [HistBlock(rng_for(plan.seed, 4, list(SHIFTS).index(name), v), plan.months,
                        score_means(per_check(v, plan.s)),
                        score_means(per_check(v, plan.s), *SHIFTS[name]))
              for name, v in keys]
    source = hist_source(blocks, plan.change_checks, plan.warmup)
    new, old = replay_drift(source, len(blocks) * plan.months, plan.change_checks, plan.s)
    new_d, old_d = delays(new.state, plan.warmup), delays(old.state, plan.warmup)
    rows: dict[int, dict[str, Any]] = {}
    for i, (name, v) in enumerate(keys):
        part = slice(i * plan.months, (i + 1) * plan.months)
        row = rows.setdefault(v, {"volume": v, "new": {}, "old": {}, "targets_met": {},
                                  "old_alerting_at_change": {}})
        row["new"][name] = delay_summary(new_d[part])
        row["old"][name] = delay_summary(old_d[part])
        row["old_alerting_at_change"][name] = float(old.state[part, plan.warmup - 1].mean())
        p90 = row["new"][name]["p90"]
        row["targets_met"][name] = p90 is not None and p90 <= TARGET_SHIFT_P90
        row["baseline_at_change_median"] = float(np.median(
            new.baseline_sizes[part, plan.warmup - 1]))
    return list(rows.values())


# --------------------------------------------------------------------------- cross-check
def class_degradation(stream: np.ndarray, s: DetectorSettings) -> tuple[list[bool], list[float],
                                                                         int]:
    d = DegradationDetector(settings=s)
    states, ps = [], []
    for x, n in stream:
        o = d.observe(int(x), int(n))
        states.append(o.degraded)
        ps.append(np.nan if o.p_value is None else o.p_value)
    return states, ps, d.baseline_total


def class_drift(hists: np.ndarray, s: DetectorSettings) -> tuple[list[bool], list[float], int]:
    d = DriftDetector(settings=s)
    states, ps = [], []
    for h in hists:
        o = d.observe(h)
        states.append(o.drifted)
        ps.append(np.nan if o.p_value is None else o.p_value)
    return states, ps, int(0 if d.baseline is None else d.baseline.sum())


def scalar_old_degradation(stream: np.ndarray, baseline_size: int, window: int) -> list[bool]:
    """The old rule per check with the scalar ``stats.drop_test``."""
    state, out, base = False, [], None
    cum = np.cumsum(stream, axis=0)
    for t in range(len(stream)):
        if base is None and cum[t, 1] >= baseline_size:
            base = (int(cum[t, 0]), int(cum[t, 1]))
        hour = stream[max(0, t - window + 1):t + 1].sum(axis=0)
        if base is not None and hour[1] > 0 and base[0] > 0:
            acc0 = base[0] / base[1]
            drop = (acc0 - hour[0] / hour[1]) / acc0 * 100
            state = drop >= OLD_MIN_PERCENT and \
                drop_test(base[0], base[1], int(hour[0]), int(hour[1])).p_value < OLD_LEVEL
        out.append(state)
    return out


def scalar_old_drift(hists: np.ndarray, baseline_size: int, window: int) -> list[bool]:
    """The old drift rule per check with the scalar ``ks_from_histograms`` and ``psi``."""
    state, out, base = False, [], None
    cum = np.cumsum(hists, axis=0)
    for t in range(len(hists)):
        if base is None and cum[t].sum() >= baseline_size:
            base = cum[t]
        hour = hists[max(0, t - window + 1):t + 1].sum(axis=0)
        if base is not None and base.sum() >= OLD_DRIFT_MIN_SCORES and \
                hour.sum() >= OLD_DRIFT_MIN_SCORES:
            _, p = ks_from_histograms(base, hour)
            state = p < OLD_LEVEL and psi(base, hour) >= OLD_PSI
        out.append(state)
    return out


def compare(what: str, vec: VectorDetector, old_state: np.ndarray, rows: np.ndarray,
            run_class: Callable[[np.ndarray], tuple[list[bool], list[float], int]],
            run_old: Callable[[np.ndarray], list[bool]] | None) -> dict[str, Any]:
    """Every check of every row: the class's state and p-value against the replay's, and
    (with run_old) the old rule's state against the scalar functions'."""
    checks = transitions = old_transitions = 0
    worst_p = 0.0
    for r, row in enumerate(rows):
        states, ps, baseline = run_class(row)
        p = np.asarray(ps)
        same_p = np.array_equal(p, vec.p_min[r], equal_nan=True)
        worst_p = max(worst_p, float(np.nanmax(np.abs(p - vec.p_min[r]), initial=0.0)))
        if states != vec.state[r].tolist() or not same_p or \
                baseline != int(vec.baseline_sizes[r, -1]):
            first = next((t for t, (a, b) in enumerate(zip(states, vec.state[r], strict=True))
                          if a != b), None)
            raise CrossCheckError(f"{what}, run {r}: the replay differs from the class (first "
                                  f"state difference at check {first}, largest p difference "
                                  f"{worst_p:.3g}, baseline {baseline} vs "
                                  f"{vec.baseline_sizes[r, -1]})")
        checks += len(states)
        transitions += int(alerts_per_run(vec.state[r:r + 1])[0])
        if run_old is not None:
            if run_old(row) != old_state[r].tolist():
                raise CrossCheckError(f"{what}, run {r}: the old rule's replay differs from "
                                      "the scalar stats functions")
            old_transitions += int(alerts_per_run(old_state[r:r + 1])[0])
    return {"case": what, "runs": len(rows), "checks": checks, "transitions": transitions,
            "old_transitions": old_transitions if run_old is not None else None,
            "largest_p_difference": worst_p}


def crosscheck(plan: Plan, months: int) -> list[dict[str, Any]]:
    """Replay a few runs through the classes (and the old rule through the scalar tests) on
    the same streams as the vectorized replay; raise CrossCheckError at the first difference."""
    stress = dataclasses.replace(plan.s, **STRESS)
    old_window = round(OLD_WINDOW_S / plan.s.interval_s)
    results = []
    for label, s, runs in (("default", plan.s, months), ("stress", stress, 1)):
        for v in CROSSCHECK_VOLUMES:
            mean = per_check(v, s)
            for kind, checks, change in (("stationary", plan.month, plan.month),
                                         ("change", plan.change_checks, plan.warmup)):
                acc = accuracy_path(0.85, checks, change, 0.10)
                stream = label_stream(rng_for(plan.seed, 5, v, checks), mean, runs, acc)
                new, old = replay_degradation(stream, s)
                results.append(compare(
                    f"degradation {label} {kind} {v}/h", new, old.state, stream,
                    functools.partial(class_degradation, s=s),
                    functools.partial(scalar_old_degradation, baseline_size=s.baseline_min,
                                      window=old_window) if label == "default" else None))
                block = HistBlock(rng_for(plan.seed, 6, v, checks), runs, score_means(mean),
                                  score_means(mean, *SHIFTS["negatives +0.1"]))
                hists = np.stack(list(hist_source([block], checks, change)), axis=1)
                new, old_d = replay_drift(iter(hists.transpose(1, 0, 2)), runs, checks, s)
                results.append(compare(
                    f"drift {label} {kind} {v}/h", new, old_d.state, hists,
                    functools.partial(class_drift, s=s),
                    functools.partial(scalar_old_drift, baseline_size=s.baseline_min,
                                      window=old_window) if label == "default" else None))
                log(f"  cross-check {label} {kind} {v}/h: identical")
    return results


# --------------------------------------------------------------------------- output
def print_degradation(false_rows: list[dict[str, Any]], delay_rows: list[dict[str, Any]],
                      plan: Plan) -> None:
    print(f"\nFalse degradation alerts per model-month ({plan.month:,} checks), stationary "
          f"traffic, {plan.months} months per row, each from deployment (empty baseline)")
    print_table(["accuracy", "volume/h", "new mean", "new p90", "new max", "old mean",
                 "old p90", "old alerting checks", "baseline at day 30", "<=1/month"],
                [[r["accuracy"], r["volume"], r["new"]["mean"], r["new"]["p90"],
                  r["new"]["max"], r["old"]["mean"], r["old"]["p90"],
                  r["old_alerting_checks_mean"], r["baseline_at_month_end_median"],
                  yes_no(r["target_met"])] for r in false_rows])
    print(f"\nDegradation detection delay in checks (median/p90; detected share if <100 %) "
          f"after {plan.warmup * plan.s.interval_s / DAY_S:g} days of stationary warm-up, "
          f"horizon {plan.horizon} checks; {plan.months} runs per cell; targets: 5 % "
          f"<= {TARGET_5_MEDIAN}/{TARGET_5_P90} at >= {TARGET_5_VOLUME:,}/h, 10 % p90 "
          f"<= {TARGET_10_P90} at >= {TARGET_10_VOLUME}/h")
    headers = ["accuracy", "volume/h", "baseline at change"]
    for drop in DROPS:
        headers += [f"{drop:.0%} new", f"{drop:.0%} old"]
    headers += ["5% target", "10% target", "old alerting at change"]
    rows = []
    for r in delay_rows:
        row: list[Any] = [r["accuracy"], r["volume"], r["baseline_at_change_median"]]
        for drop in DROPS:
            row += [delay_cell(r["new"][drop], plan.horizon),
                    delay_cell(r["old"][drop], plan.horizon)]
        row += [yes_no(r["targets_met"]["drop5"]), yes_no(r["targets_met"]["drop10"]),
                f"{max(r['old_alerting_at_change'].values()):.0%}"]
        rows.append(row)
    print_table(headers, rows)


def print_drift(false_rows: list[dict[str, Any]], delay_rows: list[dict[str, Any]],
                plan: Plan) -> None:
    print(f"\nFalse drift alerts per model-month, stationary scores ({BINS} bins of "
          f"{1 / BINS:g}), {plan.months} months per row; old rule needs >= "
          f"{OLD_DRIFT_MIN_SCORES} scores in the hour")
    print_table(["volume/h", "new mean", "new p90", "new max", "old mean", "old p90",
                 "<=1/month"],
                [[r["volume"], r["new"]["mean"], r["new"]["p90"], r["new"]["max"],
                  r["old"]["mean"], r["old"]["p90"], yes_no(r["target_met"])]
                 for r in false_rows])
    print(f"\nDrift detection delay in checks (median/p90; detected share if <100 %), one "
          f"class's scores moved by 0.1 after {plan.warmup * plan.s.interval_s / DAY_S:g} days, "
          f"horizon {plan.horizon} checks; target read as p90 <= {TARGET_SHIFT_P90} checks")
    headers = ["volume/h", "baseline at change"]
    for name in SHIFTS:
        headers += [f"{name} new", f"{name} old", "target"]
    rows = []
    for r in delay_rows:
        row: list[Any] = [r["volume"], r["baseline_at_change_median"]]
        for name in SHIFTS:
            row += [delay_cell(r["new"][name], plan.horizon),
                    delay_cell(r["old"][name], plan.horizon), yes_no(r["targets_met"][name])]
        rows.append(row)
    print_table(headers, rows)


def print_crosscheck(results: list[dict[str, Any]]) -> None:
    print("\nCross-check: the detector classes (and the scalar stats functions for the old "
          "rule) on the same streams, every check identical")
    print_table(["case", "runs", "checks", "transitions", "old transitions", "largest |dp|"],
                [[r["case"], r["runs"], r["checks"], r["transitions"], r["old_transitions"],
                  r["largest_p_difference"]] for r in results])


# --------------------------------------------------------------------------- main
def int_list(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def float_list(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--months", type=int, default=100,
                   help="simulated months (and delay runs) per row (default 100)")
    p.add_argument("--volumes", type=int_list, default=VOLUMES,
                   help="labeled predictions per hour, comma-separated")
    p.add_argument("--accuracies", type=float_list, default=ACCURACIES,
                   help="stationary accuracies, comma-separated (default 0.95,0.85,0.75)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup-days", type=float, default=7.0)
    p.add_argument("--horizon-days", type=float, default=3.0)
    p.add_argument("--crosscheck-months", type=int, default=2,
                   help="runs per cross-check case with the default settings (at least 1)")
    p.add_argument("--skip", choices=("degradation", "drift"), action="append", default=[])
    p.add_argument("--json-only", action="store_true", help="only the JSON line on stdout")
    g = p.add_argument_group("detector settings (default: DetectorSettings())")
    g.add_argument("--margin", type=float, help="margin_percent")
    g.add_argument("--windows", type=int_list, help="windows in checks, e.g. 1,4,24,96")
    g.add_argument("--clear-level", type=float, help="clear_level")
    g.add_argument("--baseline-max", type=int, help="baseline_max")
    g.add_argument("--min-distance", type=float, help="drift_min_distance")
    g.add_argument("--budget", type=float, help="false_alarms_per_month")
    args = p.parse_args()
    if args.months < 1 or args.crosscheck_months < 1:
        p.error("--months and --crosscheck-months: expected at least 1")
    if not args.volumes or min(args.volumes) <= 0:
        p.error(f"--volumes: expected positive integers, got {args.volumes}")
    if not args.accuracies or not all(0 < a < 1 for a in args.accuracies):
        p.error(f"--accuracies: expected values in (0, 1), got {args.accuracies}")
    if args.windows is not None and (not args.windows or min(args.windows) < 1):
        p.error(f"--windows: expected positive integers, got {args.windows}")
    if args.warmup_days <= 0 or args.horizon_days <= 0:
        p.error("--warmup-days and --horizon-days: expected more than 0")
    return args


def settings_from(args: argparse.Namespace) -> DetectorSettings:
    names = {"margin": "margin_percent", "windows": "windows", "clear_level": "clear_level",
             "baseline_max": "baseline_max", "min_distance": "drift_min_distance",
             "budget": "false_alarms_per_month"}
    changes = {field: getattr(args, arg) for arg, field in names.items()
               if getattr(args, arg) is not None}
    return dataclasses.replace(DetectorSettings(), **changes)


def main() -> int:
    args = parse_args()
    started = time.monotonic()
    s = settings_from(args)
    checks = round(s.checks_per_month)
    plan = Plan(s=s, volumes=args.volumes, accuracies=args.accuracies, months=args.months,
                seed=args.seed, month=checks,
                warmup=max(1, round(args.warmup_days * DAY_S / s.interval_s)),
                horizon=max(1, round(args.horizon_days * DAY_S / s.interval_s)))
    log(f"settings: {s} (alpha {s.alpha:.3g} per window and check)")
    doc: dict[str, Any] = {"bench": "alert_quality", "settings": dataclasses.asdict(s),
                           "alpha": s.alpha, "args": dict(vars(args)),
                           "checks_per_month": checks, "warmup_checks": plan.warmup,
                           "horizon_checks": plan.horizon, "bins": BINS}
    with phase("cross-check against the detector classes"):
        doc["crosscheck"] = crosscheck(plan, args.crosscheck_months)
    if "degradation" not in args.skip:
        false_rows, delay_rows = [], []
        for accuracy in plan.accuracies:
            with phase(f"degradation, accuracy {accuracy:g}: stationary months"):
                false_rows += degradation_false_alerts(plan, accuracy)
            with phase(f"degradation, accuracy {accuracy:g}: drops"):
                delay_rows += degradation_delays(plan, accuracy)
        doc["degradation"] = {"false_alerts": false_rows, "delays": delay_rows}
    if "drift" not in args.skip:
        with phase("drift: stationary months"):
            drift_false = drift_false_alerts(plan)
        with phase("drift: shifts"):
            drift_delay = drift_delays(plan)
        doc["drift"] = {"false_alerts": drift_false, "delays": drift_delay}
    doc["run_s"] = round(time.monotonic() - started, 1)
    doc["machine"] = machine_facts()
    if not args.json_only:
        print(f"Settings: {s}; alpha per window and check {s.alpha:.3g}")
        if "degradation" in doc:
            print_degradation(doc["degradation"]["false_alerts"],
                              doc["degradation"]["delays"], plan)
        if "drift" in doc:
            print_drift(doc["drift"]["false_alerts"], doc["drift"]["delays"], plan)
        print_crosscheck(doc["crosscheck"])
        print(f"\nrun time {doc['run_s']:.0f} s")
    print_json(doc)
    return 0


if __name__ == "__main__":
    run_main(main)
