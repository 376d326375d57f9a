"""Ingest tasks of the ``mlops.events`` queue: thin wrappers over the library's Ingestor.

Redis errors (unreachable, read-only during a failover, out of memory) are retried with
backoff for as long as they last: the batch is idempotent, and a label batch's claim is kept for
the retry. Any other failure is a problem with the batch itself: it is dead-lettered whole, with
the error as its reason, so nothing disappears silently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import redis

from mlops_tasks.errors import RedisUnavailableError
from mlops_tasks.ingest import journal
from mlops_tasks.queues import EVENTS_QUEUE, TASK_INGEST_LABELS, TASK_INGEST_PREDICTIONS

from .app import app
from .runtime import runtime

log = logging.getLogger("mlops.ingest")

_INGEST = {
    "bind": True,
    "ignore_result": True,
    "acks_late": True,
    "autoretry_for": (redis.RedisError, RedisUnavailableError),
    "retry_backoff": 1,
    "retry_backoff_max": 60,
    "max_retries": None,
}


def _guarded(batch: Any, kind: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return run()
    except (redis.RedisError, RedisUnavailableError):
        raise  # retried by autoretry_for (also when the first connection of a child fails)
    except MemoryError:
        # past the child's address-space ceiling (MLOPS_WORKER_MAX_MEMORY_MB): this batch alone
        # fails; one summary letter, since looking at its events may need memory too
        log.error(  # noqa: TRY400 - no traceback: formatting one needs memory too
            "ingest ran out of memory; batch dead-lettered", extra={"kind": kind})
        return runtime().ingestor.reject_batch(
            batch, "processing failed: MemoryError (MLOPS_WORKER_MAX_MEMORY_MB reached)", kind,
            summary=True)
    except Exception as exc:  # a broken batch must not be lost silently
        log.exception("ingest failed; batch dead-lettered", extra={"kind": kind})
        return runtime().ingestor.reject_batch(
            batch, f"processing failed: {type(exc).__name__}: {str(exc)[:200]}", kind)


@app.task(name=TASK_INGEST_PREDICTIONS, **_INGEST)  # type: ignore[untyped-decorator]  # Celery is untyped
def ingest_predictions(self: Any,  # noqa: ARG001 - bound, as ingest_labels (shared options)
                       batch: dict[str, Any]) -> dict[str, Any]:
    return _guarded(batch, "predictions", lambda: runtime().ingestor.ingest_predictions(batch))


@app.task(name=TASK_INGEST_LABELS, **_INGEST)  # type: ignore[untyped-decorator]  # Celery is untyped
def ingest_labels(self: Any, batch: dict[str, Any]) -> dict[str, Any]:
    def requeue(retry: dict[str, Any], countdown_s: float) -> None:
        journal.record(runtime().services.redis, retry["model"], retry["batch_id"],
                       TASK_INGEST_LABELS, retry)
        self.app.send_task(TASK_INGEST_LABELS, args=[retry], queue=EVENTS_QUEUE,
                           countdown=countdown_s)

    return _guarded(batch, "labels",
                    lambda: runtime().ingestor.ingest_labels(batch, requeue=requeue))
