"""Health as data: beat, the scheduled jobs, worker pools and queues, and one verdict.

Every reader of health (the CLI's `scheduler status|health` and `verify-systems`, the HTTP
server, the Prometheus collector) calls these functions; none re-implements a rule.

    beat.py       beat_state: the leader, its heartbeat's age, every beat process
    scheduler.py  scheduler_status: each job of ``jobs.JOBS`` (last run and success, failures
                  in a row, success rate, next run) with beat's state
    workers.py    worker_liveness: which workers serve each pool (the caller passes the pools
                  and a callable asking the workers, e.g. celery_active_queues(app, timeout_s))
    queues.py     queue_depths: messages waiting per queue and kombu's unacked count
    verdict.py    check_health: healthy / degraded / unhealthy with reasons; evaluate (pure)
    verify.py     verify_systems: the pass/fail checks of `mlops verify-systems`
    probe.py      bounded: every probe answers within its timeout

Results are frozen dataclasses; ``to_dict()`` gives the documented JSON.
"""

from ..errors import ProbeTimeoutError
from .beat import BeatInstance, BeatState, beat_state
from .probe import DEFAULT_TIMEOUT_S, bounded
from .queues import QueueDepths, broker_client, queue_depths
from .scheduler import JobStatus, SchedulerStatus, read_scheduler, scheduler_status
from .verdict import (
    FAILURES_UNHEALTHY,
    QUEUE_BACKLOG_DEGRADED,
    Health,
    Reason,
    Verdict,
    check_health,
    evaluate,
)
from .verify import Check, SystemsCheck, verify_systems
from .workers import (
    ActiveQueues,
    PoolLiveness,
    celery_active_queues,
    pool_liveness,
    worker_liveness,
)

__all__ = [
    "DEFAULT_TIMEOUT_S", "FAILURES_UNHEALTHY", "QUEUE_BACKLOG_DEGRADED", "ActiveQueues",
    "BeatInstance", "BeatState", "Check", "Health", "JobStatus", "PoolLiveness",
    "ProbeTimeoutError", "QueueDepths", "Reason", "SchedulerStatus", "SystemsCheck", "Verdict",
    "beat_state", "bounded", "broker_client", "celery_active_queues", "check_health",
    "evaluate", "pool_liveness", "queue_depths", "read_scheduler", "scheduler_status",
    "verify_systems", "worker_liveness",
]
