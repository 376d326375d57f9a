"""Degradation and drift incidents over a period (`mlops degradation-report`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .alerts import AlertEntry, alert_listing

if TYPE_CHECKING:
    from ..services import Services


@dataclass(frozen=True)
class DegradationReport:
    period_s: float
    incidents: tuple[AlertEntry, ...]  # newest first

    @property
    def by_model(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for a in self.incidents:
            out[a.model] = out.get(a.model, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"period_s": self.period_s, "incidents": [a.to_dict() for a in self.incidents],
                "by_model": self.by_model}


def degradation_report(svc: Services, since_s: float) -> DegradationReport:
    """Degradation and drift alerts still firing or fired or resolved in the period."""
    from ..monitoring.degradation import DRIFT_KIND, KIND  # noqa: PLC0415 - scipy

    incidents = tuple(a for a in alert_listing(svc, None, since_s)
                      if a.kind in (KIND, DRIFT_KIND))
    return DegradationReport(period_s=since_s, incidents=incidents)
