"""Tasks of the ``mlops.tuning`` queue."""

from __future__ import annotations

from typing import Any

from mlops_tasks.queues import TASK_TUNING
from mlops_tasks.tuning.engine import run_tuning

from .app import app
from .runtime import runtime


@app.task(name=TASK_TUNING, acks_late=True)
def auto_tuning(model: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    return run_tuning(runtime().services, model, dry_run)
