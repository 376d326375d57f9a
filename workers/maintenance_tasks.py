"""The daily cleanup task."""

from __future__ import annotations

from typing import Any

from mlops_tasks.jobs import BY_TASK, recorded
from mlops_tasks.maintenance.cleanup import cleanup
from mlops_tasks.queues import TASK_CLEANUP
from mlops_tasks.timebuckets import DAY_S

from .app import app
from .runtime import runtime


@app.task(name=TASK_CLEANUP, acks_late=True)
def registry_cleanup(model: str | None = None, older_than_s: float | None = None,
                     dry_run: bool = False) -> dict[str, Any]:
    svc = runtime().services
    with recorded(svc.redis, BY_TASK[TASK_CLEANUP].name, svc.clock) as summary:
        report = cleanup(svc, older_than_s or svc.settings.retention_days * DAY_S, dry_run,
                         model=model)
        summary.update(report["deleted"])
    return report
