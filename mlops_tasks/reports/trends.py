"""Daily metrics of one model, or of every model, over a number of days
(`mlops performance-trends`)."""

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


@dataclass(frozen=True)
class AllTrends:
    """The trends of every registered model (`mlops performance-trends` without NAME)."""

    days: int
    models: tuple[PerformanceTrends, ...]  # by model name

    def to_dict(self) -> dict[str, Any]:
        return {"days": self.days, "models": [t.to_dict() for t in self.models]}


def all_performance_trends(svc: Services, days: int) -> AllTrends:
    """Daily metrics of every registered model's default version (production's, else latest)."""
    return AllTrends(days=days, models=tuple(performance_trends(svc, name, days)
                                             for name in svc.registry.model_names()))
