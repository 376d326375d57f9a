"""Per-process state of a worker: connections and caches, built on first use after the fork."""

from __future__ import annotations

import getpass
import logging
import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from mlops_tasks.alerts.delivery import delivery_message
from mlops_tasks.connection import resolve_redis_url, wait_replicas
from mlops_tasks.ingest.pipeline import Ingestor
from mlops_tasks.jobs import Job, recorded
from mlops_tasks.queues import MONITORING_QUEUE, TASK_DELIVER_WEBHOOK
from mlops_tasks.registry import builtin_models
from mlops_tasks.roles import WORKER
from mlops_tasks.services import Services
from mlops_tasks.settings import Settings

log = logging.getLogger("mlops.worker")


def send_webhook(receiver: int, delivery: dict[str, Any]) -> None:
    """Hand a webhook delivery to the monitoring queue (it retries on its own). The message
    names the alert only; the worker builds and signs the body from the stored alert."""
    from .app import app  # noqa: PLC0415 - the app imports this module's users

    message = delivery_message(str(delivery["alert_id"]), str(delivery["status"]), receiver)
    app.send_task(TASK_DELIVER_WEBHOOK, args=[message], queue=MONITORING_QUEUE)


@dataclass
class Runtime:
    settings: Settings

    @cached_property
    def services(self) -> Services:
        # The embedded Redis is used when it runs, never started from a worker (see
        # mlops_tasks/connection.py).
        url = resolve_redis_url(self.settings, start=False, role=WORKER)
        return Services.connect(self.settings, url, dispatch=send_webhook)

    @cached_property
    def ingestor(self) -> Ingestor:
        svc = self.services
        url = resolve_redis_url(self.settings, start=False, role=WORKER)
        return Ingestor(self.settings, svc.registry, svc.raw,
                        replicas=wait_replicas(self.settings, url))


_runtime: tuple[int, Runtime] | None = None


def runtime() -> Runtime:
    """This process's runtime (a forked child builds its own)."""
    global _runtime  # noqa: PLW0603 - one per process, rebuilt in a forked child
    if _runtime is None or _runtime[0] != os.getpid():
        _runtime = (os.getpid(), Runtime(Settings.from_env()))
    return _runtime[1]


def run_job(job: Job, *args: Any, **kwargs: Any) -> Any:
    """Run a scheduled job in this process with its services, recording the run's facts (see
    mlops_tasks/jobs.py); the job's result is the task's. A function that cannot be imported
    is a failed run too, so `mlops scheduler health` shows it."""
    svc = runtime().services
    with recorded(svc.redis, job.name, svc.clock) as summary:
        return job.load()(svc, summary, *args, **kwargs)


def auto_register() -> None:
    """Register the built-in models whose *_AUTO_REGISTER setting is on (idempotent)."""
    rt = runtime()
    actor = rt.settings.actor or f"worker:{getpass.getuser()}"
    for entry in builtin_models(rt.settings):
        if not entry.auto_register:
            continue
        result = rt.services.registry.register(
            entry.name, entry.version, entry.config, actor=actor,
            display_name=entry.display_name, description=entry.description, builtin=True,
            exist_ok=True)
        if result["created"]:
            log.info("model registered", extra={"model": entry.name, "version": entry.version})
