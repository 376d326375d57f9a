"""The Prometheus collector of `mlops serve`: every value read from Redis at scrape time.

It runs in the one server process (never in prefork worker children) with its own
``CollectorRegistry``. Reads are grouped: one pipeline for every model's registry facts and
counters, one for every model's windows, then the event counts (``activity.py``), the
scheduler, beat and queue probes, and the workers' liveness as last asked (``liveness.py``).

Windows of the quality metrics: ``last_100`` and ``last_1000`` (the recent ring, one LRANGE),
``last_hour`` (minute buckets) and ``since_deployment`` (the version's totals). Mean confidence
and latency quantiles have every window but ``last_hour`` (its buckets are summed in Redis,
confusion counts only).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from .. import keys, lua_scripts
from ..alerts.store import firing_counts
from ..alerts.subjects import alert_subjects, system_subjects
from ..connection import run_scripts
from ..health import QueueDepths, queue_depths, read_scheduler
from ..health.queues import Broker
from ..ingest.increments import RECENT_SIZE, unpack_ring
from ..metrics import CONFUSION, confusion_metrics
from ..registry import semver
from ..settings import Settings
from ..timebuckets import bucket_range, covering
from ..windows import COUNT_WINDOWS, LAST_HOUR_S, counter_metrics, ring_metrics
from .activity import (
    TuningCounts,
    alert_metrics,
    job_run_metrics,
    read_alerts_fired,
    tuning_metrics,
)
from .liveness import LivenessCache, worker_metrics

QUALITY = ("accuracy", "precision", "recall", "f1", "false_positive_rate")
LATENCY_QUANTILES = ("p50", "p95")  # of the windows' latency_<q>_ms

def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _hash(raw: dict[Any, Any]) -> dict[str, float]:
    return {_text(k): float(v) for k, v in raw.items()}


@dataclass(frozen=True)
class ModelFacts:
    name: str
    version: str
    windows: dict[str, dict[str, Any]]
    totals: dict[str, float]
    decision_threshold: float | None
    accuracy_threshold: float | None
    pending: int
    dead_letters: int
    alerts: dict[tuple[str, str], int]  # (kind, severity) -> firing
    cache: dict[str, int]  # hits, misses


def _version(deployed: Any, versions: list[Any]) -> str | None:
    if deployed:
        return str(json.loads(deployed)["version"])
    ordered = semver.ordered([_text(v) for v in versions])
    return ordered[-1] if ordered else None


def read_models(raw: redis.Redis, settings: Settings, now: float) -> list[ModelFacts]:
    """Every registered model's facts, in two pipelined round trips (after SMEMBERS)."""
    names = sorted(_text(n) for n in raw.smembers(keys.MODELS))
    if not names:
        return []
    pipe = raw.pipeline(transaction=False)
    for n in names:
        pipe.exists(keys.meta(n))
        pipe.hget(keys.deployments(n), "production")
        pipe.hkeys(keys.versions(n))
        pipe.hgetall(keys.counters(n))
        pipe.hget(keys.pending_meta(n), keys.F_PENDING_COUNT)
        pipe.hvals(keys.alerts_active(n))
        pipe.hgetall(keys.cache_stats(n))
    first = pipe.execute()
    gran = covering(LAST_HOUR_S, settings.retention_days)
    starts = bucket_range(now, LAST_HOUR_S, gran)
    found: list[tuple[str, str, list[Any]]] = []
    sum_fields = raw.register_script(lua_scripts.source("sum_fields.lua"))
    pipe = raw.pipeline(transaction=False)
    for i, n in enumerate(names):
        exists, deployed, versions, *_ = first[i * 7:(i + 1) * 7]
        version = _version(deployed, versions) if exists else None
        if version is None:
            continue
        found.append((n, version, first[i * 7:(i + 1) * 7]))
        pipe.hgetall(keys.total(n, version))
        pipe.lrange(keys.recent(n, version), 0, RECENT_SIZE - 1)
        pipe.lindex(keys.revisions(n, version), -1)
    second = pipe.execute()
    hours = run_scripts(raw, sum_fields, [
        ([keys.agg(n, version, gran.code, s) for s in starts], CONFUSION)
        for n, version, _ in found])
    per = 3
    out = []
    for j, (n, version, (_, _, _, counters, pending, alerts, cache)) in enumerate(found):
        total_raw, recent, revision = second[j * per:(j + 1) * per]
        hour = hours[j]
        totals = _hash(total_raw)
        ring = unpack_ring(list(recent))
        windows = {w: ring_metrics({k: a[:size] for k, a in ring.items()})
                   for w, size in COUNT_WINDOWS.items()}
        windows["since_deployment"] = counter_metrics(totals)
        windows["last_hour"] = confusion_metrics(*(float(v) for v in hour))
        config = json.loads(revision).get("config", {}) if revision else {}
        threshold, accuracy_threshold = (config.get("decision_threshold"),
                                         config.get("accuracy_threshold"))
        firing = Counter((str(a.get("kind")), str(a.get("severity")))
                         for a in (json.loads(v) for v in alerts))
        stats = _hash(cache)
        out.append(ModelFacts(
            name=n, version=version, windows=windows, totals=totals,
            decision_threshold=None if threshold is None else float(threshold),
            accuracy_threshold=None if accuracy_threshold is None else float(accuracy_threshold),
            pending=int(pending or 0),
            dead_letters=int(_hash(counters).get(keys.F_DEAD_LETTERS, 0)),
            alerts=dict(firing),
            cache={"hit": int(stats.get(keys.F_CACHE_HITS, 0)),
                   "miss": int(stats.get(keys.F_CACHE_MISSES, 0))}))
    return out


class MlopsCollector(Collector):
    """Reads Redis at every ``collect()``; a failed read fails the scrape."""

    def __init__(self, client: redis.Redis, raw: redis.Redis, broker: Broker | None,
                 settings: Settings, liveness: LivenessCache | None = None) -> None:
        self.client = client
        self.raw = raw
        self.broker = broker
        self.settings = settings
        self.liveness = liveness
        self.tuning = TuningCounts()

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        models = read_models(self.raw, self.settings, now)
        names = [m.name for m in models]
        system = [s for s in system_subjects() if s not in names]  # jobs and the registry
        yield from model_metrics(models, firing_counts(self.raw, system))
        yield from alert_metrics(read_alerts_fired(self.raw, alert_subjects(names)))
        yield from tuning_metrics(self.tuning.read(self.raw, names))
        yield from scheduler_metrics(self.client, self.settings, now)
        yield from job_run_metrics(self.client)
        if self.broker is not None:
            yield from queue_metrics(queue_depths(self.broker))
        if self.liveness is not None:
            yield from worker_metrics(self.liveness.current())


def model_metrics(models: Iterable[ModelFacts],
                  system_firing: Mapping[str, Mapping[tuple[str, str], int]] | None = None
                  ) -> Iterator[Metric]:
    """The per-model families; ``system_firing`` adds the alerts firing about subjects that
    are not models (scheduled jobs, the registry) to ``mlops_alerts_firing``."""
    models = list(models)
    quality = {m: GaugeMetricFamily(f"mlops_model_{m}", f"{m.replace('_', ' ')} of the model "
                                    "version in the window", labels=["model", "version", "window"])
               for m in QUALITY}
    mvw = ["model", "version", "window"]
    confidence = GaugeMetricFamily("mlops_model_avg_confidence", "mean score of the labeled "
                                   "predictions in the window", labels=mvw)
    latency = {q: GaugeMetricFamily(f"mlops_model_latency_{q}_seconds", f"{q} of the "
                                    "prediction latency of the labeled predictions in the "
                                    "window (absent when no latency was sent)", labels=mvw)
               for q in LATENCY_QUANTILES}
    # window metric -> (its family, the factor to its unit)
    per_window = {**{name: (family, 1.0) for name, family in quality.items()},
                  "avg_confidence": (confidence, 1.0),
                  **{f"latency_{q}_ms": (family, 1e-3) for q, family in latency.items()}}
    mv = ["model", "version"]
    predictions = CounterMetricFamily("mlops_predictions", "predictions ingested since the "
                                      "version's first event", labels=mv)
    truth = CounterMetricFamily("mlops_ground_truth", "labels joined to predictions since the "
                                "version's first event", labels=mv)
    threshold = GaugeMetricFamily("mlops_decision_threshold", "decision threshold in force",
                                  labels=mv)
    alert_threshold = GaugeMetricFamily("mlops_accuracy_threshold", "accuracy under which the "
                                        "monitoring job alerts", labels=mv)
    pending = GaugeMetricFamily("mlops_pending_labels", "predictions awaiting their label",
                                labels=["model"])
    dead = CounterMetricFamily("mlops_dead_letters", "events rejected by ingest",
                               labels=["model"])
    firing = GaugeMetricFamily("mlops_alerts_firing", "alerts firing now",
                               labels=["model", "kind", "severity"])
    cache = CounterMetricFamily("mlops_registry_cache_requests", "reads of the resolved "
                                "configuration cache", labels=["result"])
    hits = Counter[str]()
    for m in models:
        for window, values in m.windows.items():
            for name, (family, scale) in per_window.items():
                if values.get(name) is not None:
                    family.add_metric([m.name, m.version, window], float(values[name]) * scale)
        predictions.add_metric([m.name, m.version], m.totals.get("n", 0.0))
        truth.add_metric([m.name, m.version], m.totals.get("labeled", 0.0))
        if m.decision_threshold is not None:
            threshold.add_metric([m.name, m.version], m.decision_threshold)
        if m.accuracy_threshold is not None:
            alert_threshold.add_metric([m.name, m.version], m.accuracy_threshold)
        pending.add_metric([m.name], m.pending)
        dead.add_metric([m.name], m.dead_letters)
        for (kind, severity), n in sorted(m.alerts.items()):
            firing.add_metric([m.name, kind, severity], n)
        hits.update(m.cache)
    for subject, counts in sorted((system_firing or {}).items()):
        for (kind, severity), n in sorted(counts.items()):
            firing.add_metric([subject, kind, severity], n)
    for result in ("hit", "miss"):
        cache.add_metric([result], hits[result])
    yield from quality.values()
    yield from (confidence, *latency.values())
    yield from (predictions, truth, threshold, alert_threshold, pending, dead, firing, cache)


def scheduler_metrics(client: redis.Redis, settings: Settings, now: float) -> Iterator[Metric]:
    status = read_scheduler(client, settings, now)
    last = GaugeMetricFamily("mlops_scheduler_job_last_success_timestamp_seconds",
                             "when the job last succeeded (Unix time)", labels=["job"])
    failures = GaugeMetricFamily("mlops_scheduler_job_consecutive_failures",
                                 "failures of the job in a row", labels=["job"])
    for job in status.jobs:
        if job.last_success_at is not None:
            last.add_metric([job.name], job.last_success_at)
        failures.add_metric([job.name], job.consecutive_failures)
    age = GaugeMetricFamily("mlops_beat_heartbeat_age_seconds",
                            "age of the beat leader's heartbeat (absent without a leader)")
    if status.beat.heartbeat_age_s is not None:
        age.add_metric([], status.beat.heartbeat_age_s)
    yield from (last, failures, age)


def queue_metrics(depths: QueueDepths) -> Iterator[Metric]:
    depth = GaugeMetricFamily("mlops_queue_depth", "messages waiting in the queue",
                              labels=["queue"])
    for q, n in depths.waiting.items():
        depth.add_metric([q], n)
    yield depth
    if depths.unacked is None:  # RabbitMQ: its own exporter has the unacknowledged messages
        return
    unacked = GaugeMetricFamily("mlops_queue_unacked", "messages taken by a worker and not yet "
                                "acknowledged (kombu keeps one count for every queue: "
                                'queue="all")', labels=["queue"])
    unacked.add_metric(["all"], depths.unacked)
    yield unacked


def metrics_registry(collector: MlopsCollector) -> CollectorRegistry:
    """A registry of its own holding only ``collector`` (no process or platform metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
