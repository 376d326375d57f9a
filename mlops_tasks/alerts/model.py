"""An alert, identified like Alertmanager's by its labels: (model, version, kind).

Every kind is declared once in :data:`KIND_SPECS`: what its ``model`` field names (a model, a
scheduled job, or the registry) and whether it is a *condition* (it fires, is notified again
after the repeat interval while it holds, and resolves) or an *event* (an info notification:
recorded and notified once, never firing; see ``AlertStore.record_event``).

For an alert that is not about a model, ``model`` holds its subject (a job name such as
``ml-auto-tuning``, or ``registry``; see subjects.py) and ``version`` holds :data:`NO_VERSION`.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES = ("info", "warning", "critical")

# what an alert's status says: a condition is firing, then resolved; an event only happened
FIRING = "firing"
RESOLVED = "resolved"
EVENT = "event"
STATUSES = (FIRING, RESOLVED, EVENT)

NO_VERSION = "-"  # the version of an alert that is not about a model version

# what the ``model`` field of a kind's alerts names
ABOUT_MODEL = "model"
ABOUT_JOB = "job"
ABOUT_REGISTRY = "registry"


@dataclass(frozen=True)
class KindSpec:
    name: str
    about: str  # ABOUT_MODEL, ABOUT_JOB or ABOUT_REGISTRY
    event: bool = False  # an info notification (an event), not a condition


KIND_SPECS: tuple[KindSpec, ...] = (
    KindSpec("accuracy_below_threshold", ABOUT_MODEL),
    KindSpec("performance_degraded", ABOUT_MODEL),
    KindSpec("data_drift", ABOUT_MODEL),
    KindSpec("tuning_stagnation", ABOUT_MODEL),
    KindSpec("scheduler_job_failing", ABOUT_JOB),
    KindSpec("registry_cache_miss_rate", ABOUT_REGISTRY),
    KindSpec("auto_tuning_applied", ABOUT_MODEL, event=True),
    KindSpec("config_updated", ABOUT_MODEL, event=True),
    KindSpec("cleanup_completed", ABOUT_JOB, event=True),
)
KINDS = tuple(k.name for k in KIND_SPECS)
EVENT_KINDS = tuple(k.name for k in KIND_SPECS if k.event)
SPEC = {k.name: k for k in KIND_SPECS}


def severity_rank(severity: str | None) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


def fingerprint(model: str, version: str, kind: str) -> str:
    digest = hashlib.sha1(f"{model}|{version}|{kind}".encode(), usedforsecurity=False)
    return digest.hexdigest()[:16]


def event_id(model: str, version: str, kind: str, occurrence: str) -> str:
    """The id of an event: the same occurrence of the same event always gets the same id, so
    recording it twice (a retried job) is recognised as a duplicate."""
    digest = hashlib.sha1(f"{fingerprint(model, version, kind)}|{occurrence}".encode(),
                          usedforsecurity=False)
    return digest.hexdigest()[:12]


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
    status: str = FIRING
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
