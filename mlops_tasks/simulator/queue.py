"""Job runs for queue-anomaly, with ground truth, in time order.

A run is a dict: ``ts`` (epoch seconds, when the run finished), ``job_class``, ``queue``,
``duration_ms`` (of the last attempt), ``memory_mb`` (peak RSS), ``failed`` (the last attempt
failed), ``attempts`` (1 = no retry), ``items`` (payload size, e.g. the rows of an export; None
for classes without a payload) and ``release`` (the application release the worker ran; it
changes at each deploy).

Normal traffic: Poisson arrivals (``jobs_per_s``) over six job classes with log-normal durations
and memory, class-specific failure and retry rates, and every night at 02:00 a batch of 40
``reports.nightly_rollup`` runs (minutes long, GBs of memory). Deploys come about every ten hours.

Anomalies (label True): ``stuck`` (a run 10-100x its usual duration; half end in a timeout),
``memory-leak`` (an episode of 40-100 runs of one class whose memory grows to 3-6x; a run counts
once its memory is 1.5x what it would have used, the runs before are ``leak-onset``, normal),
``failure-burst`` (a dependency is down for 5-20 minutes: 85 % of that class's runs fail fast;
the failed ones), ``retry-storm`` (10-30 minutes of runs retried 4-10 times, 60 % failing).

Benign look-alikes (label False): ``lookalike:large-payload`` (exports of 50,000+ rows: duration
grows as items**0.9, memory as items**0.35), ``lookalike:nightly-batch``, ``lookalike:cold-start``
(the first 1-3 runs of a class after a deploy, 2-4x slower), ``lookalike:retried-ok`` (retried,
then succeeded), ``lookalike:sporadic-failure`` (a failure at the class's usual rate).

Drifts (from ``drift_at``, a fraction of the run, at a deploy; their runs are normal):
``slower-job-class`` (search.reindex_document gets 3.5x slower, 1.2x the memory, for good),
``new-job-class`` (ml.embed_batch appears: about 11 % of the traffic, seconds long, GBs),
``noisier-job-class`` (billing.charge_card moves to a payment provider with a 1.3x median and
twice the log-spread of durations).

When a run is several things at once, the last applies: cold start over look-alike, then leak,
failure burst, retry storm, stuck. About 2.4 % of the runs are anomalies. ``ts`` is simulated
time (20,000 runs at the default 0.1 run/s span 2.3 days, two nights): for a time-compressed
demo, generate at the default rate and replay the runs faster (the detector does not read
``ts``).

``NaiveZScore`` is the baseline: a raw z-score of the duration against the mean and standard
deviation of every earlier run, all classes together.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from . import Labeled

DRIFTS = ("slower-job-class", "new-job-class", "noisier-job-class")
ANOMALIES = ("stuck", "memory-leak", "failure-burst", "retry-storm")
LOOKALIKES = ("lookalike:large-payload", "lookalike:nightly-batch", "lookalike:cold-start",
              "lookalike:retried-ok", "lookalike:sporadic-failure")
START_TS = 1_735_700_400.0  # 2025-01-01 03:00 UTC
JOBS_PER_S = 0.1
DAY_S = 86_400.0
HOUR_S = 3_600.0

NIGHTLY_AT_S = 2 * HOUR_S  # 02:00 UTC
NIGHTLY_RUNS = 40
NIGHTLY_SPREAD_S = 1_800.0
DEPLOY_EVERY_S = 10 * HOUR_S
STUCK_RATE = 0.004  # per run
LEAKS_PER_DAY = 1.0
BURSTS_PER_DAY = 4.0
STORMS_PER_DAY = 2.0
LEAK_LABEL_GROWTH = 1.5  # a leaking run is an anomaly from 1.5x its normal memory
LARGE_PAYLOAD_ITEMS = 50_000


@dataclass(frozen=True)
class JobClass:
    """One job class's normal behaviour: medians and log-normal spreads (sigma of the log);
    for payload classes the medians are at ``ref_items`` and scale as items**exponent."""

    name: str
    queue: str
    share: float  # of the regular (non-nightly) traffic
    duration_ms: float
    duration_sigma: float
    memory_mb: float
    memory_sigma: float
    failure_rate: float  # runs that fail after their retries
    retry_rate: float  # runs retried, then succeeding
    max_attempts: int
    items_range: tuple[int, int] | None = None  # log-uniform payload size
    ref_items: float = 1_000.0
    duration_exponent: float = 0.0
    memory_exponent: float = 0.0


EMAILS = JobClass("emails.send_welcome", "default", 0.28, 180, 0.35, 70, 0.08, 0.004, 0.02, 3)
BILLING = JobClass("billing.charge_card", "payments", 0.12, 850, 0.45, 95, 0.10, 0.01, 0.04, 3)
THUMBNAILS = JobClass("media.make_thumbnail", "media", 0.20, 2_400, 0.40, 380, 0.22, 0.003,
                      0.005, 2)
EXPORTS = JobClass("exports.build_csv", "batch", 0.08, 900, 0.30, 160, 0.15, 0.008, 0.01, 2,
                   items_range=(50, 200_000), duration_exponent=0.9, memory_exponent=0.35)
SEARCH = JobClass("search.reindex_document", "default", 0.22, 320, 0.30, 140, 0.12, 0.002, 0.01,
                  3)
WEBHOOKS = JobClass("webhooks.deliver", "webhooks", 0.10, 450, 0.70, 55, 0.08, 0.03, 0.12, 5)
NIGHTLY = JobClass("reports.nightly_rollup", "batch", 0.0, 240_000, 0.35, 1_800, 0.20, 0.01,
                   0.02, 2)
EMBED = JobClass("ml.embed_batch", "gpu", 0.12, 6_000, 0.50, 2_200, 0.15, 0.01, 0.02, 2)

CLASSES = (EMAILS, BILLING, THUMBNAILS, EXPORTS, SEARCH, WEBHOOKS)
LEAKY = (THUMBNAILS, EXPORTS, SEARCH, BILLING)
FRAGILE = (BILLING, WEBHOOKS, EMAILS, SEARCH)  # depend on another service


@dataclass(frozen=True)
class _Episode:
    kind: str  # "burst" or "storm"
    job_class: str
    start: float
    end: float


@dataclass
class _Leak:
    job_class: str
    start: float
    runs: int
    growth: float
    seen: int = 0


@dataclass
class _Timeline:
    deploys: list[float]
    episodes: list[_Episode]
    leaks: list[_Leak]
    drift_ts: float | None


def generate(rng: np.random.Generator, n: int, *, drift: str | None = None,
             drift_at: float = 0.5, start_ts: float = START_TS,
             jobs_per_s: float = JOBS_PER_S) -> list[Labeled[dict[str, Any]]]:
    """``n`` labeled job runs in time order; the same ``rng`` state gives the same runs.
    ``drift`` (one of DRIFTS) starts with a deploy at ``drift_start(n, ...)``, ``drift_at`` of
    the way through the expected span; the first run is soon after ``start_ts``."""
    if drift is not None and drift not in DRIFTS:
        raise ValueError(f"drift: expected one of {', '.join(DRIFTS)}, got {drift!r}")
    if not 0.0 <= drift_at <= 1.0:
        raise ValueError(f"drift_at: expected a fraction in [0, 1], got {drift_at}")
    if jobs_per_s <= 0:
        raise ValueError(f"jobs_per_s: expected a rate > 0, got {jobs_per_s}")
    span = n / jobs_per_s
    timeline = _timeline(rng, start_ts, span, None if drift is None else drift_start(
        n, drift_at=drift_at, start_ts=start_ts, jobs_per_s=jobs_per_s))
    out: list[Labeled[dict[str, Any]]] = []
    runs_since_deploy: dict[str, int] = {}
    deploy_index = 0
    arrivals = _arrivals(rng, start_ts, jobs_per_s, drift, timeline.drift_ts)
    for ts, cls in itertools.islice(arrivals, n):
        while deploy_index < len(timeline.deploys) and timeline.deploys[deploy_index] <= ts:
            deploy_index += 1
            runs_since_deploy.clear()
        release = f"2025.1.{deploy_index}"
        since = runs_since_deploy.get(cls.name, 0)
        runs_since_deploy[cls.name] = since + 1
        drifted = _drifted(cls, drift, timeline.drift_ts, ts)
        out.append(_run(rng, ts, drifted, release, since, timeline,
                        drift_kind=drift if drifted is not cls or cls is EMBED else None))
    return out


def drift_start(n: int, *, drift_at: float = 0.5, start_ts: float = START_TS,
                jobs_per_s: float = JOBS_PER_S) -> float:
    """When ``generate`` with the same arguments starts its drift (a deploy): epoch seconds."""
    return start_ts + drift_at * n / jobs_per_s


def _timeline(rng: np.random.Generator, start: float, span: float,
              drift_ts: float | None) -> _Timeline:
    deploys: list[float] = []
    t = start
    while True:
        t += float(rng.exponential(DEPLOY_EVERY_S))
        if t > start + 1.5 * span:
            break
        deploys.append(t)
    if drift_ts is not None:
        deploys.append(drift_ts)
        deploys.sort()
    days = span / DAY_S
    episodes: list[_Episode] = []
    for kind, per_day, minutes in (("burst", BURSTS_PER_DAY, (5, 20)),
                                   ("storm", STORMS_PER_DAY, (10, 30))):
        for _ in range(max(1, int(rng.poisson(per_day * days)))):
            begin = start + float(rng.uniform(0.05, 0.95)) * span
            length = float(rng.uniform(*minutes)) * 60
            cls = FRAGILE[int(rng.integers(len(FRAGILE)))]
            episodes.append(_Episode(kind, cls.name, begin, begin + length))
    leaks = [_Leak(LEAKY[int(rng.integers(len(LEAKY)))].name,
                   start + float(rng.uniform(0.05, 0.9)) * span,
                   int(rng.integers(40, 101)), float(rng.uniform(3, 6)))
             for _ in range(max(1, int(rng.poisson(LEAKS_PER_DAY * days))))]
    return _Timeline(deploys, episodes, leaks, drift_ts)


def _arrivals(rng: np.random.Generator, start: float, rate: float, drift: str | None,
              drift_ts: float | None) -> Iterator[tuple[float, JobClass]]:
    """(finish time, class) of the runs, without end: regular Poisson traffic merged with the
    nightly batches."""
    after = (*CLASSES, EMBED) if drift == "new-job-class" else CLASSES
    cumulative = {classes: np.cumsum([c.share for c in classes]) / sum(c.share for c in classes)
                  for classes in (CLASSES, after)}
    night = math.floor((start - NIGHTLY_AT_S) / DAY_S + 1) * DAY_S + NIGHTLY_AT_S
    nightly: list[float] = []
    t = start
    while True:
        t += float(rng.exponential(1.0 / rate))
        while night <= t:
            nightly.extend(sorted(night + rng.uniform(0, NIGHTLY_SPREAD_S, NIGHTLY_RUNS)))
            night += DAY_S
        while nightly and nightly[0] <= t:
            yield nightly.pop(0), NIGHTLY
        classes = after if drift_ts is not None and t >= drift_ts else CLASSES
        pick = int(np.searchsorted(cumulative[classes], rng.random(), side="right"))
        yield t, classes[min(pick, len(classes) - 1)]


def _drifted(cls: JobClass, drift: str | None, drift_ts: float | None, ts: float) -> JobClass:
    if drift is None or drift_ts is None or ts < drift_ts:
        return cls
    if drift == "slower-job-class" and cls is SEARCH:
        return replace(cls, duration_ms=cls.duration_ms * 3.5, memory_mb=cls.memory_mb * 1.2)
    if drift == "noisier-job-class" and cls is BILLING:
        return replace(cls, duration_ms=cls.duration_ms * 1.3,
                       duration_sigma=cls.duration_sigma * 2)
    return cls


def _active(timeline: _Timeline, kind: str, job_class: str, ts: float) -> bool:
    return any(e.kind == kind and e.job_class == job_class and e.start <= ts < e.end
               for e in timeline.episodes)


def _leak_growth(timeline: _Timeline, job_class: str, ts: float) -> float:
    """The memory factor of a leak under way for this class (1.0 when none); counts the run."""
    for leak in timeline.leaks:
        if leak.job_class == job_class and leak.start <= ts and leak.seen < leak.runs:
            leak.seen += 1
            return 1.0 + (leak.growth - 1.0) * leak.seen / leak.runs
    return 1.0


@dataclass
class _Sample:
    """One run being built: its measurements, its label and the kind that produced them."""

    duration: float
    memory: float
    attempts: int
    failed: bool
    items: int | None
    kind: str
    label: bool = False


def _normal(rng: np.random.Generator, cls: JobClass) -> _Sample:
    """A run of ``cls`` as it usually goes, with its look-alike kind if it is one."""
    items = None
    scale_d = scale_m = 1.0
    if cls.items_range is not None:
        lo, hi = cls.items_range
        items = int(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        scale_d = (items / cls.ref_items) ** cls.duration_exponent
        scale_m = (items / cls.ref_items) ** cls.memory_exponent
    duration = cls.duration_ms * scale_d * math.exp(cls.duration_sigma * rng.standard_normal())
    memory = cls.memory_mb * scale_m * math.exp(cls.memory_sigma * rng.standard_normal())
    sample = _Sample(duration, memory, attempts=1, failed=False, items=items, kind="normal")
    if cls is NIGHTLY:
        sample.kind = "lookalike:nightly-batch"
    elif items is not None and items >= LARGE_PAYLOAD_ITEMS:
        sample.kind = "lookalike:large-payload"
    u = rng.random()
    if u < cls.failure_rate:
        sample.attempts, sample.failed = int(rng.integers(1, cls.max_attempts + 1)), True
        sample.kind = "lookalike:sporadic-failure"
    elif u < cls.failure_rate + cls.retry_rate:
        sample.attempts = int(rng.integers(2, min(3, cls.max_attempts) + 1))
        sample.kind = "lookalike:retried-ok"
    return sample


def _incidents(rng: np.random.Generator, sample: _Sample, cls: JobClass, ts: float,
               timeline: _Timeline) -> None:
    """Apply what goes wrong at ``ts`` (a leak, a failure burst, a retry storm, a stuck run)."""
    growth = _leak_growth(timeline, cls.name, ts)
    if growth > 1.0:
        sample.memory *= growth
        sample.kind, sample.label = ("memory-leak", True) if growth >= LEAK_LABEL_GROWTH else \
            ("leak-onset", False)
    if _active(timeline, "burst", cls.name, ts) and rng.random() < 0.85:
        sample.failed, sample.attempts = True, int(rng.integers(1, cls.max_attempts + 1))
        sample.duration *= math.exp(math.log(0.15) + 0.5 * rng.standard_normal())
        sample.kind, sample.label = "failure-burst", True
    if _active(timeline, "storm", cls.name, ts):
        sample.attempts, sample.failed = int(rng.integers(4, 11)), bool(rng.random() < 0.6)
        sample.kind, sample.label = "retry-storm", True
    if rng.random() < STUCK_RATE:
        sample.duration *= 10 ** float(rng.uniform(1, 2))
        sample.failed = sample.failed or bool(rng.random() < 0.5)
        sample.kind, sample.label = "stuck", True


def _run(rng: np.random.Generator, ts: float, cls: JobClass, release: str, since_deploy: int,
         timeline: _Timeline, drift_kind: str | None) -> Labeled[dict[str, Any]]:
    sample = _normal(rng, cls)
    if drift_kind is not None and sample.kind == "normal":
        sample.kind = f"drift:{drift_kind}"
    if since_deploy < int(rng.integers(1, 4)):
        sample.duration *= float(rng.uniform(2, 4))
        sample.memory *= 1.2
        sample.kind = "lookalike:cold-start"
    _incidents(rng, sample, cls, ts, timeline)
    job = {"ts": round(ts, 3), "job_class": cls.name, "queue": cls.queue,
           "duration_ms": round(sample.duration, 1), "memory_mb": round(sample.memory, 1),
           "failed": sample.failed, "attempts": sample.attempts, "items": sample.items,
           "release": release}
    return Labeled(job, sample.label, sample.kind)


class NaiveZScore:
    """The naive baseline: the duration's z-score against the mean and standard deviation of
    every earlier run (all classes together, anomalies included), online like the detector;
    score = 1 - 2**-(z/3)**2 for z > 0 (0.5 at 3 standard deviations), 0 for the first 20."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0

    def score_job(self, job: Mapping[str, Any]) -> float:
        x = float(job["duration_ms"])
        score = 0.0
        if self.n >= 20:
            std = math.sqrt(self.m2 / (self.n - 1))
            z = (x - self.mean) / std if std > 0 else 0.0
            score = 1.0 - 2.0 ** -((z / 3.0) ** 2) if z > 0 else 0.0
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)
        return score


def naive_scores(jobs: Iterable[Mapping[str, Any]]) -> list[float]:
    """The naive baseline's score of each run, in order, from a fresh start."""
    baseline = NaiveZScore()
    return [baseline.score_job(job) for job in jobs]
