"""The four scheduled jobs and the facts each run leaves in Redis.

Every run, scheduled by beat or started with `mlops run`, records: last run, last success,
duration, result summary, consecutive failures and the outcomes of the last 100 runs (for the
success rate). `mlops scheduler status|health` and the exporters read these keys.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis

from . import keys
from .queues import (
    MONITORING_QUEUE,
    TASK_CLEANUP,
    TASK_DEGRADATION,
    TASK_MONITORING,
    TASK_TUNING,
    TUNING_QUEUE,
)
from .settings import Settings

OUTCOMES_KEPT = 100


@dataclass(frozen=True)
class Job:
    name: str
    task: str
    queue: str
    interval_setting: str

    def interval_s(self, settings: Settings) -> int:
        return int(getattr(settings, self.interval_setting))


JOBS = (
    Job("ml-performance-monitoring", TASK_MONITORING, MONITORING_QUEUE, "monitoring_interval_s"),
    Job("ml-degradation-detection", TASK_DEGRADATION, MONITORING_QUEUE, "degradation_interval_s"),
    Job("ml-auto-tuning", TASK_TUNING, TUNING_QUEUE, "tuning_interval_s"),
    Job("ml-registry-cleanup", TASK_CLEANUP, MONITORING_QUEUE, "cleanup_interval_s"),
)
BY_TASK = {j.task: j for j in JOBS}


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
