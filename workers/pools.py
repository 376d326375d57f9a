"""Named worker pools: which queues each consumes and how.

    events      ingest (I/O bound, short tasks): several processes, generous prefetch
    monitoring  monitoring, degradation, webhooks, cleanup (CPU bound): prefetch 1
    tuning      auto-tuning (CPU bound): prefetch 1
    all         every queue, for small deployments and the demo

Time limits are not a pool's: each scheduled job carries its own from the job table
(mlops_tasks/jobs.py) and every other task the default of mlops_tasks/celery_config.py, so a
plain `celery worker` enforces the same limits as `mlops worker --pool ...`. (A pool's
``--time-limit`` would only have applied to tasks without a limit of their own, of which
there are none.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mlops_tasks.queues import ALL_QUEUES, EVENTS_QUEUE, MONITORING_QUEUE, TUNING_QUEUE


@dataclass(frozen=True)
class Pool:
    name: str
    queues: tuple[str, ...]
    prefetch_multiplier: int
    concurrency_factor: int  # processes per core

    def default_concurrency(self) -> int:
        return max(1, (os.cpu_count() or 1) * self.concurrency_factor)

    def argv(self, concurrency: int | None) -> list[str]:
        """`celery worker` options of this pool."""
        return [f"--queues={','.join(self.queues)}",
                f"--concurrency={concurrency or self.default_concurrency()}",
                f"--prefetch-multiplier={self.prefetch_multiplier}",
                f"--hostname={self.name}@%h", "--task-events"]


POOLS = {
    "events": Pool("events", (EVENTS_QUEUE,), prefetch_multiplier=16, concurrency_factor=2),
    "monitoring": Pool("monitoring", (MONITORING_QUEUE,), prefetch_multiplier=1,
                       concurrency_factor=1),
    "tuning": Pool("tuning", (TUNING_QUEUE,), prefetch_multiplier=1, concurrency_factor=1),
    "all": Pool("all", ALL_QUEUES, prefetch_multiplier=4, concurrency_factor=1),
}
