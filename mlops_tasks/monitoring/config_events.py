"""``config_updated``: every configuration change of a model, announced from the audit trail.

The registry appends an audit entry in the same transaction as each change, whoever made it
(`mlops update-config`, `rollback-config`, the auto-tuner, any other program using the
``Registry``), so the audit stream is the one complete record of changes and of their actor.
Each check reads the entries after the model's cursor (:func:`cursor_key`) and announces each
configuration change (an entry whose before and after are both configurations: update-config,
rollback-config, auto-tune; registrations and deploys are not changes of a configuration) as an
info event whose occurrence is the entry's id: an entry announced twice (a run that stopped
between announcing and moving the cursor) is recorded once. Without a cursor (the first check),
the changes of the last :data:`FIRST_LOOKBACK_S` are announced.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

from .. import keys
from ..alerts.model import NO_VERSION, Alert
from ..registry.audit import AuditEntry
from ..reports.config_diff import FieldChange, field_changes
from ..services import Services

KIND = "config_updated"
BATCH = 100  # audit entries read per model and check; the rest are read by the next check
FIRST_LOOKBACK_S = 3600.0
SHOWN_FIELDS = 3  # changed fields named in the message

Stream = list[tuple[str, dict[str, str]]]  # XRANGE's reply: (stream id, fields)


def cursor_key(name: str) -> str:
    """STRING: the id of the last audit entry of ``name`` announced."""
    return keys.alerts_audit_cursor(name)


def is_config_change(entry: AuditEntry) -> bool:
    return isinstance(entry.before, Mapping) and isinstance(entry.after, Mapping)


def _value(v: Any) -> str:
    return json.dumps(v) if isinstance(v, (dict, list, str)) else str(v)


def message(display_name: str, entry: AuditEntry, changes: tuple[FieldChange, ...]) -> str:
    """``N+1 Detector Configuration Updated by alice: decision_threshold 0.6 -> 0.7
    (update-config, revision 3)`` (pure)."""
    shown = ", ".join(f"{c.field} {_value(c.before)} -> {_value(c.after)}"
                      for c in changes[:SHOWN_FIELDS])
    more = f" and {len(changes) - SHOWN_FIELDS} more" if len(changes) > SHOWN_FIELDS else ""
    return (f"{display_name} Configuration Updated by {entry.actor}: {shown or 'no field'}"
            f"{more} ({entry.action}, revision {entry.revision})")


def event(display_name: str, entry: AuditEntry) -> Alert:
    changes = field_changes(entry.before, entry.after)
    return Alert(entry.model, entry.version or NO_VERSION, KIND, "info",
                 message(display_name, entry, changes),
                 {"actor": entry.actor, "action": entry.action, "revision": entry.revision,
                  "approved_by": entry.approved_by, "reason": entry.reason, "at": entry.at,
                  "audit_id": entry.id, "changes": [c.to_dict() for c in changes]})


def _entries(svc: Services, name: str,
             cursor: str | None) -> tuple[list[AuditEntry], str | None]:
    """The entries to announce, oldest first, and the stream id the cursor moves to (None: it
    stays): those after the cursor, or without one, those of the last FIRST_LOOKBACK_S."""
    if cursor is not None:
        stream = cast("Stream", svc.redis.xrange(keys.audit(name), min=f"({cursor}",
                                                 count=BATCH))
    else:
        stream = cast("Stream", svc.redis.xrevrange(keys.audit(name), count=BATCH))[::-1]
    entries = [AuditEntry.from_stream(name, i, json.loads(f["entry"])) for i, f in stream]
    if cursor is None:
        since = svc.clock() - FIRST_LOOKBACK_S
        entries = [e for e in entries if e.ts >= since]
    return entries, stream[-1][0] if stream else None


def announce_config_changes(svc: Services) -> int:
    """Announce every model's configuration changes since the last check; returns how many
    were announced (notified or silenced)."""
    announced = 0
    for name in svc.registry.model_names():
        cursor = cast("str | None", svc.redis.get(cursor_key(name)))
        entries, last = _entries(svc, name, cursor)
        changes = [e for e in entries if is_config_change(e)]
        if changes:
            display = svc.registry.meta(name).get("display_name", name)
            for entry in changes:
                svc.alerts.announce(event(display, entry), occurrence=str(entry.id))
            announced += len(changes)
        if last is not None:
            svc.redis.set(cursor_key(name), last)
    return announced
