"""What the tuning engine returns: the grid evaluation, one model's run, one run of the job.

``TuningRun.to_dict()`` is a run as `mlops run tuning --wait` prints it and as the tuning
history keeps it (``keys.tuning_history``; `mlops auto-tuning-history` prints the stored JSON).
Pure data: importing this module loads no numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..results import Result, pair, with_optional


@dataclass(frozen=True)
class GridPoint(Result):
    """One threshold of the grid; a metric with a zero denominator is None."""

    threshold: float
    precision: float | None
    recall: float | None
    f1: float | None
    accuracy: float | None
    score: float | None  # of the tuning metric

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "precision": self.precision,
                "recall": self.recall, "f1": self.f1, "accuracy": self.accuracy,
                "score": self.score}


@dataclass(frozen=True)
class Evaluation(Result):
    """Every grid threshold and the current one scored on the tuning window."""

    metric: str
    current_threshold: float
    current_score: float | None
    best_threshold: float | None  # None when no threshold has a defined score
    best_score: float | None
    improvement_percent: float | None  # None when infinite (the current score is 0)
    improvement_raw: float | None  # possibly infinite: what the decision compares
    samples: int
    grid: tuple[GridPoint, ...]
    best_accuracy: float | None

    def to_dict(self) -> dict[str, Any]:
        """As a run shows it (without ``improvement_raw``, which JSON cannot hold)."""
        return {"metric": self.metric, "current_threshold": self.current_threshold,
                "current_score": self.current_score, "best_threshold": self.best_threshold,
                "best_score": self.best_score, "improvement_percent": self.improvement_percent,
                "samples": self.samples, "grid": [p.to_dict() for p in self.grid],
                "best_accuracy": self.best_accuracy}


@dataclass(frozen=True)
class TuningRun(Result):
    """One model version's tuning run, applied or not, and why."""

    model: str
    version: str
    parameter: str
    window_s: int
    evaluation: Evaluation
    improvement_ci95: tuple[float, float] | None  # bootstrap, when significance was tested
    applied: bool
    reason: str  # "applied", or why not: insufficient_data, cooldown, dry_run, ...
    ran_at: str
    dry_run: bool
    revision: int | None = None  # the configuration revision written, when applied

    def to_dict(self) -> dict[str, Any]:
        return with_optional(
            {"model": self.model, "version": self.version, "parameter": self.parameter,
             "window_s": self.window_s, **self.evaluation.to_dict(),
             "improvement_ci95": pair(self.improvement_ci95), "applied": self.applied,
             "reason": self.reason, "ran_at": self.ran_at, "dry_run": self.dry_run},
            revision=self.revision)


@dataclass(frozen=True)
class TuningSkipped(Result):
    """A model not tuned: another run held it (``already_running``) or the run failed
    (``failed: <error>``). Never applied, never kept in the history."""

    model: str
    version: str
    reason: str
    ran_at: str

    @property
    def applied(self) -> bool:
        return False

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "applied": False,
                "reason": self.reason, "ran_at": self.ran_at}


@dataclass(frozen=True)
class TuningResult(Result):
    """A run of the auto-tuning job."""

    runs: tuple[TuningRun | TuningSkipped, ...]

    @property
    def applied(self) -> int:
        return sum(1 for r in self.runs if r.applied)

    def to_dict(self) -> dict[str, Any]:
        return {"job": "tuning", "runs": [r.to_dict() for r in self.runs]}
