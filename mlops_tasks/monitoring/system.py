"""The system checks of the monitoring job: alerts that are not about one model's predictions.

:func:`run_system_checks` runs with every performance-monitoring run over all models (every 5
minutes; a run for one model skips them), each check on its own, so one failing check is logged
(``system check failed``) and reported while the others still run:

* ``scheduler_job_failing`` (critical), one per scheduled job of ``jobs.JOBS``: it failed more
  than :data:`MAX_FAILURES_IN_A_ROW` times in a row (the ``consecutive_failures`` every run
  records, ``jobs.recorded``); it resolves when the job succeeds again. The degradation job
  runs this check too (:func:`check_jobs`), so a monitoring job that keeps failing is reported;
* ``registry_cache_miss_rate`` (warning): cache_rate.py;
* ``config_updated`` (info events) from the audit trail: config_events.py.

Alerts that are not about a model name their subject in ``model`` (the job's name, or
``registry``) and carry ``model.NO_VERSION``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from .. import jobs
from ..alerts.model import NO_VERSION, Alert
from ..alerts.subjects import REGISTRY
from ..jobs import time_limit_reached
from ..results import Result, with_optional
from ..services import Services
from ..timefmt import iso
from . import cache_rate, config_events
from .results import AlertRaised

log = logging.getLogger("mlops.monitoring")

JOB_KIND = "scheduler_job_failing"
MAX_FAILURES_IN_A_ROW = 3  # more than this fires scheduler_job_failing


@dataclass(frozen=True)
class SystemCheck(Result):
    """One check's outcome: ``subject`` is what its alert is about (a job, ``registry``,
    ``audit``); ``status`` is ok, alerting, insufficient_data, announced or failed."""

    subject: str
    kind: str
    status: str
    detail: str | None = None
    alert: AlertRaised | None = None

    def to_dict(self) -> dict[str, Any]:
        return with_optional({"subject": self.subject, "kind": self.kind,
                              "status": self.status},
                             detail=self.detail,
                             alert=self.alert.to_dict() if self.alert else None)


@dataclass(frozen=True)
class SystemResult(Result):
    ran_at: str
    checks: tuple[SystemCheck, ...]

    @property
    def alerting(self) -> int:
        return sum(c.status == "alerting" for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"ran_at": self.ran_at, "checks": [c.to_dict() for c in self.checks]}


def job_message(job: str, failures: int) -> str:
    return f"Scheduler Job Failing: {job} failed {failures} times in a row"


def check_job(svc: Services, job: jobs.Job) -> SystemCheck:
    f = jobs.facts(svc.redis, job.name)
    failures = f["consecutive_failures"]
    if failures <= MAX_FAILURES_IN_A_ROW:
        # a count that went back down means a run succeeded since
        svc.alerts.clear(job.name, NO_VERSION, JOB_KIND)
        return SystemCheck(job.name, JOB_KIND, "ok", f"{failures} failures in a row")

    def when(ts: float | None) -> str | None:
        return None if ts is None else iso(ts)

    decision = svc.alerts.raise_alert(Alert(
        job.name, NO_VERSION, JOB_KIND, "critical", job_message(job.name, failures),
        {"job": job.name, "task": job.task, "consecutive_failures": failures,
         "last_error": f["last_error"], "last_failure_at": when(f["last_failure_at"]),
         "last_success_at": when(f["last_success_at"])}))
    return SystemCheck(job.name, JOB_KIND, "alerting", f"{failures} failures in a row",
                       AlertRaised(decision.alert.id, decision.notify, decision.reason))


def _cache(svc: Services) -> SystemCheck:
    c = cache_rate.check_cache_miss_rate(svc)
    detail = None
    if c.window is None:
        detail = f"no sample {cache_rate.WINDOW_S:g}s old yet"
    else:
        rate = "-" if c.window.miss_rate is None else f"{c.window.miss_rate:.1%}"
        detail = f"{c.window.misses} misses in {c.window.requests} reads ({rate})"
    return SystemCheck(REGISTRY, cache_rate.KIND, c.status, detail, c.alert)


def _config(svc: Services) -> SystemCheck:
    n = config_events.announce_config_changes(svc)
    return SystemCheck("audit", config_events.KIND, "announced", f"{n} changes announced")


def _guarded(subject: str, kind: str, check: Callable[[], SystemCheck]) -> SystemCheck:
    try:
        return check()
    except Exception as exc:  # one check's failure is reported (and logged), not raised
        if time_limit_reached(exc):
            raise
        log.exception("system check failed", extra={"check": kind, "reason": str(exc)})
        return SystemCheck(subject, kind, "failed", f"{type(exc).__name__}: {exc}")


def check_jobs(svc: Services) -> SystemResult:
    """``scheduler_job_failing`` for every scheduled job."""
    return SystemResult(iso(svc.clock()), tuple(
        _guarded(j.name, JOB_KIND, partial(check_job, svc, j)) for j in jobs.JOBS))


def run_system_checks(svc: Services) -> SystemResult:
    """Every system check (see the module's docstring)."""
    checks = (*check_jobs(svc).checks,
              _guarded(REGISTRY, cache_rate.KIND, lambda: _cache(svc)),
              _guarded("audit", config_events.KIND, lambda: _config(svc)))
    result = SystemResult(iso(svc.clock()), checks)
    log.info("System checks executed", extra={"checks": len(checks),
                                               "alerting": result.alerting})
    return result
