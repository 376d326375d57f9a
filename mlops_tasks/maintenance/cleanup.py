"""The daily cleanup: old performance data, expired pending labels, old dead letters and history.

Works in bounded batches (SCAN/HSCAN with a COUNT, UNLINK and trims of at most ``batch`` items
at a time), so it never holds Redis for long. It never touches the registry, the deployments or
the audit trail: only the key families listed in ``FAMILIES`` below are read or written.

Dead letters (the only place a client's ``metadata`` is kept) go sooner when
``MLOPS_DEAD_LETTER_RETENTION_DAYS`` is shorter than the run's ``older_than_s``: their cutoff is
the later of the two (``dead_letter_cutoff`` in the report).

With ``model``, only that model's keys are cleaned; the shared ones (the notification log,
silences, the alert history of the jobs and the registry, and the data of events no model
claimed) are left for a run over every model, and the report counts 0 for them.

A run that deleted (not a dry run) announces what it removed as the info event
``cleanup_completed`` (about the cleanup job): ``Registry Cleanup Completed: removed 120
aggregate buckets, 3 dead letters (older than 2024-05-01T00:00:00Z)``.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import keys
from ..alerts.model import NO_VERSION, Alert
from ..alerts.subjects import cleanup_subject, system_subjects
from ..ingest.increments import unpack_pending
from ..jobs import time_limit_reached
from ..lua_scripts import source
from ..results import Result
from ..services import Services
from ..timebuckets import DAY_S, HOUR, MINUTE
from ..timefmt import iso

log = logging.getLogger("mlops.maintenance")

FAMILIES = ("agg", "hist", "pending", "dead", "alerts:history", "tuning:history",
            "notifications", "silences")
_SIZE = {"m": MINUTE.size_s, "h": HOUR.size_s, "d": DAY_S}
EVENT_KIND = "cleanup_completed"


@dataclass(frozen=True)
class CleanupReport(Result):
    """What a cleanup deleted (or, in a dry run, would delete)."""

    cutoff: str  # older than this went
    dead_letter_cutoff: str  # dead letters older than this went (never before ``cutoff``)
    older_than_s: float
    dry_run: bool
    label_ttl_days: int  # pending predictions older than this expired
    models: int  # models cleaned
    model: str | None  # the one model cleaned, or None for every model
    deleted: dict[str, int]  # per family: aggregate_buckets, expired_pending_labels, ...
    duration_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"cutoff": self.cutoff, "dead_letter_cutoff": self.dead_letter_cutoff,
                "older_than_s": self.older_than_s,
                "dry_run": self.dry_run, "label_ttl_days": self.label_ttl_days,
                "models": self.models, "model": self.model, "deleted": dict(self.deleted),
                "duration_s": self.duration_s}


def _old_bucket(key: bytes, cutoff: float) -> bool:
    """An aggregate or histogram bucket is old when the whole bucket ends before the cutoff."""
    bucket = keys.bucket_of(key)
    if bucket is None:
        return False
    gran, start = bucket
    return start + _SIZE.get(gran, DAY_S) <= cutoff


def _trim_tail(svc: Services, key: str, is_old: Callable[[dict[str, Any]], bool],
               dry_run: bool, batch: int) -> int:
    """Remove old entries from the end of a newest-first JSON list; returns how many."""
    removed = 0
    offset = 0
    while True:
        tail = svc.redis.lrange(key, -(offset + batch), -(offset + 1))
        if not tail:
            return removed
        old = 0
        for raw in reversed(tail):
            try:
                entry = json.loads(raw)
            except ValueError:
                entry = {}
            if not is_old(entry):
                break
            old += 1
        if old == 0:
            return removed
        if dry_run:
            offset += old
        else:
            svc.redis.ltrim(key, 0, -(old + 1))
        removed += old
        if old < len(tail):
            return removed


def _scan_delete(svc: Services, pattern: str, cutoff: float, dry_run: bool,
                 batch: int) -> int:
    found = 0
    pending: list[bytes] = []
    for key in svc.raw.scan_iter(match=pattern, count=batch):
        if _old_bucket(key, cutoff):
            found += 1
            pending.append(key)
            if len(pending) >= batch and not dry_run:
                svc.raw.unlink(*pending)
                pending.clear()
    if pending and not dry_run:
        svc.raw.unlink(*pending)
    return found


def _expire_pending(svc: Services, model: str, older_than: float, dry_run: bool,
                    batch: int) -> int:
    """Predictions that waited longer than the label TTL: their labels will be orphans."""
    meta = keys.pending_meta(model).encode()
    expire = svc.raw.register_script(source("expire_pending.lua"))
    expired = 0
    for bucket in svc.raw.scan_iter(match=keys.pending_pattern(model), count=batch):
        if bucket == meta:
            continue
        fields: list[bytes] = []
        values: list[bytes] = []
        for field, value in svc.raw.hscan_iter(bucket, count=batch):
            fields.append(field)
            values.append(value)
        if not fields:
            continue
        times = unpack_pending(values)["time"]
        old = [f for f, t in zip(fields, times, strict=True) if t < older_than]
        for i in range(0, len(old), batch):
            chunk = old[i:i + batch]
            if dry_run:
                expired += len(chunk)
                continue
            expired += int(expire(
                keys=[bucket, keys.pending_meta(model), keys.counters(model)],
                args=[keys.F_PENDING_COUNT, keys.F_EXPIRED_PENDING, *chunk]))
    return expired


def cleanup(svc: Services, older_than_s: float, dry_run: bool = False,
            batch: int = 500, model: str | None = None) -> CleanupReport:
    """Delete what is older than ``older_than_s``: of every model, or only of ``model``."""
    if model is not None:
        svc.registry.meta(model)  # a registered model, or NotFoundError naming it
    now = svc.clock()
    cutoff = now - older_than_s
    letter_cutoff = now - min(older_than_s, svc.settings.dead_letter_retention_days * DAY_S)
    label_cutoff = now - svc.settings.label_ttl_days * DAY_S
    deleted: dict[str, int] = defaultdict(int)
    started = time.monotonic()
    models = [model] if model is not None else [*svc.registry.model_names(), keys.UNROUTED]
    iso_cutoff = iso(cutoff)
    for m in models:
        for pattern in (keys.agg_pattern(m), keys.hist_pattern(m)):
            deleted["aggregate_buckets"] += _scan_delete(svc, pattern, cutoff, dry_run, batch)
        if m != keys.UNROUTED:
            deleted["expired_pending_labels"] += _expire_pending(svc, m, label_cutoff, dry_run,
                                                                 batch)
        deleted["dead_letters"] += _trim_tail(
            svc, keys.dead_letters(m), lambda e: e.get("at", now) < letter_cutoff, dry_run,
            batch)
        deleted["alert_history"] += _trim_tail(
            svc, keys.alerts_history(m), lambda e: e.get("at", now) < cutoff, dry_run, batch)
        deleted["tuning_history"] += _trim_tail(
            svc, keys.tuning_history(m), lambda e: e.get("ran_at", "9") < iso_cutoff, dry_run,
            batch)
    if model is None:
        for subject in system_subjects():
            deleted["alert_history"] += _trim_tail(
                svc, keys.alerts_history(subject), lambda e: e.get("at", now) < cutoff,
                dry_run, batch)
        deleted["notifications"] += _trim_tail(
            svc, keys.NOTIFICATIONS, lambda e: e.get("at", now) < cutoff, dry_run, batch)
        deleted["silences"] = svc.alerts.store.expire_silences(cutoff, dry_run)
    else:
        deleted["notifications"] = deleted["silences"] = 0
    report = CleanupReport(
        cutoff=iso_cutoff, dead_letter_cutoff=iso(letter_cutoff), older_than_s=older_than_s,
        dry_run=dry_run,
        label_ttl_days=svc.settings.label_ttl_days,
        models=len([m for m in models if m != keys.UNROUTED]), model=model,
        deleted=dict(deleted), duration_s=round(time.monotonic() - started, 3))
    log.info("Registry cleanup completed" if not dry_run else "Registry cleanup dry run",
             extra={k: v for k, v in report.to_dict().items() if k != "models"})
    if not dry_run:
        try:
            svc.alerts.announce(completed_event(report), occurrence=f"{now}:{model or '*'}")
        except Exception as exc:  # the data is gone: a failed notification never fails the run
            if time_limit_reached(exc):
                raise
            log.exception("cleanup_completed notification failed")
    return report


def completed_message(report: CleanupReport) -> str:
    """``Registry Cleanup Completed: removed 120 aggregate buckets, 3 dead letters (older than
    ...)``, naming every family that lost something (pure)."""
    removed = ", ".join(f"{n} {family.replace('_', ' ')}"
                        for family, n in sorted(report.deleted.items()) if n)
    scope = f" of {report.model}" if report.model else ""
    return (f"Registry Cleanup Completed{scope}: removed {removed or 'nothing'} "
            f"(older than {report.cutoff})")


def completed_event(report: CleanupReport) -> Alert:
    return Alert(cleanup_subject(), NO_VERSION, EVENT_KIND, "info", completed_message(report),
                 {**report.deleted, "cutoff": report.cutoff,
                  "dead_letter_cutoff": report.dead_letter_cutoff, "model": report.model,
                  "models": report.models, "duration_s": report.duration_s})
