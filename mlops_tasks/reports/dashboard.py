"""The dashboard of `mlops serve` (``/``): one card per registered model and a system strip,
read with the functions behind the CLI's reports and ``/metrics`` (the page only draws them).

Per model, the version production runs, else the latest (as every report):

    points          its hour buckets of the last day or week, or its day buckets of the last
                    month (the series of `mlops performance-trends NAME --days 30`)
    span_metrics    ``windows.counter_metrics`` of those buckets summed: accuracy,
                    false-positive rate, mean confidence, latency p50/p95 (for a day, the
                    ``last_24h`` of `mlops daily-summary`)
    monitoring      the performance-monitoring job's last check: accuracy against the alert
                    threshold (`mlops daily-summary`'s status)
    degradation     the degradation job's last check, with the score drift it measured
    thresholds      the alert and decision thresholds over the span, from the audit trail
                    (`mlops audit-log NAME`), auto-tuning applications and rollbacks included
    alerts          `mlops alerts --model NAME --since <span>` as a timeline, with the
                    subject's silences (`mlops silences --all`)
    pending, dead letters  as `mlops performance-summary` counts them
    tuning          the kept tuning runs, applied or not, and the last run's improvement, as
                    ``/metrics`` counts them (``server.activity.TuningCounts``)

The system strip: `mlops scheduler status` (every job, beat), the queue depths and the pools'
liveness as ``/metrics`` reads them, and the registry cache's hits and misses (`mlops cache
health`). What is read is bounded by buckets, configuration changes and alerts in the span
(``AUDIT_LIMIT``, ``ALERT_LIMIT``), never by the number of events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import keys
from ..health import queue_depths, read_scheduler
from ..health.queues import Broker
from ..monitoring.targets import last_checks, target
from ..timebuckets import DAY_S, HOUR, Granularity, bucket_range, day
from ..timefmt import from_iso
from ..windows import counter_metrics
from .alerts import alert_listing
from .timeline import (
    SERIES_FIELDS,
    SPANS,
    AlertSpan,
    BucketPoint,
    SilenceSpan,
    Span,
    Step,
    alert_spans,
    bucket_points,
    setting_steps,
    silence_spans,
)

if TYPE_CHECKING:

    from ..health import PoolLiveness, QueueDepths, SchedulerStatus
    from ..server.activity import TuningCounts, TuningFacts
    from ..services import Services

AUDIT_LIMIT = 1000  # audit entries read per model: configuration changes in the span
ALERT_LIMIT = 5000  # alert history events read, every subject together


@dataclass(frozen=True)
class Status:
    """A one-word state, how it reads (ok, warn, bad, unknown) and the detail behind it."""

    word: str
    level: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"word": self.word, "level": self.level, "detail": self.detail}


def monitoring_status(check: dict[str, Any] | None) -> Status:
    """The performance-monitoring job's last check of a model, as one word (pure)."""
    if check is None:
        return Status("not checked", "unknown", "monitoring checks models deployed to production")
    status = str(check.get("status"))
    level = {"monitored": "ok", "alerting": "bad", "disabled": "unknown"}.get(status, "warn")
    accuracy, threshold = check.get("accuracy"), check.get("accuracy_threshold")
    if accuracy is None or threshold is None:
        return Status(status, level, str(check.get("reason") or ""))
    return Status(status, level, f"accuracy {accuracy:.1%} in {check.get('window')} "
                                 f"({check.get('labeled')} labeled), threshold {threshold:.1%}")


def drift_status(check: dict[str, Any] | None) -> Status:
    """The degradation job's last check of a model: its score drift, else why it has none."""
    if check is None:
        return Status("not checked", "unknown", "degradation checks models in production")
    drift = check.get("drift") or {}
    if drift.get("ks_statistic") is not None:
        detail = f"KS {drift['ks_statistic']:.3f}, p {drift.get('p_value'):.2g}"
        return (Status("drifted", "bad", detail) if drift.get("drifted")
                else Status("no drift", "ok", detail))
    return Status(str(check.get("status")).replace("_", " "), "unknown",
                  str(drift.get("reason") or check.get("reason") or ""))


@dataclass(frozen=True)
class ModelCard:
    name: str
    display_name: str
    version: str
    deployed: bool  # to production
    points: tuple[BucketPoint, ...]
    span_metrics: dict[str, Any]  # windows.counter_metrics of the span's buckets
    accuracy_threshold: tuple[Step, ...]
    decision_threshold: tuple[Step, ...]
    monitoring: Status
    drift: Status
    alerts: tuple[AlertSpan, ...]  # oldest first
    silences: tuple[SilenceSpan, ...]
    pending_labels: int
    dead_letters: int
    tuning: TuningFacts | None  # None: no tuning run kept

    @property
    def firing(self) -> int:
        return sum(1 for a in self.alerts if a.status == "firing")

    def fired_since(self, since: float) -> int:
        """Alerts (not events) that fired at ``since`` or later: the alert frequency."""
        return sum(1 for a in self.alerts if a.status != "event" and a.start >= since)

    def commands(self, span: Span) -> tuple[str, ...]:
        """The CLI commands that print this card's numbers."""
        trend = ("mlops daily-summary" if span.days == 1 else
                 f"mlops performance-trends {self.name} --days {span.days}")
        return (trend, "mlops performance-summary",
                f"mlops alerts --model {self.name} --since {span.days}d",
                f"mlops audit-log {self.name}", f"mlops auto-tuning-history {self.name}")

    def to_dict(self) -> dict[str, Any]:
        t = self.tuning
        return {"name": self.name, "display_name": self.display_name, "version": self.version,
                "deployed": self.deployed, "points": [p.to_dict() for p in self.points],
                "span_metrics": self.span_metrics,
                "accuracy_threshold": [s.to_dict() for s in self.accuracy_threshold],
                "decision_threshold": [s.to_dict() for s in self.decision_threshold],
                "monitoring": self.monitoring.to_dict(), "drift": self.drift.to_dict(),
                "alerts": [a.to_dict() for a in self.alerts],
                "silences": [s.to_dict() for s in self.silences],
                "pending_labels": self.pending_labels, "dead_letters": self.dead_letters,
                "tuning": None if t is None else {
                    "applied": t.applied, "not_applied": t.not_applied,
                    "last_improvement_percent": t.last_improvement_percent}}


@dataclass(frozen=True)
class SystemStrip:
    scheduler: SchedulerStatus
    queues: QueueDepths | None  # None: the broker is not Redis
    workers: tuple[PoolLiveness, ...] | None  # None: not asked yet (or not asked here)
    cache_hits: int
    cache_misses: int

    @property
    def cache_hit_rate(self) -> float | None:
        lookups = self.cache_hits + self.cache_misses
        return self.cache_hits / lookups if lookups else None

    def to_dict(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler.to_dict(),
                "queues": None if self.queues is None else self.queues.to_dict(),
                "workers": None if self.workers is None else [w.to_dict() for w in self.workers],
                "registry_cache": {"hits": self.cache_hits, "misses": self.cache_misses,
                                   "hit_rate": self.cache_hit_rate}}


@dataclass(frozen=True)
class Dashboard:
    generated_at: float
    span: Span
    since: float  # start of the span's first bucket
    models: tuple[ModelCard, ...]  # by name
    system: SystemStrip

    def to_dict(self) -> dict[str, Any]:
        return {"generated_at": self.generated_at, "span": self.span.to_dict(),
                "since": self.since, "models": [m.to_dict() for m in self.models],
                "system": self.system.to_dict()}


def span_buckets(span: Span, now: float, retention_days: int) -> tuple[Granularity, list[int]]:
    """(granularity, bucket starts, oldest first) of ``span`` at ``now``: the hour buckets
    covering it (as ``time_window`` reads them), or the day buckets of its days ending today
    (as ``WindowReader.daily`` reads them) (pure)."""
    if span.bucket_s == DAY_S:
        g = day(retention_days)
        today = g.start(now)
        return g, [today - i * DAY_S for i in range(span.days - 1, -1, -1)]
    return HOUR, bucket_range(now, span.seconds, HOUR)


def _model_card(svc: Services, name: str, span: Span, since: float, now: float,
                checks: tuple[dict[str, Any], dict[str, Any]], alerts: list[dict[str, Any]],
                silences: list[dict[str, Any]],
                tuning: dict[str, TuningFacts]) -> ModelCard:
    t = target(svc.registry, name)  # the version the monitoring jobs look at
    gran, starts = span_buckets(span, now, svc.settings.retention_days)
    counts, total = svc.windows.bucket_series(name, t.version, gran, starts, SERIES_FIELDS)
    audit = [e.to_dict() for e in svc.registry.audit_log(name, AUDIT_LIMIT)]
    spans_of_silences = silence_spans(silences, name, since, now)
    monitoring, degradation = checks
    return ModelCard(
        name=name, display_name=t.display_name, version=t.version,
        deployed=t.deployed_ts is not None,
        points=bucket_points(zip(starts, counts, strict=True)),
        span_metrics=counter_metrics(total),
        accuracy_threshold=setting_steps(audit, t.version, "accuracy_threshold",
                                         t.config.get("accuracy_threshold"), since),
        decision_threshold=setting_steps(audit, t.version, "decision_threshold",
                                         t.config.get("decision_threshold"), since),
        monitoring=monitoring_status(monitoring.get(name)),
        drift=drift_status(degradation.get(name)),
        alerts=alert_spans([a for a in alerts if a["model"] == name], spans_of_silences, since,
                           from_iso),
        silences=spans_of_silences,
        pending_labels=svc.windows.pending(name),
        dead_letters=svc.windows.counters(name).get(keys.F_DEAD_LETTERS, 0),
        tuning=tuning.get(name))


def read_dashboard(svc: Services, span_name: str, *, broker: Broker | None = None,
                   workers: tuple[PoolLiveness, ...] | None = None,
                   tuning: TuningCounts | None = None, now: float | None = None) -> Dashboard:
    """Everything the page shows over the span ``span_name`` (a key of ``SPANS``), read now.
    ``broker``: the broker's Redis for the queue depths (None: not shown); ``workers``: the
    pools' liveness as last asked; ``tuning``: the counter of tuning runs to reuse (its cache
    spares a count when the history did not change)."""
    # the server package imports this module: its counter is imported when called
    from ..server.activity import TuningCounts  # noqa: PLC0415 - see above

    now = svc.clock() if now is None else now
    span = SPANS[span_name]
    names = svc.registry.model_names()
    _, starts = span_buckets(span, now, svc.settings.retention_days)
    since = float(starts[0])
    checks = (last_checks(svc, names, keys.monitor_status),
              last_checks(svc, names, keys.degradation_status))
    listed = alert_listing(svc, None, now - since, limit=ALERT_LIMIT)
    alerts = [a.to_dict() for a in listed]
    silences = svc.alerts.store.silences(include_expired=True)
    counted = (tuning or TuningCounts()).read(svc.raw, names)
    models = tuple(_model_card(svc, n, span, since, now, checks, alerts, silences, counted)
                   for n in names)
    cache = svc.registry.cache_stats()
    system = SystemStrip(scheduler=read_scheduler(svc.redis, svc.settings, now),
                         queues=None if broker is None else queue_depths(broker),
                         workers=workers, cache_hits=cache["hits"],
                         cache_misses=cache["misses"])
    return Dashboard(generated_at=now, span=span, since=since, models=models, system=system)
