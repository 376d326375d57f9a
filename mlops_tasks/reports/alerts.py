"""Alert listings: the alerts still firing plus those fired, resolved or announced (events) in a
period, of the models and of the system subjects (the scheduled jobs, the registry)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from ..alerts.subjects import alert_subjects, check_subject

if TYPE_CHECKING:
    from ..services import Services

DEFAULT_SINCE_S = 86400.0
HISTORY_LIMIT = 10_000  # history events read (alerts.store.HISTORY_CAP keeps as many per subject)


@dataclass(frozen=True)
class AlertEntry:
    """One alert as listed by `mlops alerts` and the reports."""

    id: str
    model: str
    version: str
    kind: str
    severity: str
    status: str
    message: str
    values: dict[str, Any]
    fired_at: str | None
    resolved_at: str | None
    notifications: int | None
    fingerprint: str | None

    @classmethod
    def from_mapping(cls, a: Mapping[str, Any]) -> AlertEntry:
        """From a stored alert or history event; a missing field is None."""
        given: dict[str, Any] = {f.name: a.get(f.name) for f in fields(cls)}
        return cls(**given)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def alert_listing(svc: Services, model: str | None = None, since_s: float | None = None,
                  active_only: bool = False,
                  limit: int = HISTORY_LIMIT) -> tuple[AlertEntry, ...]:
    """Active alerts of every model and system subject (or of ``model``, either), plus, unless
    ``active_only``, those fired, resolved or announced in the last ``since_s`` seconds
    (default a day), out of the newest ``limit`` history events of those subjects; newest
    first. An alert that fired and was resolved in the period is listed once, as resolved; an
    event is listed with status ``event``."""
    if model:
        check_subject(svc.registry, model)  # NotFoundError for an unknown name
    names = [model] if model else alert_subjects(svc.registry.model_names())
    store = svc.alerts.store
    alerts: dict[str, dict[str, Any]] = {a.id: a.to_dict() for a in store.active(names)}
    if not active_only:
        since = svc.clock() - (since_s or DEFAULT_SINCE_S)
        for event in reversed(store.history(names, since=since, limit=limit)):
            if event["id"] not in alerts or event["event"] == "resolved":
                alerts[event["id"]] = {k: v for k, v in event.items() if k not in ("event", "at")}
    newest_first = sorted(alerts.values(), key=lambda a: a.get("fired_at") or "", reverse=True)
    return tuple(AlertEntry.from_mapping(a) for a in newest_first)
