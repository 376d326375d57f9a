"""The performance-monitoring job: each production model's accuracy against its alert threshold."""

from __future__ import annotations

import json
import logging
from typing import Any

from .. import keys
from ..alerts.model import Alert
from ..services import Services
from ..stats import wilson_interval
from ..timefmt import iso
from .targets import Target, check_each

log = logging.getLogger("mlops.monitoring")

KIND = "accuracy_below_threshold"


def accuracy_message(display_name: str, severity: str, accuracy: float) -> str:
    """As the original system wrote it: N+1 Detector Performance Warning: Accuracy dropped to
    78.50%."""
    return f"{display_name} Performance {severity.title()}: Accuracy dropped to " \
           f"{accuracy * 100:.2f}%"


def check(svc: Services, t: Target) -> dict[str, Any]:
    s = svc.settings
    windows = svc.windows.windows(t.name, t.version)
    w = windows[s.monitoring_window]
    threshold = float(t.config["accuracy_threshold"])
    result: dict[str, Any] = {
        "name": t.name, "version": t.version, "window": s.monitoring_window,
        "labeled": w["count"], "accuracy": w["accuracy"], "accuracy_threshold": threshold,
        "windows": {k: {"count": v["count"], "accuracy": v["accuracy"]}
                    for k, v in windows.items()}}
    if not t.config.get("enabled", True):
        result["status"] = "disabled"
    elif w["count"] < s.monitoring_min_samples:
        result["status"] = "insufficient_data"
        result["reason"] = f"{w['count']} labeled predictions in {s.monitoring_window}, " \
                           f"{s.monitoring_min_samples} needed"
    elif w["accuracy"] < threshold:
        result["status"] = "alerting"
        correct = w["tp"] + w["tn"]
        low, high = wilson_interval(correct, w["count"])
        decision = svc.alerts.raise_alert(Alert(
            model=t.name, version=t.version, kind=KIND, severity=t.config["severity"],
            message=accuracy_message(t.display_name, t.config["severity"], w["accuracy"]),
            values={"accuracy": w["accuracy"], "threshold": threshold,
                    "window": s.monitoring_window, "labeled": w["count"],
                    "accuracy_ci95": [low, high]}))
        result["alert"] = {"id": decision.alert.id, "notified": decision.notify,
                           "reason": decision.reason}
    else:
        result["status"] = "monitored"
        svc.alerts.clear(t.name, t.version, KIND)
    acc = "n/a" if w["accuracy"] is None else f"{w['accuracy']:.2f}"
    log.info(f"{t.display_name} status: {result['status']} (accuracy: {acc})",
             extra={"model": t.name, "version": t.version, "status": result["status"],
                    "labeled": w["count"]})
    return result


def run_monitoring(svc: Services, model: str | None = None) -> dict[str, Any]:
    """Check every production model (or ``model``); one model's failure does not stop the rest."""
    results = check_each(svc, model, "monitoring", lambda t: check(svc, t),
                         keys.monitor_status, log, "monitoring failed", (KIND,))
    log.info("Performance monitoring executed successfully",
             extra={"models": len(results),
                    "alerting": sum(r["status"] == "alerting" for r in results)})
    return {"job": "monitoring", "ran_at": iso(svc.clock()), "models": results}


def last_results(svc: Services, names: list[str]) -> dict[str, dict[str, Any]]:
    pipe = svc.redis.pipeline(transaction=False)
    for n in names:
        pipe.get(keys.monitor_status(n))
    return {n: json.loads(v) for n, v in zip(names, pipe.execute(), strict=True) if v}
