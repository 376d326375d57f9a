"""Label health of a model version: coverage, label delays, orphans and predictions still
waiting for a label (`mlops validate-ground-truth`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import keys
from .common import resolve_version

if TYPE_CHECKING:
    from ..services import Services

COVERAGE_WINDOWS = (("last_hour", 3600), ("last_day", 86400))


@dataclass(frozen=True)
class Coverage:
    predictions: int
    labeled: int

    @property
    def coverage(self) -> float | None:
        return self.labeled / self.predictions if self.predictions else None

    def to_dict(self) -> dict[str, Any]:
        return {"predictions": self.predictions, "labeled": self.labeled,
                "coverage": self.coverage}


@dataclass(frozen=True)
class LabelDelay:
    delayed_labels: int
    p50: float | None  # seconds
    p95: float | None
    p99: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"delayed_labels": self.delayed_labels, "p50": self.p50, "p95": self.p95,
                "p99": self.p99}


@dataclass(frozen=True)
class GroundTruthReport:
    name: str
    version: str
    coverage: dict[str, Coverage]  # last_hour, last_day, since_deployment
    label_delay_s: LabelDelay
    pending_labels: int
    orphan_labels: int
    labels_joined: int
    duplicate_ids: int
    label_ttl_days: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version,
                "coverage": {k: v.to_dict() for k, v in self.coverage.items()},
                "label_delay_s": self.label_delay_s.to_dict(),
                "pending_labels": self.pending_labels, "orphan_labels": self.orphan_labels,
                "labels_joined": self.labels_joined, "duplicate_ids": self.duplicate_ids,
                "label_ttl_days": self.label_ttl_days}


def validate_ground_truth(svc: Services, name: str,
                          version: str | None = None) -> GroundTruthReport:
    from ..windows import delay_quantiles  # noqa: PLC0415 - numpy

    version = resolve_version(svc.registry, name, version)
    reader = svc.windows
    totals = reader.totals(name, version)
    counters = reader.counters(name)
    coverage = {}
    for label, window_s in COVERAGE_WINDOWS:
        c = reader.time_window(name, version, window_s, with_hist=False).counts
        coverage[label] = Coverage(int(c.get("n", 0)), int(c.get("labeled", 0)))
    coverage["since_deployment"] = Coverage(int(totals.get("n", 0)),
                                            int(totals.get("labeled", 0)))
    p50, p95, p99 = delay_quantiles(totals, (0.5, 0.95, 0.99))
    return GroundTruthReport(
        name=name, version=version, coverage=coverage,
        label_delay_s=LabelDelay(int(totals.get("delayed", 0)), p50, p95, p99),
        pending_labels=reader.pending(name),
        orphan_labels=counters.get(keys.F_ORPHAN_LABELS, 0),
        labels_joined=counters.get(keys.F_LABELS_JOINED, 0),
        duplicate_ids=counters.get(keys.F_DUPLICATE_IDS, 0),
        label_ttl_days=svc.settings.label_ttl_days)
