"""Two versions side by side, with a two-sided test of their accuracy difference
(`mlops compare-versions`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..services import Services


@dataclass(frozen=True)
class AccuracyDifference:
    test: str | None  # "z-test" or "fisher-exact"; None when a version has no labeled data
    p_value: float | None  # two-sided
    better: str | None  # the version with the higher accuracy

    def to_dict(self) -> dict[str, Any]:
        if self.test is None:
            return {"test": None, "p_value": None}
        return {"test": self.test, "p_value": self.p_value, "better": self.better}


@dataclass(frozen=True)
class VersionComparison:
    name: str
    metrics: dict[str, dict[str, Any]]  # version -> metrics since its first event
    accuracy_difference: AccuracyDifference

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "versions": dict(self.metrics),
                "accuracy_difference": self.accuracy_difference.to_dict()}


def accuracy_difference(v1: str, correct1: int, n1: int, v2: str, correct2: int,
                        n2: int) -> AccuracyDifference:
    """Two-sided test of equal accuracy: twice the smaller of the two one-sided p-values
    (``stats.drop_test``: Fisher's exact test for small expected cells, else the z-test)."""
    if not n1 or not n2:
        return AccuracyDifference(None, None, None)
    from ..stats import drop_test  # noqa: PLC0415 - scipy is slow to import

    lower = drop_test(correct1, n1, correct2, n2)  # H1: v2 worse
    higher = drop_test(correct2, n2, correct1, n1)  # H1: v2 better
    return AccuracyDifference(test=lower.method,
                              p_value=min(1.0, 2 * min(lower.p_value, higher.p_value)),
                              better=v2 if higher.p_value < lower.p_value else v1)


def compare_versions(svc: Services, name: str, v1: str, v2: str) -> VersionComparison:
    """Each version's metrics since its first event, and the test of the difference."""
    from ..windows import counter_metrics  # noqa: PLC0415 - numpy

    metrics = {}
    for v in (v1, v2):
        svc.registry.current(name, v)  # raises NotFoundError for an unknown version
        metrics[v] = counter_metrics(svc.windows.totals(name, v))
    a, b = metrics[v1], metrics[v2]
    diff = accuracy_difference(v1, a["tp"] + a["tn"], a["count"], v2, b["tp"] + b["tn"],
                               b["count"])
    return VersionComparison(name=name, metrics=metrics, accuracy_difference=diff)
