"""Configuration changes from the audit trail, field by field (`mlops config diff`).

A change is an audit entry whose before or after is a configuration (register, update-config,
rollback-config, auto-tune); deploys and rollbacks name versions and are left to `audit-log`.
``field_changes`` is the pure rule: nested fields compared by dotted path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..timefmt import iso

if TYPE_CHECKING:
    from ..registry import Registry
    from ..registry.audit import AuditEntry

DEFAULT_LIMIT = 1000  # newest audit entries read per model


@dataclass(frozen=True)
class FieldChange:
    field: str  # dotted path: decision_threshold, tuning.step, params.window
    before: Any  # None when the field was added (a registration)
    after: Any  # None when the field was removed

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class ConfigChange:
    model: str
    version: str | None
    revision: int | None
    action: str
    actor: str
    approved_by: str | None
    reason: str | None
    at: str
    ts: float
    fields: tuple[FieldChange, ...]
    id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "revision": self.revision,
                "action": self.action, "actor": self.actor, "approved_by": self.approved_by,
                "reason": self.reason, "at": self.at, "ts": self.ts, "id": self.id,
                "changes": [f.to_dict() for f in self.fields]}


@dataclass(frozen=True)
class ConfigDiff:
    name: str | None  # None: every model
    since: str | None  # ISO time of the earliest change shown; None: no bound
    changes: tuple[ConfigChange, ...]  # newest first

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "since": self.since,
                "changes": [c.to_dict() for c in self.changes]}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, Mapping) or (prefix and not value):
        return {prefix: value} if prefix else {}
    out: dict[str, Any] = {}
    for key, inner in value.items():
        out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
    return out


def field_changes(before: Mapping[str, Any] | None,
                  after: Mapping[str, Any] | None) -> tuple[FieldChange, ...]:
    """The fields that differ between two configurations, by dotted path, sorted."""
    old, new = _flatten(before or {}), _flatten(after or {})
    return tuple(FieldChange(field=k, before=old.get(k), after=new.get(k))
                 for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k))


def _is_config_change(entry: AuditEntry) -> bool:
    return isinstance(entry.after, Mapping) or isinstance(entry.before, Mapping)


def config_diff(registry: Registry, name: str | None = None, since_ts: float | None = None,
                limit: int = DEFAULT_LIMIT) -> ConfigDiff:
    """Configuration changes of ``name`` (or every model) at or after ``since_ts``, newest
    first, each with before and after per changed field."""
    changes = tuple(
        ConfigChange(model=e.model, version=e.version, revision=e.revision, action=e.action,
                     actor=e.actor, approved_by=e.approved_by, reason=e.reason, at=e.at,
                     ts=e.ts, fields=field_changes(e.before, e.after), id=e.id)
        for e in registry.audit_log(name, limit)
        if _is_config_change(e) and (since_ts is None or e.ts >= since_ts))
    return ConfigDiff(name=name, since=None if since_ts is None else iso(since_ts, ms=True),
                      changes=changes)
