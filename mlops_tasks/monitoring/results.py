"""What the monitoring and degradation jobs return, per model and per run.

Each ``to_dict()`` is the JSON `mlops check-degradation --json`, `mlops verify-degradation
--json`, `mlops run monitoring|degradation --wait` and the Celery tasks print, and what each
model's last result holds in Redis (``keys.monitor_status``, ``keys.degradation_status``).
A key that only some results carry (``reason``, ``alert``, ``checked_at``) is left out when
it does not apply. Pure data: importing this module loads neither numpy nor scipy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..results import Result, pair, with_optional


@dataclass(frozen=True)
class NotChecked(Result):
    """A model a job did not check: ``already_running`` (another run holds its lock),
    ``failed`` (its check raised) or ``no_baseline`` (degradation: the baseline is still
    being collected)."""

    name: str
    version: str
    status: str
    reason: str
    checked_at: str | None = None

    def checked(self, at: str) -> NotChecked:
        return replace(self, checked_at=at)

    def to_dict(self) -> dict[str, Any]:
        return with_optional({"name": self.name, "version": self.version,
                              "status": self.status, "reason": self.reason},
                             checked_at=self.checked_at)


@dataclass(frozen=True)
class AlertRaised(Result):
    """The alert a check raised: its id, whether it was sent now and, for the accuracy check,
    why (new, repeat, escalated, suppressed, silenced)."""

    id: str
    notified: bool
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return with_optional({"id": self.id, "notified": self.notified}, reason=self.reason)


# --------------------------------------------------------------------------- monitoring
@dataclass(frozen=True)
class WindowAccuracy(Result):
    count: int  # labeled predictions in the window
    accuracy: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "accuracy": self.accuracy}


@dataclass(frozen=True)
class AccuracyCheck(Result):
    """One production model's accuracy against its alert threshold."""

    name: str
    version: str
    window: str  # the window judged (MLOPS_MONITORING_WINDOW)
    labeled: int
    accuracy: float | None
    accuracy_threshold: float
    windows: Mapping[str, WindowAccuracy]  # every window, for context
    status: str  # "monitored", "alerting", "insufficient_data" or "disabled"
    reason: str | None = None  # why the data is insufficient
    alert: AlertRaised | None = None  # when alerting
    checked_at: str | None = None

    def checked(self, at: str) -> AccuracyCheck:
        return replace(self, checked_at=at)

    def to_dict(self) -> dict[str, Any]:
        return with_optional(
            {"name": self.name, "version": self.version, "window": self.window,
             "labeled": self.labeled, "accuracy": self.accuracy,
             "accuracy_threshold": self.accuracy_threshold,
             "windows": {k: w.to_dict() for k, w in self.windows.items()},
             "status": self.status},
            reason=self.reason, alert=self.alert.to_dict() if self.alert else None,
            checked_at=self.checked_at)


@dataclass(frozen=True)
class MonitoringResult(Result):
    """A run of the performance-monitoring job."""

    ran_at: str
    models: tuple[AccuracyCheck | NotChecked, ...]

    @property
    def alerting(self) -> int:
        return sum(m.status == "alerting" for m in self.models)

    def to_dict(self) -> dict[str, Any]:
        return {"job": "monitoring", "ran_at": self.ran_at,
                "models": [m.to_dict() for m in self.models]}


# --------------------------------------------------------------------------- degradation
@dataclass(frozen=True)
class BaselineSummary(Result):
    """What a check shows of the version's baseline (the stored baseline holds more)."""

    labeled: int
    accuracy: float | None
    f1: float | None
    source: str  # "auto" (the first labeled predictions after deployment) or "manual"
    window: str

    def to_dict(self) -> dict[str, Any]:
        return {"labeled": self.labeled, "accuracy": self.accuracy, "f1": self.f1,
                "source": self.source, "window": self.window}


@dataclass(frozen=True)
class CurrentWindow(Result):
    """The degradation window's labeled predictions."""

    labeled: int
    accuracy: float | None
    f1: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"labeled": self.labeled, "accuracy": self.accuracy, "f1": self.f1}


@dataclass(frozen=True)
class Drift(Result):
    """Score drift between the baseline and the window with the strongest evidence (see
    monitoring/detectors.py); ``reason`` says why the scores were not compared (then the
    statistics are None)."""

    drifted: bool
    ks_statistic: float | None = None
    p_value: float | None = None
    alpha: float | None = None  # the level each window's test is held to
    window_checks: int | None = None
    window_scores: int | None = None
    baseline_scores: int | None = None
    reason: str | None = None

    @property
    def compared(self) -> bool:
        return self.reason is None

    def to_dict(self) -> dict[str, Any]:
        if not self.compared:
            return {"drifted": self.drifted, "reason": self.reason}
        return {"ks_statistic": self.ks_statistic, "p_value": self.p_value,
                "alpha": self.alpha, "window_checks": self.window_checks,
                "window_scores": self.window_scores, "baseline_scores": self.baseline_scores,
                "drifted": self.drifted}


@dataclass(frozen=True)
class DropEvidence(Result):
    """The accuracy drop from the baseline to the window with the strongest evidence, and its
    one-sided test (H0: the drop is at most ``margin_percent``) at the level ``alpha`` that
    the false-alarm budget gives each window."""

    degradation_percent: float  # relative accuracy drop, point estimate
    drop_ci95: tuple[float, float] | None  # percent
    test: str
    p_value: float
    alpha: float
    significant: bool  # p_value < alpha
    window_checks: int  # the window: this many check intervals, newest
    margin_percent: float

    def to_dict(self) -> dict[str, Any]:
        return {"degradation_percent": self.degradation_percent,
                "drop_ci95": pair(self.drop_ci95), "test": self.test,
                "p_value": self.p_value, "alpha": self.alpha, "significant": self.significant,
                "window_checks": self.window_checks, "margin_percent": self.margin_percent}


@dataclass(frozen=True)
class DegradationCheck(Result):
    """One model version's current window against its baseline."""

    name: str
    version: str
    window_s: int
    baseline: BaselineSummary
    current: CurrentWindow
    drift: Drift
    status: str  # "ok", "degraded" or "insufficient_data"
    evidence: DropEvidence | None = None  # None when there is nothing to compare
    reason: str | None = None  # why it is not degraded, or why the data is insufficient
    alert: AlertRaised | None = None  # when degraded
    checked_at: str | None = None

    def checked(self, at: str) -> DegradationCheck:
        return replace(self, checked_at=at)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name, "version": self.version, "window_s": self.window_s,
            "baseline": self.baseline.to_dict(), "current": self.current.to_dict(),
            "drift": self.drift.to_dict(),
            **(self.evidence.to_dict() if self.evidence else {}), "status": self.status}
        return with_optional(doc, reason=self.reason,
                             alert=self.alert.to_dict() if self.alert else None,
                             checked_at=self.checked_at)


@dataclass(frozen=True)
class DegradationVerdict(Result):
    """`mlops verify-degradation`: the detector's current verdict re-checked with Fisher's
    exact test and a bootstrap interval of the drop, and whether the degradation is real."""

    check: DegradationCheck
    verdict: str  # "confirmed degradation", "false alarm" or "insufficient data"
    explanation: str
    bootstrap_drop_ci95: tuple[float, float] | None = None  # None with insufficient data

    def to_dict(self) -> dict[str, Any]:
        doc = with_optional(self.check.to_dict(),
                            bootstrap_drop_ci95=pair(self.bootstrap_drop_ci95))
        doc.update(verdict=self.verdict, explanation=self.explanation)
        return doc


@dataclass(frozen=True)
class DegradationResult(Result):
    """A run of the degradation-detection job."""

    ran_at: str
    models: tuple[DegradationCheck | NotChecked, ...]

    @property
    def degraded(self) -> int:
        return sum(m.status == "degraded" for m in self.models)

    def to_dict(self) -> dict[str, Any]:
        return {"job": "degradation", "ran_at": self.ran_at,
                "models": [m.to_dict() for m in self.models]}
