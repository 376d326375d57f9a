"""The scheduled jobs, each declared once, and the facts each run leaves in Redis.

A job is one function plus one entry in :data:`JOBS`. The entry holds everything the rest of the
project needs to know about it, and nothing else names a job:

- workers register one Celery task per entry, with its name and time limits
  (``mlops_tasks/workers/app.py``), and run it through one wrapper that records its facts;
- beat schedules every entry, on the queue and at the interval the entry names
  (``mlops_tasks/beat/schedule.py``);
- ``mlops run <short>`` offers every entry, and ``mlops scheduler status|health`` reports on it.

The function is named by its import path (``"package.module:function"``) and imported only by
the worker that runs it, so this table stays cheap to import for every CLI command. A worker
calls it as ``function(services, summary, **kwargs)``: it does the work with the process's
connected :class:`~mlops_tasks.services.Services`, puts the few numbers `mlops scheduler status`
shows into ``summary`` and returns the task's result (JSON-serialisable). ``kwargs`` are the
task's: beat sends none, ``mlops run`` sends ``model`` (and ``dry_run`` for tuning).

Every run, scheduled by beat or started with `mlops run`, records: last run, last success,
duration, result summary, consecutive failures and the outcomes of the last 100 runs (for the
success rate). `mlops scheduler status|health` and the exporters read these keys.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import keys
from .queues import MONITORING_QUEUE, TUNING_QUEUE

if TYPE_CHECKING:
    import redis

    from .settings import Settings

OUTCOMES_KEPT = 100

#: ``function(services, summary, *args, **kwargs) -> result``; see the module's docstring.
JobFunction = Callable[..., Any]


@dataclass(frozen=True)
class Job:
    """One scheduled job. Time limits are enforced by any worker that runs it, ``mlops worker``
    or a plain ``celery worker``: at the soft limit the job gets ``SoftTimeLimitExceeded``
    (recorded as a failed run), at the hard limit its pool process is killed and replaced."""

    name: str  # beat's entry and the key of its facts: "ml-performance-monitoring"
    short: str  # `mlops run <short>`
    task: str  # the Celery task name, what beat and `mlops run` send
    queue: str
    interval_setting: str  # the Settings field holding the interval, in seconds
    function: str  # "package.module:function", imported by the worker that runs the job
    soft_time_limit_s: int
    time_limit_s: int

    def interval_s(self, settings: Settings) -> int:
        return int(getattr(settings, self.interval_setting))

    def load(self) -> JobFunction:
        """The job's function (imports its module)."""
        module, _, attr = self.function.partition(":")
        fn: object = getattr(importlib.import_module(module), attr, None) if attr else None
        if not callable(fn):
            raise ImportError(  # noqa: TRY004 - a bad path is an import problem
                f"job {self.name}: {self.function!r} names no function "
                "(expected 'package.module:function')")
        return fn


JOBS: tuple[Job, ...] = (
    Job(name="ml-performance-monitoring", short="monitoring",
        task="mlops.monitoring.performance", queue=MONITORING_QUEUE,
        interval_setting="monitoring_interval_s",
        function="mlops_tasks.workers.monitoring_tasks:performance_monitoring",
        soft_time_limit_s=840, time_limit_s=900),
    Job(name="ml-degradation-detection", short="degradation",
        task="mlops.monitoring.degradation", queue=MONITORING_QUEUE,
        interval_setting="degradation_interval_s",
        function="mlops_tasks.workers.monitoring_tasks:degradation_detection",
        soft_time_limit_s=840, time_limit_s=900),
    Job(name="ml-auto-tuning", short="tuning",
        task="mlops.tuning.run", queue=TUNING_QUEUE,
        interval_setting="tuning_interval_s",
        function="mlops_tasks.workers.tuning_tasks:auto_tuning",
        soft_time_limit_s=1740, time_limit_s=1800),
    Job(name="ml-registry-cleanup", short="cleanup",
        task="mlops.maintenance.cleanup", queue=MONITORING_QUEUE,
        interval_setting="cleanup_interval_s",
        function="mlops_tasks.workers.maintenance_tasks:registry_cleanup",
        soft_time_limit_s=840, time_limit_s=900),
)
BY_TASK = {j.task: j for j in JOBS}


def time_limit_reached(exc: BaseException) -> bool:
    """Celery's soft time limit (billiard's SoftTimeLimitExceeded) ends a whole job run: it is
    never one model's failure, so the per-model handlers of a job raise it again. Looked up
    among loaded modules: where billiard is not loaded, no such exception can be raised."""
    limits = sys.modules.get("billiard.exceptions")
    return limits is not None and isinstance(exc, limits.SoftTimeLimitExceeded)


@contextmanager
def recorded(client: redis.Redis, job: str,
             clock: Callable[[], float] = time.time) -> Iterator[dict[str, Any]]:
    """Record a run of ``job``; put a short result summary in the yielded dict."""
    started = clock()
    key = keys.job_facts(job)
    client.hset(key, mapping={"last_run_at": started})
    summary: dict[str, Any] = {}
    try:
        yield summary
    except BaseException as exc:
        pipe = client.pipeline(transaction=True)
        pipe.hset(key, mapping={"last_duration_s": clock() - started,
                                "last_error": f"{type(exc).__name__}: {exc}"[:500],
                                "last_failure_at": clock()})
        pipe.hincrby(key, "consecutive_failures", 1)
        pipe.hincrby(key, "failures", 1)
        pipe.hincrby(key, "runs", 1)
        pipe.lpush(keys.job_outcomes(job), 0)
        pipe.ltrim(keys.job_outcomes(job), 0, OUTCOMES_KEPT - 1)
        pipe.execute()
        raise
    pipe = client.pipeline(transaction=True)
    pipe.hset(key, mapping={"last_duration_s": clock() - started, "last_success_at": clock(),
                            "consecutive_failures": 0, "last_summary": json.dumps(summary)})
    pipe.hincrby(key, "runs", 1)
    pipe.lpush(keys.job_outcomes(job), 1)
    pipe.ltrim(keys.job_outcomes(job), 0, OUTCOMES_KEPT - 1)
    pipe.execute()


def facts(client: redis.Redis, job: str) -> dict[str, Any]:
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(keys.job_facts(job))
    pipe.lrange(keys.job_outcomes(job), 0, OUTCOMES_KEPT - 1)
    raw, outcomes = pipe.execute()

    def num(k: str) -> float | None:
        return float(raw[k]) if k in raw else None

    return {
        "last_run_at": num("last_run_at"), "last_success_at": num("last_success_at"),
        "last_failure_at": num("last_failure_at"), "last_duration_s": num("last_duration_s"),
        "consecutive_failures": int(raw.get("consecutive_failures", 0)),
        "runs": int(raw.get("runs", 0)), "last_error": raw.get("last_error"),
        "last_summary": json.loads(raw["last_summary"]) if raw.get("last_summary") else None,
        "success_rate": (sum(int(x) for x in outcomes) / len(outcomes)) if outcomes else None,
    }
