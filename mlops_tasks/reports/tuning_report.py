"""Auto-tuning over a period: runs, applications, average improvement and stagnation per
model (`mlops auto-tuning-report`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..tuning.stagnation import PERCENT

if TYPE_CHECKING:
    from ..services import Services


@dataclass(frozen=True)
class ModelTuning:
    name: str
    runs: int
    applied: int
    average_improvement_percent: float | None  # over the applied runs
    stagnant_runs: int
    stagnating: bool  # every measured run was stagnant
    reasons: dict[str, int]  # run reason -> runs, sorted by reason

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "runs": self.runs, "applied": self.applied,
                "average_improvement_percent": self.average_improvement_percent,
                "stagnant_runs": self.stagnant_runs, "stagnating": self.stagnating,
                "reasons": dict(self.reasons)}


@dataclass(frozen=True)
class TuningReport:
    period_s: float
    runs: int
    models: tuple[ModelTuning, ...]

    @property
    def applied(self) -> int:
        return sum(m.applied for m in self.models)

    def to_dict(self) -> dict[str, Any]:
        return {"period_s": self.period_s, "runs": self.runs, "applied": self.applied,
                "models": [m.to_dict() for m in self.models]}


def summarize(name: str, runs: Sequence[Mapping[str, Any]]) -> ModelTuning:
    """One model's runs (recorded tuning runs of any models; others are ignored) (pure)."""
    mine = [r for r in runs if r["model"] == name]
    applied = [r for r in mine if r["applied"]]
    measured = [r["improvement_percent"] for r in mine
                if r.get("improvement_percent") is not None and r["samples"] >= 1]
    return ModelTuning(
        name=name, runs=len(mine), applied=len(applied),
        average_improvement_percent=(sum(r["improvement_percent"] for r in applied)
                                     / len(applied)) if applied else None,
        stagnant_runs=sum(1 for v in measured if v < PERCENT),
        stagnating=bool(measured) and all(v < PERCENT for v in measured),
        reasons={reason: sum(1 for r in mine if r["reason"] == reason)
                 for reason in sorted({r["reason"] for r in mine})})


def tuning_report(svc: Services, since_s: float) -> TuningReport:
    """Every registered model's tuning runs of the last ``since_s`` seconds."""
    from ..tuning import engine  # noqa: PLC0415 - numpy

    names = svc.registry.model_names()
    runs = engine.history(svc, names, limit=100_000, since=svc.clock() - since_s)
    return TuningReport(period_s=since_s, runs=len(runs),
                        models=tuple(summarize(n, runs) for n in names))
