"""The monitoring and degradation jobs (see their entries in mlops_tasks/jobs.py), and the task
that delivers webhooks on the ``mlops.monitoring`` queue."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlops_tasks.alerts.channels import DeliveryError
from mlops_tasks.alerts.delivery import backoff_s, deliver
from mlops_tasks.ingest import journal
from mlops_tasks.monitoring.degradation import run_degradation
from mlops_tasks.monitoring.performance import run_monitoring
from mlops_tasks.monitoring.system import check_jobs, run_system_checks
from mlops_tasks.monitoring.targets import ModelResult
from mlops_tasks.queues import EVENTS_QUEUE, TASK_DELIVER_WEBHOOK
from mlops_tasks.services import Services

from .app import app
from .runtime import runtime


def performance_monitoring(svc: Services, summary: dict[str, Any],
                           model: str | None = None) -> dict[str, Any]:
    """Check the production models and, in a run over all of them, the system (see
    mlops_tasks/monitoring/system.py) and refill the registry's read cache (which detectors
    only read under the ACL roles); then send again the batches the broker lost."""
    result = run_monitoring(svc, model)
    summary.update(_statuses(result.models))
    out = result.to_dict()
    if model is None:
        system = run_system_checks(svc)
        summary["system_alerting"] = system.alerting
        out["system"] = system.to_dict()
        summary["configs_cached"] = sum(e.status == "cached" for e in svc.registry.warm_cache())
    replayed = replay_lost_batches()
    summary["replayed_batches"] = sum(replayed.values())
    return {**out, "replayed_batches": replayed}


def replay_lost_batches() -> dict[str, int]:
    """Send again the batches the broker lost (see mlops_tasks/ingest/journal.py)."""
    svc = runtime().services

    def send(task: str, body: dict[str, Any]) -> None:
        app.send_task(task, args=[body], queue=EVENTS_QUEUE, argsrepr="", kwargsrepr="")

    return journal.replay(svc.raw, svc.registry.model_names(),
                          svc.settings.journal_replay_s, send, svc.clock)


def degradation_detection(svc: Services, summary: dict[str, Any],
                          model: str | None = None) -> dict[str, Any]:
    """Check the production models against their baselines and, in a run over all of them,
    every scheduled job's failures (so a monitoring job that keeps failing is reported)."""
    result = run_degradation(svc, model)
    summary.update(_statuses(result.models))
    out = result.to_dict()
    if model is None:
        out["system"] = check_jobs(svc).to_dict()
    return out


def _statuses(models: Sequence[ModelResult]) -> dict[str, int]:
    out: dict[str, int] = {"models": len(models)}
    for m in models:
        out[m.status] = out.get(m.status, 0) + 1
    return out


@app.task(  # type: ignore[untyped-decorator]  # Celery is untyped
    name=TASK_DELIVER_WEBHOOK, bind=True, acks_late=True, ignore_result=True, max_retries=None)
def deliver_webhook(self: Any, delivery: Any) -> dict[str, Any]:
    """One attempt of ``{"alert_id", "status", "receiver"}`` (see alerts/delivery.py); each
    retry rebuilds the body and signs it with a fresh timestamp."""
    rt = runtime()
    try:
        return deliver(rt.settings, rt.services.alerts.store, delivery, self.request.retries)
    except DeliveryError as exc:  # its message is safe to log: no path, query or credentials
        raise self.retry(exc=exc, countdown=backoff_s(rt.settings.webhook_backoff_s,
                                                     self.request.retries)) from None
