"""Named worker pools: which queues each consumes and how.

    events      ingest (I/O bound, short tasks): several processes, generous prefetch
    monitoring  monitoring, degradation, webhooks, cleanup (CPU bound): prefetch 1, time limits
    tuning      auto-tuning (CPU bound): prefetch 1, time limits
    all         every queue, for small deployments and the demo
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
    time_limit_s: int | None
    soft_time_limit_s: int | None
    concurrency_factor: int  # processes per core

    def default_concurrency(self) -> int:
        return max(1, (os.cpu_count() or 1) * self.concurrency_factor)

    def argv(self, concurrency: int | None) -> list[str]:
        """`celery worker` options of this pool."""
        out = [f"--queues={','.join(self.queues)}",
               f"--concurrency={concurrency or self.default_concurrency()}",
               f"--prefetch-multiplier={self.prefetch_multiplier}",
               f"--hostname={self.name}@%h", "--task-events"]
        if self.time_limit_s:
            out.append(f"--time-limit={self.time_limit_s}")
        if self.soft_time_limit_s:
            out.append(f"--soft-time-limit={self.soft_time_limit_s}")
        return out


POOLS = {
    "events": Pool("events", (EVENTS_QUEUE,), prefetch_multiplier=16, time_limit_s=300,
                   soft_time_limit_s=None, concurrency_factor=2),
    "monitoring": Pool("monitoring", (MONITORING_QUEUE,), prefetch_multiplier=1,
                       time_limit_s=900, soft_time_limit_s=840, concurrency_factor=1),
    "tuning": Pool("tuning", (TUNING_QUEUE,), prefetch_multiplier=1, time_limit_s=1800,
                   soft_time_limit_s=1740, concurrency_factor=1),
    "all": Pool("all", ALL_QUEUES, prefetch_multiplier=4, time_limit_s=1800,
                soft_time_limit_s=1740, concurrency_factor=1),
}
