"""Ingest tasks of the ``mlops.events`` queue: thin wrappers over the library's Ingestor."""

from __future__ import annotations

from typing import Any

import redis

from mlops_tasks.queues import EVENTS_QUEUE, TASK_INGEST_LABELS, TASK_INGEST_PREDICTIONS

from .app import app
from .runtime import runtime

# A batch whose processing fails on Redis is retried with backoff; a failure of any other kind
# leaves the message unacknowledged, so it is delivered again rather than lost.
_INGEST = {
    "bind": True,
    "ignore_result": True,
    "acks_late": True,
    "acks_on_failure_or_timeout": False,
    "autoretry_for": (redis.ConnectionError, redis.TimeoutError),
    "retry_backoff": 1,
    "retry_backoff_max": 60,
    "max_retries": None,
}


@app.task(name=TASK_INGEST_PREDICTIONS, **_INGEST)
def ingest_predictions(self: Any, batch: dict[str, Any]) -> dict[str, Any]:
    return runtime().ingestor.ingest_predictions(batch)


@app.task(name=TASK_INGEST_LABELS, **_INGEST)
def ingest_labels(self: Any, batch: dict[str, Any]) -> dict[str, Any]:
    def requeue(retry: dict[str, Any], countdown_s: float) -> None:
        self.app.send_task(TASK_INGEST_LABELS, args=[retry], queue=EVENTS_QUEUE,
                           countdown=countdown_s)

    return runtime().ingestor.ingest_labels(batch, requeue=requeue)
