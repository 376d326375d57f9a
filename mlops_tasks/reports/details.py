"""One model version in detail: its windows, its last N outcomes and its daily history
(`mlops performance-details`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..timefmt import day
from .common import resolve_version

if TYPE_CHECKING:
    from ..services import Services


@dataclass(frozen=True)
class PerformanceDetails:
    name: str
    version: str
    windows: dict[str, dict[str, Any]]  # the standard windows plus last_<recent>
    daily: tuple[dict[str, Any], ...]  # {"day": YYYY-MM-DD, **metrics}, oldest first
    pending_labels: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "windows": self.windows,
                "daily": list(self.daily), "pending_labels": self.pending_labels}


def performance_details(svc: Services, name: str, version: str | None, recent: int,
                        days: int) -> PerformanceDetails:
    from ..windows import counter_metrics  # noqa: PLC0415 - numpy

    version = resolve_version(svc.registry, name, version)
    reader = svc.windows
    windows = reader.windows(name, version)
    windows[f"last_{recent}"] = reader.count_window(name, version, recent)
    daily = tuple({"day": day(start), **counter_metrics(c)}
                  for start, c in reader.daily(name, version, days))
    return PerformanceDetails(name=name, version=version, windows=windows, daily=daily,
                              pending_labels=reader.pending(name))
