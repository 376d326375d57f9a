"""queue-anomaly: a job run judged against what earlier runs of its class did.

Per job class (``job_class``; at most ``MAX_CLASSES``, the least recently seen forgotten) the
detector keeps bounded windows of the class's recent runs and scores each new run on three signals,
before learning from it:

* duration and memory, on a log scale (both are heavy-tailed): when runs carry ``items`` (the
  payload size), first the class's power law in it (a log-log line, refitted every 16 runs,
  outliers trimmed) is taken out, so a big export is judged as a big export. Then the run's robust
  z-score (median and MAD of the window, the MAD floored at ``MIN_SCALE``) and its position
  against the upper Tukey fence (Q3 + ``iqr_multiplier`` x IQR). Only the slow/big side counts.
* failures: the failed attempts (``attempts - 1``, plus one when the run failed) of the class's
  last ``RECENT_RUNS`` (10) runs against the class's learned rate per run (its upper 95 % bound,
  so that a class with few learned runs, or few failures so far, is not held to a rate it has not
  shown), as the z-score of their Poisson tail probability; a run without a failed attempt
  scores 0 on it.

Evidence ``e`` of a signal is ``max(z / zscore_threshold, (x - Q3) / (iqr_multiplier x IQR))``:
1.0 exactly where the z-score rule or the Tukey fence fires (``JOB_ANOMALY_ZSCORE_THRESHOLD``,
``JOB_ANOMALY_IQR_MULTIPLIER``); the run's is the largest of its signals'. The confidence that
the run is anomalous is ``1 - 2**(-e**2)``: 0.5 where the rule fires, 0.94 at twice that. The
score (an anomaly score from 0 to 1, ``JOB_ANOMALY_THRESHOLD`` / 100 being its default cut) puts
``JOB_ANOMALY_MIN_CONFIDENCE`` at 0.5, linearly on each side: ``0.5 x c / min_confidence`` below
it, ``0.5 + 0.5 x (c - min_confidence) / (1 - min_confidence)`` above. So with the shipped
settings a run is flagged (score >= 0.50) exactly when the rule fires with at least 60 %
confidence: e >= 1.15, i.e. z >= 3.45 or x >= Q3 + 1.15 x 1.5 x IQR. The tuner's range 0.4-0.8
moves that cut between e = 0.97 and e = 1.63. The three knobs are read from the registry's
``params`` (``zscore_threshold``, ``iqr_multiplier``, ``min_confidence``) when online, else from
the settings. ``ts`` and ``queue`` are not used: a class is judged as a whole, whatever queue it
ran on.

Learning. Each signal of a class scores 0 until it has learned ``WARMUP_RUNS`` (20) runs, and
learns at most its last ``WINDOW_RUNS`` (256).

* A run on which a signal's rule fired (e >= 1) is not learned by that signal, so an incident
  does not become the new normal; failed runs never teach duration or memory (their duration is
  the time to fail). A lone failure (no other failed attempt among the class's last 10 runs) is
  learned even when flagged, or a class that rarely fails would never learn that it does.
* A new level that comes with a deploy is adopted: a run whose ``release`` differs from its
  class's previous run's starts a deploy, and when 15 of the class's first 20 successful runs
  after it are flagged on duration (or memory) and the flagged values are not rising
  (Mann-Kendall, one-sided 1 %: a leak rises, a slower release does not), that signal starts
  again from those 20 runs. Otherwise a lasting change stays an incident (a leak, a saturated
  dependency). For jobs that carry no ``release`` the check runs over every class's last 20
  successful runs, and the rising test alone tells a leak from a new level.
* The first ``COLD_START_RUNS`` (3) runs of a class after a deploy get a cold-start allowance (4x
  the duration, 1.5x the memory) and teach nothing.

``detect_job`` reports the score, the decision and, as metadata, the job class, the signals whose
rule fired and the three z-scores; nothing else of the job leaves the detector.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import special

from ..errors import ValidationError
from ..registry.limits import quote
from .base import Detection, ReferenceDetector

if TYPE_CHECKING:
    from ..client import MonitoringClient
    from ..settings import Settings

WARMUP_RUNS = 20
WINDOW_RUNS = 256
RECENT_RUNS = 10
MAX_CLASSES = 1_000
MIN_SCALE = 0.1  # log units: a z of 3 is at least a third slower
SLOPE_EVERY = 16
SHIFT_RUNS = 20
SHIFT_FLAGGED = 15
RISING_Z = 2.326  # Mann-Kendall, one-sided 1 %
COLD_START_RUNS = 3
COLD_START_DURATION = math.log(4.0)
COLD_START_MEMORY = math.log(1.5)
SCORE_AT_MIN_CONFIDENCE = 0.5
RATE_BOUND = 0.95
SIGNALS = ("duration", "memory", "failures")
MAX_CLASS_CHARS = 200


@dataclass(frozen=True)
class Params:
    """The rule: a signal fires at ``zscore_threshold`` robust z or beyond the upper Tukey fence
    at ``iqr_multiplier``; ``min_confidence`` is mapped to a score of 0.5."""

    zscore_threshold: float = 3.0
    iqr_multiplier: float = 1.5
    min_confidence: float = 0.6


@dataclass(frozen=True)
class JobAssessment:
    """One run's score, with the evidence behind it: the z-score of each signal, and the signals
    whose rule fired (e >= 1)."""

    job_class: str
    score: float
    confidence: float
    z: dict[str, float]
    fired: tuple[str, ...]

    def metadata(self) -> dict[str, Any]:
        return {"job_class": self.job_class[:MAX_CLASS_CHARS], "signals": list(self.fired),
                "z": {k: round(v, 2) for k, v in self.z.items()}}


# --- the numeric core: pure functions ---------------------------------------------------------

def confidence(evidence: float) -> float:
    """1 - 2**(-e**2): 0.5 where the rule fires (e = 1)."""
    return 1.0 - math.pow(2.0, -(max(evidence, 0.0) ** 2))


def score_from_confidence(c: float, min_confidence: float) -> float:
    """Piecewise linear, ``min_confidence`` -> 0.5, 0 -> 0, 1 -> 1."""
    m = min(max(min_confidence, 1e-6), 1.0 - 1e-6)
    if c < m:
        return SCORE_AT_MIN_CONFIDENCE * c / m
    return SCORE_AT_MIN_CONFIDENCE + (1.0 - SCORE_AT_MIN_CONFIDENCE) * (c - m) / (1.0 - m)


def robust_evidence(residual: float, window: np.ndarray, params: Params) -> tuple[float, float]:
    """(robust z, evidence) of ``residual`` against the residuals ``window``, upper side."""
    q1, median, q3 = np.quantile(window, (0.25, 0.5, 0.75))
    mad = 1.4826 * float(np.median(np.abs(window - median)))
    z = (residual - float(median)) / max(mad, MIN_SCALE)
    iqr = max(float(q3 - q1), 1.349 * MIN_SCALE)
    fence = (residual - float(q3)) / (params.iqr_multiplier * iqr)
    return z, max(z / params.zscore_threshold, fence, 0.0)


def poisson_z(observed: float, expected: float) -> float:
    """The z-score of P(X >= observed) for X ~ Poisson(expected); 0 when not above."""
    if observed <= 0:
        return 0.0
    p = float(special.pdtrc(observed - 1, expected))
    if p >= 0.5:
        return 0.0
    return float(-special.ndtri(max(p, 1e-300)))


def rate_upper(events: float, runs: int) -> float:
    """The upper 95 % bound of a Poisson rate per run after ``events`` in ``runs`` (Jeffreys
    prior): a class with few learned runs is not yet held to a low rate."""
    return float(special.gammaincinv(events + 0.5, RATE_BOUND)) / runs


def rising(values: np.ndarray) -> bool:
    """True when ``values`` trend upwards (Mann-Kendall S, one-sided 1 %, no tie correction)."""
    n = len(values)
    if n < 4:
        return False
    s = float(np.sign(values[None, :] - values[:, None])[np.triu_indices(n, 1)].sum())
    return s / math.sqrt(n * (n - 1) * (2 * n + 5) / 18) > RISING_Z


def loglog_slope(x: np.ndarray, y: np.ndarray) -> float:
    """The slope of y on x, refitted once without the points beyond 3 MADs of the first fit,
    clipped to [0, 2]; 0 when x hardly varies."""
    if float(np.std(x)) < 0.1:
        return 0.0
    slope, intercept = np.polyfit(x, y, 1)
    res = y - (slope * x + intercept)
    dev = np.abs(res - np.median(res))
    keep = dev <= 3 * max(1.4826 * float(np.median(dev)), 1e-9)
    if keep.sum() >= 10 and float(np.std(x[keep])) >= 0.1:
        slope, _ = np.polyfit(x[keep], y[keep], 1)
    return min(max(float(slope), 0.0), 2.0)


# --- per-class state ---------------------------------------------------------------------------

class _Ring:
    """The last ``size`` values of a float column."""

    def __init__(self, size: int) -> None:
        self.values = np.zeros(size)
        self.count = 0

    def push(self, value: float) -> None:
        self.values[self.count % len(self.values)] = value
        self.count += 1

    def view(self) -> np.ndarray:
        return self.values[:min(self.count, len(self.values))]


@dataclass
class _Level:
    """A log-scale signal (duration or memory) of one class: (log items, log value) pairs."""

    x: _Ring = field(default_factory=lambda: _Ring(WINDOW_RUNS))
    y: _Ring = field(default_factory=lambda: _Ring(WINDOW_RUNS))
    slope: float = 0.0
    residuals: np.ndarray | None = None  # of the window, cached until the next push
    recent: deque[tuple[float, float, bool]] = field(
        default_factory=lambda: deque(maxlen=SHIFT_RUNS))
    watching: bool = False  # the runs since a deploy are being watched for a new level

    def assess(self, x: float, y: float, params: Params) -> tuple[float, float]:
        if self.y.count < WARMUP_RUNS:
            return 0.0, 0.0
        if self.residuals is None:
            self.residuals = self.y.view() - self.slope * self.x.view()
        return robust_evidence(y - self.slope * x, self.residuals, params)

    def learn(self, x: float, y: float) -> None:
        self.x.push(x)
        self.y.push(y)
        self.residuals = None
        if self.y.count % SLOPE_EVERY == 0:
            self.slope = loglog_slope(self.x.view(), self.y.view())

    def deployed(self) -> None:
        """A new release: its first SHIFT_RUNS successful runs decide whether it brought a new
        level."""
        self.recent.clear()
        self.watching = True

    def observe(self, x: float, y: float, flagged: bool, *, rolling: bool) -> None:
        """A successful run, flagged or not: adopt a new level (see the module doc); checked
        once per deploy, or at every run when ``rolling`` (jobs without a release)."""
        self.recent.append((x, y, flagged))
        if len(self.recent) < SHIFT_RUNS or not (rolling or self.watching):
            return
        self.watching = False
        if sum(f for _, _, f in self.recent) < SHIFT_FLAGGED:
            return
        flagged_residuals = np.array([b - self.slope * a for a, b, f in self.recent if f])
        if rising(flagged_residuals):
            return
        self.x, self.y = _Ring(WINDOW_RUNS), _Ring(WINDOW_RUNS)
        for a, b, _ in self.recent:
            self.x.push(a)
            self.y.push(b)
        self.residuals = None
        self.recent.clear()


@dataclass
class _Failures:
    """Failed attempts per run of one class: the learned rate, and the last runs."""

    learned: _Ring = field(default_factory=lambda: _Ring(WINDOW_RUNS))
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_RUNS))

    def lone(self) -> bool:
        """True when the last run is the only one of the recent runs with a failed attempt:
        a failure of its own is learned even when flagged, or a class that rarely fails would
        never learn that it does."""
        return sum(1 for x in self.recent if x > 0) <= 1

    def assess(self, failed_attempts: float, params: Params) -> tuple[float, float]:
        self.recent.append(failed_attempts)
        if self.learned.count < WARMUP_RUNS or failed_attempts <= 0:
            return 0.0, 0.0
        window = self.learned.view()
        z = poisson_z(sum(self.recent), rate_upper(float(window.sum()), len(window)) *
                      len(self.recent))
        return z, z / params.zscore_threshold


@dataclass
class _Class:
    duration: _Level = field(default_factory=_Level)
    memory: _Level = field(default_factory=_Level)
    failures: _Failures = field(default_factory=_Failures)
    release: str | None = None
    since_deploy: int = 0


@dataclass(frozen=True)
class _Run:
    job_class: str
    log_items: float
    log_duration: float
    log_memory: float
    failed: bool
    failed_attempts: int
    release: str | None


def _number(job: Mapping[str, Any], key: str, *, lo: float = 0.0) -> float:
    value = job.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or value < lo:
        raise ValidationError(f"job.{key}: expected a number >= {lo:g}, got {quote(value)}")
    return float(value)


def _parse_job(job: Mapping[str, Any]) -> _Run:
    """The fields the detector uses, checked; ValidationError names the bad one."""
    if not isinstance(job, Mapping):
        raise ValidationError(f"job: expected a mapping, got {type(job).__name__}")
    job_class = job.get("job_class")
    if not isinstance(job_class, str) or not job_class:
        raise ValidationError(f"job.job_class: expected a non-empty string, got "
                              f"{quote(job_class)}")
    failed = job.get("failed")
    if not isinstance(failed, (bool, np.bool_)) and failed not in (0, 1):
        raise ValidationError(f"job.failed: expected true/false, got {quote(failed)}")
    attempts = _number(job, "attempts", lo=1)
    items = job.get("items")
    log_items = 0.0 if items is None else math.log(max(_number(job, "items"), 1.0))
    release = job.get("release")
    return _Run(job_class=job_class,
                log_items=log_items,
                log_duration=math.log(max(_number(job, "duration_ms"), 1.0)),
                log_memory=math.log(max(_number(job, "memory_mb"), 1.0)),
                failed=bool(failed),
                failed_attempts=int(attempts) - 1 + int(bool(failed)),
                release=None if release is None else str(release))


class QueueAnomalyDetector(ReferenceDetector):
    """Per job class robust statistics of duration, memory and failures (see the module doc).
    Online: ``score_job`` scores a run against the class's earlier runs, then learns from it.
    Feed one detector from one thread, in time order; ``learning = False`` freezes what it
    learned (runs are scored, nothing is learned)."""

    model = "queue-anomaly"

    def __init__(self, decision_threshold: float | None = None, *,
                 client: MonitoringClient | None = None,
                 settings: Settings | None = None) -> None:
        super().__init__(decision_threshold, client=client, settings=settings)
        self._classes: OrderedDict[str, _Class] = OrderedDict()
        self.learning = True  # False: score without learning (statistics frozen)

    @property
    def params(self) -> Params:
        """The settings' values, each replaced by the registry's ``params`` when valid."""
        s = self.settings
        values = {"zscore_threshold": float(s.job_anomaly_zscore_threshold),
                  "iqr_multiplier": float(s.job_anomaly_iqr_multiplier),
                  "min_confidence": float(s.job_anomaly_min_confidence)}
        online = (self._config() or {}).get("params")
        if isinstance(online, Mapping):
            for key in values:
                value = online.get(key)
                if isinstance(value, (int, float)) and not isinstance(value, bool) and \
                        math.isfinite(value) and value > 0 and \
                        (key != "min_confidence" or value <= 1):
                    values[key] = float(value)
        return Params(**values)

    @property
    def classes(self) -> int:
        """How many job classes the detector holds statistics for."""
        return len(self._classes)

    def _state(self, job_class: str) -> _Class:
        state = self._classes.get(job_class)
        if state is None:
            state = self._classes[job_class] = _Class()
            if len(self._classes) > MAX_CLASSES:
                self._classes.popitem(last=False)
        else:
            self._classes.move_to_end(job_class)
        return state

    def assess_job(self, job: Mapping[str, Any]) -> JobAssessment:
        """Score ``job`` against what its class's earlier runs taught, then learn from it."""
        run = _parse_job(job)
        params = self.params
        state = self._state(run.job_class)
        if run.release is not None and run.release != state.release:
            state.since_deploy = 0 if state.release is not None else COLD_START_RUNS
            state.release = run.release
            state.duration.deployed()
            state.memory.deployed()
        cold = state.since_deploy < COLD_START_RUNS
        state.since_deploy += 1
        d = run.log_duration - (COLD_START_DURATION if cold else 0.0)
        m = run.log_memory - (COLD_START_MEMORY if cold else 0.0)
        z_d, e_d = state.duration.assess(run.log_items, d, params)
        z_m, e_m = state.memory.assess(run.log_items, m, params)
        z_f, e_f = state.failures.assess(run.failed_attempts, params)
        if self.learning and not run.failed and not cold:
            for level, y, e in ((state.duration, d, e_d), (state.memory, m, e_m)):
                if e < 1.0:
                    level.learn(run.log_items, y)
                level.observe(run.log_items, y, e >= 1.0, rolling=run.release is None)
        if self.learning and (e_f < 1.0 or state.failures.lone()):
            state.failures.learned.push(run.failed_attempts)
        evidence = {"duration": e_d, "memory": e_m, "failures": e_f}
        c = confidence(max(evidence.values()))
        return JobAssessment(
            job_class=run.job_class,
            score=score_from_confidence(c, params.min_confidence),
            confidence=c,
            z={"duration": z_d, "memory": z_m, "failures": z_f},
            fired=tuple(k for k in SIGNALS if evidence[k] >= 1.0))

    def score_job(self, job: Mapping[str, Any]) -> float:
        """The run's anomaly score in [0, 1] (0 during the class's warm-up); learns from it."""
        return self.assess_job(job).score

    def detect_job(self, job: Mapping[str, Any], *, actual: bool | None = None) -> Detection:
        """Score ``job``, decide with the threshold in force and report through the client;
        while the model is disabled, neither score nor learn nor report."""
        if not self.enabled:
            return self.disabled()
        started = time.perf_counter()
        result = self.assess_job(job)
        return self.decide(result.score, actual=actual, metadata=result.metadata(),
                           latency_ms=(time.perf_counter() - started) * 1000.0)
