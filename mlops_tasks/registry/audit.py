"""An audit entry: who changed what in the registry, when, and what it was before.

Each change appends one entry to the model's audit stream (``keys.audit``) in the same
transaction as the change, as the JSON of ``to_dict()`` in the ``entry`` field. `mlops audit-log`
reads them back with their stream id. ``actor`` is who the caller says it is; ``redis_user`` is
the Redis ACL user whose credentials made the change, as Redis reports it (``ACL WHOAMI``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from ..results import Result, with_optional
from ..timefmt import iso


@dataclass(frozen=True)
class AuditEntry(Result):
    at: str  # ISO time with milliseconds
    ts: float  # the same, in seconds since the epoch
    action: str  # register, update-config, rollback-config, auto-tune, deploy, rollback
    model: str
    actor: str
    version: str | None
    env: str | None  # deploys and rollbacks
    revision: int | None  # the configuration revision written or deployed
    before: Any  # the configuration before (config changes) or the version (deploys)
    after: Any
    approved_by: str | None
    reason: str | None
    id: str | None = None  # "<model>/<stream id>", once read back
    redis_user: str | None = None  # the Redis ACL user that wrote it (ACL WHOAMI); None: no ACL

    @classmethod
    def of(cls, *, action: str, model: str, actor: str, at: float, version: str | None = None,
           env: str | None = None, revision: int | None = None, before: Any = None,
           after: Any = None, approved_by: str | None = None,
           reason: str | None = None) -> AuditEntry:
        """The entry of a change made at ``at`` (seconds since the epoch)."""
        return cls(at=iso(at, ms=True), ts=at, action=action, model=model, actor=actor,
                   version=version, env=env, revision=revision, before=before, after=after,
                   approved_by=approved_by, reason=reason)

    @classmethod
    def from_stream(cls, model: str, stream_id: str, doc: Mapping[str, Any]) -> AuditEntry:
        """An entry as stored in ``model``'s stream; a field an older entry lacks is None."""
        given: dict[str, Any] = {f.name: doc.get(f.name) for f in fields(cls) if f.name != "id"}
        given["model"] = doc.get("model", model)
        return cls(**given).with_id(stream_id)

    def with_id(self, stream_id: str) -> AuditEntry:
        return replace(self, id=f"{self.model}/{stream_id}")

    def to_dict(self) -> dict[str, Any]:
        """As stored (without ``id``) and as `mlops audit-log --json` prints it (with it)."""
        return with_optional(
            {"at": self.at, "ts": self.ts, "action": self.action, "model": self.model,
             "actor": self.actor, "version": self.version, "env": self.env,
             "revision": self.revision, "before": self.before, "after": self.after,
             "approved_by": self.approved_by, "reason": self.reason},
            redis_user=self.redis_user, id=self.id)
