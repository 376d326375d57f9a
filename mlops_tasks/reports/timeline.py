"""The dashboard's time series, from what Redis keeps (pure functions).

Every series is bounded by the number of time buckets, configuration changes and alerts in the
span, never by the number of events:

    Span              the period a page shows: a day or a week of hour buckets, a month of day
                      buckets (hour buckets are kept 8 days, day buckets for the retention)
    bucket_points     accuracy, false-positive rate, mean confidence and prediction counts of
                      each bucket (``windows.counter_metrics``'s formulas, without its latency)
    setting_steps     a configuration field over the span, from the audit trail: the value in
                      force at the start, then one step per change (auto-tune, rollback, ...)
    alert_spans       alerts as intervals (fired .. resolved, or still firing), events as
                      instants, each marked silenced when a silence overlapped it
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..metrics import confusion_metrics
from ..timebuckets import DAY_S, HOUR

HOUR_S = HOUR.size_s
SERIES_FIELDS = ("n", "labeled", "tp", "fp", "tn", "fn", "score_sum")  # what bucket_point reads
CONFIG_ACTIONS = ("register", "update-config", "rollback-config", "auto-tune")


@dataclass(frozen=True)
class Span:
    """A period the page shows, and the buckets it is drawn from."""

    name: str
    seconds: int
    bucket_s: int  # HOUR_S (hour buckets) or DAY_S (day buckets)

    @property
    def days(self) -> int:
        return self.seconds // DAY_S

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "seconds": self.seconds, "bucket_s": self.bucket_s}


SPANS = {s.name: s for s in (Span("day", DAY_S, HOUR_S), Span("week", 7 * DAY_S, HOUR_S),
                             Span("month", 30 * DAY_S, DAY_S))}
DEFAULT_SPAN = "week"


@dataclass(frozen=True)
class BucketPoint:
    """One time bucket. Predictions are counted when they were made, labeled outcomes (and the
    metrics over them) when their label arrived."""

    start: int
    predictions: int
    labeled: int
    accuracy: float | None
    false_positive_rate: float | None
    avg_confidence: float | None  # mean score of the labeled outcomes

    @property
    def unlabeled(self) -> int:
        """Predictions of the bucket beyond the labels that arrived in it (never negative)."""
        return max(self.predictions - self.labeled, 0)

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "predictions": self.predictions, "labeled": self.labeled,
                "accuracy": self.accuracy, "false_positive_rate": self.false_positive_rate,
                "avg_confidence": self.avg_confidence}


def bucket_point(start: int, counts: Mapping[str, float]) -> BucketPoint:
    """One bucket's counters (a ``keys.agg`` hash) as a point."""
    m = confusion_metrics(counts.get("tp", 0), counts.get("fp", 0), counts.get("tn", 0),
                          counts.get("fn", 0))
    labeled = counts.get("labeled", 0)
    return BucketPoint(start=start, predictions=int(counts.get("n", 0)), labeled=int(labeled),
                       accuracy=m["accuracy"], false_positive_rate=m["false_positive_rate"],
                       avg_confidence=counts.get("score_sum", 0) / labeled if labeled else None)


def bucket_points(buckets: Iterable[tuple[int, Mapping[str, float]]]) -> tuple[BucketPoint, ...]:
    return tuple(bucket_point(start, counts) for start, counts in buckets)


@dataclass(frozen=True)
class Step:
    """A value in force from ``at``: the value at the span's start (``action`` "in force"), or
    a change the audit trail recorded."""

    at: float
    value: float | None
    action: str  # "in force", or the audit action: auto-tune, rollback-config, update-config
    actor: str | None
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "value": self.value, "action": self.action, "actor": self.actor,
                "reason": self.reason}


IN_FORCE = "in force"


def _field(config: Any, name: str) -> float | None:
    value = config.get(name) if isinstance(config, Mapping) else None
    return float(value) if isinstance(value, (int, float)) else None


def setting_steps(entries: Sequence[Mapping[str, Any]], version: str, name: str,
                  current: float | None, since: float) -> tuple[Step, ...]:
    """``name`` of ``version``'s configuration over the span starting at ``since``: the value in
    force then, and every audited change of it since, oldest first. ``entries`` are audit
    entries (``AuditEntry.to_dict()``) of the model, any order; ``current`` is the value now
    (when no change happened in the span, it was in force all along)."""
    changes = sorted((e for e in entries
                      if e.get("version") == version and e.get("action") in CONFIG_ACTIONS
                      and float(e.get("ts") or 0) >= since),
                     key=lambda e: float(e["ts"]))
    steps: list[Step] = []
    start = _field(changes[0].get("before"), name) if changes else current
    if not changes or changes[0].get("action") != "register":
        steps.append(Step(at=since, value=start, action=IN_FORCE, actor=None, reason=None))
    for e in changes:
        value = _field(e.get("after"), name)
        if steps and value == steps[-1].value and e.get("action") != "rollback-config":
            continue  # another field changed
        steps.append(Step(at=float(e["ts"]), value=value, action=str(e["action"]),
                          actor=e.get("actor"), reason=e.get("reason")))
    return tuple(steps)


@dataclass(frozen=True)
class AlertSpan:
    """One alert on the timeline: firing from ``start`` until ``end`` (None: still firing), or
    an event at ``start`` (``end`` equal to it)."""

    id: str
    kind: str
    severity: str
    status: str  # firing, resolved or event (alerts.model.STATUSES)
    message: str
    start: float
    end: float | None
    silenced: bool  # a silence of its subject (and kind) overlapped it

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "severity": self.severity,
                "status": self.status, "message": self.message, "start": self.start,
                "end": self.end, "silenced": self.silenced}


@dataclass(frozen=True)
class SilenceSpan:
    kind: str | None  # None: every kind
    start: float
    end: float
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": self.start, "end": self.end, "reason": self.reason}


def silence_spans(silences: Iterable[Mapping[str, Any]], subject: str, since: float,
                  now: float) -> tuple[SilenceSpan, ...]:
    """The silences of ``subject`` (stored silences, expired ones included) overlapping
    [since, now], oldest first (not clipped: an alert that fired before ``since`` may have
    fired under one)."""
    found = [SilenceSpan(kind=s.get("kind"), start=float(s["starts_at"]),
                         end=float(s["ends_at"]), reason=s.get("reason"))
             for s in silences if s.get("model") == subject
             and float(s["ends_at"]) > since and float(s["starts_at"]) < now]
    return tuple(sorted(found, key=lambda s: s.start))


def alert_spans(alerts: Iterable[Mapping[str, Any]], silences: Sequence[SilenceSpan],
                since: float, parse_time: Callable[[str], float]) -> tuple[AlertSpan, ...]:
    """Alerts (``AlertEntry.to_dict()``) of one subject as spans, oldest first; those that ended
    before ``since`` are left out. ``parse_time`` reads their ISO times (``timefmt.from_iso``)."""
    out = []
    for a in alerts:
        if not a.get("fired_at"):
            continue
        start = float(parse_time(a["fired_at"]))
        end = float(parse_time(a["resolved_at"])) if a.get("resolved_at") else None
        if end is not None and end < since:
            continue
        kind = str(a.get("kind"))
        until = float("inf") if end is None else end
        silenced = any(s.kind in (None, kind) and s.start < until and s.end > start
                       for s in silences)
        out.append(AlertSpan(id=str(a.get("id")), kind=kind, severity=str(a.get("severity")),
                             status=str(a.get("status")), message=str(a.get("message") or ""),
                             start=start, end=end, silenced=silenced))
    return tuple(sorted(out, key=lambda s: s.start))
