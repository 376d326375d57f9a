"""The performance-monitoring job: each production model's accuracy against its alert threshold."""

from __future__ import annotations

import logging
from typing import Any

from .. import keys
from ..alerts.model import Alert
from ..results import pair
from ..services import Services
from ..stats import wilson_interval
from ..timefmt import iso
from .results import AccuracyCheck, AlertRaised, MonitoringResult, WindowAccuracy
from .targets import Target, check_each, last_checks

log = logging.getLogger("mlops.monitoring")

KIND = "accuracy_below_threshold"


def accuracy_message(display_name: str, severity: str, accuracy: float) -> str:
    """As the original system wrote it: N+1 Detector Performance Warning: Accuracy dropped to
    78.50%. Every severity keeps "Performance Warning", which the runbook greps for, and names
    itself when it is not a warning: WAF Behavioral Performance Warning (critical): ..."""
    label = "" if severity == "warning" else f" ({severity})"
    return (f"{display_name} Performance Warning{label}: Accuracy dropped to "
            f"{accuracy * 100:.2f}%")


def check(svc: Services, t: Target) -> AccuracyCheck:
    s = svc.settings
    windows = svc.windows.windows(t.name, t.version)
    w = windows[s.monitoring_window]
    threshold = float(t.config["accuracy_threshold"])
    reason = None
    alert = None
    if not t.config.get("enabled", True):
        status = "disabled"
    elif w["count"] < s.monitoring_min_samples:
        status = "insufficient_data"
        reason = (f"{w['count']} labeled predictions in {s.monitoring_window}, "
                  f"{s.monitoring_min_samples} needed")
    elif w["accuracy"] < threshold:
        status = "alerting"
        decision = svc.alerts.raise_alert(Alert(
            model=t.name, version=t.version, kind=KIND, severity=t.config["severity"],
            message=accuracy_message(t.display_name, t.config["severity"], w["accuracy"]),
            values={"accuracy": w["accuracy"], "threshold": threshold,
                    "window": s.monitoring_window, "labeled": w["count"],
                    "accuracy_ci95": pair(wilson_interval(w["tp"] + w["tn"], w["count"]))}))
        alert = AlertRaised(decision.alert.id, decision.notify, decision.reason)
    else:
        status = "monitored"
        svc.alerts.clear(t.name, t.version, KIND)
    acc = "n/a" if w["accuracy"] is None else f"{w['accuracy']:.2f}"
    log.info("%s status: %s (accuracy: %s)", t.display_name, status, acc,
             extra={"model": t.name, "version": t.version, "status": status,
                    "labeled": w["count"]})
    return AccuracyCheck(
        name=t.name, version=t.version, window=s.monitoring_window, labeled=w["count"],
        accuracy=w["accuracy"], accuracy_threshold=threshold,
        windows={k: WindowAccuracy(v["count"], v["accuracy"]) for k, v in windows.items()},
        status=status, reason=reason, alert=alert)


def run_monitoring(svc: Services, model: str | None = None) -> MonitoringResult:
    """Check every production model (or ``model``); one model's failure does not stop the rest."""
    results = check_each(svc, model, "monitoring", lambda t: check(svc, t),
                         keys.monitor_status, log, "monitoring failed", (KIND,))
    result = MonitoringResult(ran_at=iso(svc.clock()), models=results)
    log.info("Performance monitoring executed successfully",
             extra={"models": len(results), "alerting": result.alerting})
    return result


def last_results(svc: Services, names: list[str]) -> dict[str, dict[str, Any]]:
    """Each model's last check as stored (the JSON of its ``AccuracyCheck`` or
    ``NotChecked``), for the models that have one."""
    return last_checks(svc, names, keys.monitor_status)
