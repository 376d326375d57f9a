"""The last 24 hours of every model: metrics, alerts and monitoring status
(`mlops daily-summary`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..timefmt import iso
from .alerts import AlertEntry, alert_listing

if TYPE_CHECKING:
    from ..services import Services

DAY_S = 86400


@dataclass(frozen=True)
class ModelDay:
    name: str
    version: str
    last_24h: dict[str, Any]  # window metrics (windows.counter_metrics)
    alerts: tuple[AlertEntry, ...]
    monitoring_status: str | None  # of the last monitoring run
    pending_labels: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "last_24h": self.last_24h,
                "alerts": [a.to_dict() for a in self.alerts],
                "monitoring_status": self.monitoring_status,
                "pending_labels": self.pending_labels}


@dataclass(frozen=True)
class DailySummary:
    generated_at: float
    models: tuple[ModelDay, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"generated_at": iso(self.generated_at),
                "models": [m.to_dict() for m in self.models]}


def daily_summary(svc: Services) -> DailySummary:
    """Every registered model's version (production's, else the latest) over the last day."""
    from ..monitoring.performance import last_results  # noqa: PLC0415 - scipy
    from ..windows import counter_metrics  # noqa: PLC0415 - numpy

    reg, reader = svc.registry, svc.windows
    names = reg.model_names()
    statuses = last_results(svc, names)
    fired = alert_listing(svc, None, DAY_S)
    models = []
    for n in names:
        version = reg.default_version(n)
        day = reader.time_window(n, version, DAY_S, with_hist=False).counts
        models.append(ModelDay(name=n, version=version, last_24h=counter_metrics(day),
                               alerts=tuple(a for a in fired if a.model == n),
                               monitoring_status=statuses.get(n, {}).get("status"),
                               pending_labels=reader.pending(n)))
    return DailySummary(generated_at=svc.clock(), models=tuple(models))
