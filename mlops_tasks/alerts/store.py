"""Alert state in Redis, and the rules that keep notifications from flooding.

* A new alert is notified at once.
* A firing alert is notified again only after ``repeat_interval_s``, or at once if its severity
  rose (Alertmanager's ``repeat_interval``).
* A resolved alert is notified once, if it was ever notified.
* An alert matching an active silence is recorded but not notified.
* An event (an info notification: ``auto_tuning_applied``, ``config_updated``,
  ``cleanup_completed``) is never firing: :meth:`AlertStore.record_event` writes it to the
  history with status ``event``, counts it like a new alert and notifies it once, unless
  silenced. Its id comes from what happened (``model.event_id``), so the same occurrence
  recorded again (a retried job) is a ``duplicate``, recorded and notified once.

Every state change runs in a WATCH/MULTI transaction on the model's active-alerts hash (an
event's on its history), so two monitoring runs at once cannot both decide to notify.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import redis
from redis.client import Pipeline

from .. import keys
from ..errors import NotFoundError, ValidationError
from ..timefmt import iso
from .model import EVENT, EVENT_KINDS, FIRING, KINDS, RESOLVED, Alert, event_id, severity_rank
from .subjects import alert_subjects

HISTORY_CAP = 10_000
RECENT_HISTORY = 100  # events per model searched first for a resolved alert (then all of them)
NOTIFICATION_LOG_CAP = 10_000

T = TypeVar("T")


@dataclass(frozen=True)
class Decision:
    alert: Alert
    notify: bool
    reason: str  # new, repeat, escalated, resolved, suppressed, silenced; events: duplicate


class AlertStore:
    def __init__(self, client: redis.Redis, repeat_interval_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.redis = client
        self.repeat_interval_s = repeat_interval_s
        self.clock = clock

    # ------------------------------------------------------------------ firing / resolving
    def fire(self, candidate: Alert) -> Decision:
        if candidate.kind in EVENT_KINDS:
            raise ValueError(f"{candidate.kind} is an event, not a condition: record_event")
        key = keys.alerts_active(candidate.model)
        fp = candidate.fingerprint

        def tx(pipe: Pipeline) -> Decision:
            now = self.clock()
            raw = pipe.hget(key, fp)
            silenced = self.silenced(candidate.model, candidate.kind, now)
            if raw is None:
                alert = candidate
                alert.id = uuid.uuid4().hex[:12]
                alert.fired_at = iso(now)
                alert.status = FIRING
                reason = "new"
                notify = True
            else:
                alert = Alert.from_dict(json.loads(raw))
                escalated = severity_rank(candidate.severity) > severity_rank(
                    alert.notified_severity)
                alert.severity, alert.message = candidate.severity, candidate.message
                alert.values = candidate.values
                due = alert.last_notified_at is None or \
                    now - alert.last_notified_at >= self.repeat_interval_s
                notify = escalated or due
                reason = "escalated" if escalated else ("repeat" if due else "suppressed")
            if notify and silenced:
                notify, reason = False, "silenced"
            if notify:
                alert.last_notified_at = now
                alert.notified_severity = alert.severity
                alert.notifications += 1
            pipe.multi()
            pipe.hset(key, fp, json.dumps(alert.to_dict()))
            if raw is None:
                self._history(pipe, alert, "fired", now)
                pipe.hincrby(keys.alerts_fired(alert.model), f"{alert.kind}:{alert.severity}", 1)
            return Decision(alert, notify, reason)

        return self._transaction(tx, key)

    def resolve(self, model: str, version: str, kind: str) -> Decision | None:
        """Clear a firing alert; None when there was none."""
        key = keys.alerts_active(model)
        probe = Alert(model, version, kind, "info", "")

        def tx(pipe: Pipeline) -> Decision | None:
            raw = pipe.hget(key, probe.fingerprint)
            if raw is None:
                pipe.multi()
                return None
            now = self.clock()
            alert = Alert.from_dict(json.loads(raw))
            alert.status, alert.resolved_at = RESOLVED, iso(now)
            notify = alert.notified_severity is not None and \
                not self.silenced(model, kind, now)
            pipe.multi()
            pipe.hdel(key, probe.fingerprint)
            self._history(pipe, alert, "resolved", now)
            return Decision(alert, notify, "resolved" if notify else "silenced")

        return self._transaction(tx, key)

    def record_event(self, candidate: Alert, occurrence: str) -> Decision:
        """Record an event (a kind of ``EVENT_KINDS``) that happened now; ``occurrence`` names
        what happened (an audit entry's id, a revision, a run's time). Notify it unless it is
        silenced or this occurrence is already among the subject's recent history events."""
        if candidate.kind not in EVENT_KINDS:
            raise ValueError(f"{candidate.kind} is a condition, not an event: raise it")
        key = keys.alerts_history(candidate.model)
        alert = candidate
        alert.id = event_id(alert.model, alert.version, alert.kind, occurrence)
        needle = json.dumps(alert.id)  # how the id appears inside a stored event

        def tx(pipe: Pipeline) -> Decision:
            recent = pipe.lrange(key, 0, RECENT_HISTORY - 1)
            if any(needle in raw and json.loads(raw).get("id") == alert.id for raw in recent):
                pipe.multi()
                return Decision(alert, notify=False, reason="duplicate")
            now = self.clock()
            alert.fired_at = alert.resolved_at = iso(now)
            alert.status = EVENT
            notify = not self.silenced(alert.model, alert.kind, now)
            if notify:
                alert.last_notified_at = now
                alert.notified_severity = alert.severity
                alert.notifications = 1
            pipe.multi()
            self._history(pipe, alert, "occurred", now)
            pipe.hincrby(keys.alerts_fired(alert.model), f"{alert.kind}:{alert.severity}", 1)
            return Decision(alert, notify, "new" if notify else "silenced")

        return self._transaction(tx, key)

    def _transaction(self, tx: Callable[[Pipeline], T], key: str) -> T:
        """Run ``tx`` in a WATCH/MULTI transaction on ``key`` (again while the key changes under
        it) and return what it returned; redis-py's stub types ``tx`` as returning None."""
        run = cast("Callable[[Pipeline], None]", tx)
        return cast("T", self.redis.transaction(run, key, value_from_callable=True))

    def _history(self, pipe: Pipeline, alert: Alert, event: str, now: float) -> None:
        key = keys.alerts_history(alert.model)
        pipe.lpush(key, json.dumps({**alert.to_dict(), "event": event, "at": now}))
        pipe.ltrim(key, 0, HISTORY_CAP - 1)

    # ------------------------------------------------------------------ reading
    def active(self, models: list[str]) -> list[Alert]:
        pipe = self.redis.pipeline(transaction=False)
        for m in models:
            pipe.hvals(keys.alerts_active(m))
        return [Alert.from_dict(json.loads(x)) for vals in pipe.execute() for x in vals]

    def subjects(self) -> list[str]:
        """Every subject alerts may be stored under: the registered models and the system
        subjects (subjects.py)."""
        return alert_subjects(cast("set[str]", self.redis.smembers(keys.MODELS)))

    def find(self, alert_id: str, status: str) -> Alert | None:
        """The stored alert a webhook delivery names, as the receiver should see it now: for
        ``firing``, the alert still active with this id (None once it is resolved: its resolved
        notification follows); for ``resolved``, the alert as it was resolved, and for
        ``event``, the event as it was recorded, from the history. None for an id that was
        never stored."""
        subjects = self.subjects()
        if status == FIRING:
            return next((a for a in self.active(subjects) if a.id == alert_id), None)
        if status not in (RESOLVED, EVENT):
            return None
        needle = json.dumps(alert_id)  # how the id appears inside a stored event
        for limit in (RECENT_HISTORY, HISTORY_CAP):
            pipe = self.redis.pipeline(transaction=False)
            for m in subjects:
                pipe.lrange(keys.alerts_history(m), 0, limit - 1)
            for raw in (x for batch in pipe.execute() for x in batch if needle in x):
                event = json.loads(raw)
                if event.get("id") == alert_id and event.get("status") == status and \
                        event.get("event") in ("resolved", "occurred"):
                    return Alert.from_dict(event)
        return None

    def history(self, models: list[str], since: float = 0.0,
                limit: int = 1000) -> list[dict[str, Any]]:
        """Fired, resolved and occurred (events) history entries, newest first."""
        pipe = self.redis.pipeline(transaction=False)
        for m in models:
            pipe.lrange(keys.alerts_history(m), 0, limit - 1)
        events = [json.loads(x) for batch in pipe.execute() for x in batch]
        events = [e for e in events if e["at"] >= since]
        events.sort(key=lambda e: e["at"], reverse=True)
        return events[:limit]

    # ------------------------------------------------------------------ silences
    def add_silence(self, model: str, kind: str | None, duration_s: float, reason: str | None,
                    actor: str) -> dict[str, Any]:
        if kind is not None and kind not in KINDS:
            raise ValidationError(f"--kind: expected one of {', '.join(KINDS)}, got {kind!r}")
        now = self.clock()
        silence = {"id": uuid.uuid4().hex[:10], "model": model, "kind": kind,
                   "starts_at": now, "ends_at": now + duration_s, "reason": reason,
                   "created_by": actor, "created_at": iso(now), "until": iso(now + duration_s)}
        self.redis.hset(keys.SILENCES, silence["id"], json.dumps(silence))
        return silence

    def silences(self, include_expired: bool = False) -> list[dict[str, Any]]:
        now = self.clock()
        out = [json.loads(x) for x in self.redis.hvals(keys.SILENCES)]
        for s in out:
            s["active"] = s["ends_at"] > now
        if not include_expired:
            out = [s for s in out if s["active"]]
        return sorted(out, key=lambda s: s["ends_at"])

    def remove_silence(self, silence_id: str) -> dict[str, Any]:
        raw = self.redis.hget(keys.SILENCES, silence_id)
        if raw is None:
            raise NotFoundError(f"no silence {silence_id!r} (see `mlops silences`)")
        self.redis.hdel(keys.SILENCES, silence_id)
        silence: dict[str, Any] = json.loads(raw)
        return silence

    def silenced(self, model: str, kind: str, now: float | None = None) -> bool:
        now = self.clock() if now is None else now
        for raw in self.redis.hvals(keys.SILENCES):
            s = json.loads(raw)
            if s["model"] == model and s["kind"] in (None, kind) and \
                    s["starts_at"] <= now < s["ends_at"]:
                return True
        return False

    def expire_silences(self, ended_before: float, dry_run: bool = False) -> int:
        """Remove silences that ended before ``ended_before``; returns how many."""
        gone = [s["id"] for s in map(json.loads, self.redis.hvals(keys.SILENCES))
                if s["ends_at"] < ended_before]
        if gone and not dry_run:
            self.redis.hdel(keys.SILENCES, *gone)
        return len(gone)

    # ------------------------------------------------------------------ notification log
    def log_notification(self, entry: dict[str, Any]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.lpush(keys.NOTIFICATIONS, json.dumps({"at": self.clock(), **entry}))
        pipe.ltrim(keys.NOTIFICATIONS, 0, NOTIFICATION_LOG_CAP - 1)
        pipe.execute()

    def notifications(self, limit: int = 100) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.redis.lrange(keys.NOTIFICATIONS, 0, limit - 1)]


def firing_counts(client: redis.Redis,
                  subjects: Sequence[str]) -> dict[str, dict[tuple[str, str], int]]:
    """Per subject, the alerts firing now by (kind, severity), in one round trip; for the
    collector's ``mlops_alerts_firing`` (a client with or without decoded responses). Events
    are never firing, so never counted here."""
    pipe = client.pipeline(transaction=False)
    for s in subjects:
        pipe.hvals(keys.alerts_active(s))
    out: dict[str, dict[tuple[str, str], int]] = {}
    for s, values in zip(subjects, pipe.execute(), strict=True):
        counts: dict[tuple[str, str], int] = {}
        for raw in values:
            alert = json.loads(raw)
            label = (str(alert.get("kind")), str(alert.get("severity")))
            counts[label] = counts.get(label, 0) + 1
        out[s] = counts
    return out
