"""What to do next for each production model: tune, retrain, collect labels or widen the
tuning range (`mlops improvement-recommendations`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..services import Services

EDGE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Recommendation:
    action: str  # "collect more labels", "retrain", "widen the range", "tune" or "none"
    reason: str


def recommend(run: Mapping[str, Any], config: Mapping[str, Any], min_samples: int,
              min_improvement: float) -> Recommendation:
    """One recommendation from a dry-run tuning evaluation of the model's tuning window, as
    JSON (``Evaluation.to_dict()``; pure)."""
    t = config["tuning"]
    if run["samples"] < min_samples:
        return Recommendation("collect more labels",
                              f"{run['samples']} labeled predictions in the tuning window, "
                              f"{min_samples} needed")
    best_acc = run.get("best_accuracy")
    if best_acc is not None and best_acc < config["accuracy_threshold"]:
        return Recommendation("retrain",
                              f"even the best threshold gives accuracy {best_acc:.2%}, under "
                              f"the alert threshold {config['accuracy_threshold']:.2%}")
    best = run["best_threshold"]
    edge_low = best is not None and abs(best - t["min"]) < EDGE_TOLERANCE and t["min"] > 0
    edge_high = best is not None and abs(best - t["max"]) < EDGE_TOLERANCE and t["max"] < 1
    if edge_low or edge_high:
        side = "down" if edge_low else "up"
        return Recommendation("widen the range",
                              f"the best threshold {best:g} sits on the edge of "
                              f"{t['min']:g}-{t['max']:g}; extend it {side}")
    if run["improvement_percent"] is not None and run["improvement_percent"] > min_improvement:
        return Recommendation("tune",
                              f"{t['metric']} would improve {run['improvement_percent']:+.1f}% "
                              f"at {best:g} (now {run['current_threshold']:g})")
    return Recommendation("none", "the current threshold is at or near the best of the grid")


@dataclass(frozen=True)
class ModelRecommendation:
    name: str
    version: str
    recommendation: Recommendation
    samples: int
    current_threshold: float | None
    best_threshold: float | None
    improvement_percent: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version,
                "recommendation": self.recommendation.action,
                "reason": self.recommendation.reason, "samples": self.samples,
                "current_threshold": self.current_threshold,
                "best_threshold": self.best_threshold,
                "improvement_percent": self.improvement_percent}


@dataclass(frozen=True)
class Recommendations:
    models: tuple[ModelRecommendation, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"models": [m.to_dict() for m in self.models]}


def improvement_recommendations(svc: Services) -> Recommendations:
    """A dry-run tuning evaluation of every production model, and what it recommends."""
    from ..monitoring.targets import targets  # noqa: PLC0415 - numpy
    from ..tuning import engine  # noqa: PLC0415 - numpy

    s = svc.settings
    out = []
    for t in targets(svc.registry):
        ev = engine.tune(svc, t, dry_run=True).evaluation
        out.append(ModelRecommendation(
            name=t.name, version=t.version,
            recommendation=recommend(ev.to_dict(), t.config, s.tuning_min_samples,
                                     s.tuning_min_improvement),
            samples=ev.samples, current_threshold=ev.current_threshold,
            best_threshold=ev.best_threshold, improvement_percent=ev.improvement_percent))
    return Recommendations(tuple(out))
