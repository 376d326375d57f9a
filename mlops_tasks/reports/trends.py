"""Daily metrics of one model over a number of days (`mlops performance-trends`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..timefmt import day

if TYPE_CHECKING:
    from ..services import Services

RATES = ("accuracy", "precision", "recall", "f1", "false_positive_rate")
SERIES = ("day", "predictions", "labeled", *RATES)


@dataclass(frozen=True)
class TrendPoint:
    day: str
    predictions: int
    labeled: int
    accuracy: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    false_positive_rate: float | None


@dataclass(frozen=True)
class PerformanceTrends:
    name: str
    version: str
    days: int
    points: tuple[TrendPoint, ...]  # oldest first, one per day

    def series(self) -> dict[str, list[Any]]:
        """One list per metric, as the JSON document holds them."""
        return {k: [getattr(p, k) for p in self.points] for k in SERIES}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "days": self.days,
                "series": self.series()}


def performance_trends(svc: Services, name: str, days: int,
                       version: str | None = None) -> PerformanceTrends:
    """Daily metrics of ``version`` (default production's, else the latest), oldest first."""
    from ..windows import counter_metrics  # noqa: PLC0415 - numpy

    version = version or svc.registry.default_version(name)
    points = []
    for start, counts in svc.windows.daily(name, version, days):
        m = counter_metrics(counts)
        points.append(TrendPoint(day=day(start), predictions=m["predictions"],
                                 labeled=m["count"], **{k: m[k] for k in RATES}))
    return PerformanceTrends(name=name, version=version, days=days, points=tuple(points))
