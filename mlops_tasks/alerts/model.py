"""An alert, identified like Alertmanager's by its labels: (model, version, kind)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES = ("info", "warning", "critical")
KINDS = ("accuracy_below_threshold", "performance_degraded", "data_drift")


def severity_rank(severity: str | None) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


def fingerprint(model: str, version: str, kind: str) -> str:
    digest = hashlib.sha1(f"{model}|{version}|{kind}".encode(), usedforsecurity=False)
    return digest.hexdigest()[:16]


@dataclass
class Alert:
    model: str
    version: str
    kind: str
    severity: str
    message: str
    values: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    fired_at: str | None = None
    resolved_at: str | None = None
    status: str = "firing"
    last_notified_at: float | None = None
    notified_severity: str | None = None
    notifications: int = 0

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.model, self.version, self.kind)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fingerprint": self.fingerprint}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**fields)
