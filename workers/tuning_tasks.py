"""Tasks of the ``mlops.tuning`` queue."""

from __future__ import annotations

from typing import Any

from mlops_tasks.jobs import BY_TASK, recorded
from mlops_tasks.queues import TASK_TUNING
from mlops_tasks.tuning.engine import run_tuning

from .app import app
from .runtime import runtime


@app.task(name=TASK_TUNING, acks_late=True)
def auto_tuning(model: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    svc = runtime().services
    with recorded(svc.redis, BY_TASK[TASK_TUNING].name, svc.clock) as summary:
        result = run_tuning(svc, model, dry_run)
        summary.update(runs=len(result["runs"]),
                       applied=sum(1 for r in result["runs"] if r["applied"]))
    return result
