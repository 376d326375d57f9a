"""Each scheduled job's facts (last run and success, failures in a row, success rate) and when
it runs next, for every job of ``mlops_tasks.jobs.JOBS``, with beat's state."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis

from .. import jobs, keys
from ..settings import Settings
from ..timefmt import iso
from .beat import BeatState, beat_state
from .probe import DEFAULT_TIMEOUT_S, bounded


@dataclass(frozen=True)
class JobStatus:
    name: str
    task: str
    queue: str
    interval_s: int
    last_run_at: float | None  # started, as the job's own facts say
    last_success_at: float | None
    last_duration_s: float | None
    consecutive_failures: int
    success_rate: float | None  # of the last runs kept (jobs.OUTCOMES_KEPT)
    runs: int
    last_error: str | None
    last_summary: Any
    next_run_at: float | None  # beat's last send (else the last run) plus the interval

    def staleness_s(self, now: float) -> float | None:
        """Seconds since the job last ran (None if it never ran)."""
        return None if self.last_run_at is None else now - self.last_run_at

    def to_dict(self) -> dict[str, Any]:
        def when(ts: float | None) -> str | None:
            return None if ts is None else iso(ts)

        return {"name": self.name, "task": self.task, "queue": self.queue,
                "interval_s": self.interval_s, "last_run_at": when(self.last_run_at),
                "last_success_at": when(self.last_success_at),
                "last_duration_s": self.last_duration_s,
                "consecutive_failures": self.consecutive_failures,
                "success_rate": self.success_rate, "runs": self.runs,
                "last_error": self.last_error, "last_summary": self.last_summary,
                "next_run_at": when(self.next_run_at)}


@dataclass(frozen=True)
class SchedulerStatus:
    jobs: tuple[JobStatus, ...]
    beat: BeatState
    read_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"jobs": [j.to_dict() for j in self.jobs], "beat": self.beat.to_dict()}


def last_sent_at(client: redis.Redis, job: str) -> float | None:
    """When beat last sent ``job`` (celery-redbeat's entry meta), or None."""
    raw = client.hget(keys.redbeat_entry(job), keys.REDBEAT_META_FIELD)
    if not raw:
        return None
    # redbeat imports celery: only when beat has left an entry to decode
    from redbeat.decoder import RedBeatJSONDecoder  # noqa: PLC0415 - see above

    last = json.loads(raw, cls=RedBeatJSONDecoder).get("last_run_at")
    return last.timestamp() if last is not None and last.year > 1 else None


def job_status(client: redis.Redis, settings: Settings, job: jobs.Job) -> JobStatus:
    """One entry of ``jobs.JOBS``."""
    f = jobs.facts(client, job.name)
    interval = job.interval_s(settings)
    last = last_sent_at(client, job.name) or f["last_run_at"]
    return JobStatus(
        name=job.name, task=job.task, queue=job.queue, interval_s=interval,
        last_run_at=f["last_run_at"], last_success_at=f["last_success_at"],
        last_duration_s=f["last_duration_s"], consecutive_failures=f["consecutive_failures"],
        success_rate=f["success_rate"], runs=f["runs"], last_error=f["last_error"],
        last_summary=f["last_summary"], next_run_at=last + interval if last else None)


def read_scheduler(client: redis.Redis, settings: Settings,
                   now: float | None = None) -> SchedulerStatus:
    """Every scheduled job's status, in the order of ``jobs.JOBS``, and beat's state."""
    now = time.time() if now is None else now
    return SchedulerStatus(jobs=tuple(job_status(client, settings, j) for j in jobs.JOBS),
                           beat=beat_state(client, settings, now), read_at=now)


def scheduler_status(client: redis.Redis, settings: Settings, now: float | None = None,
                     timeout_s: float = DEFAULT_TIMEOUT_S) -> SchedulerStatus:
    """``read_scheduler`` within ``timeout_s`` (else ProbeTimeoutError)."""
    return bounded(lambda: read_scheduler(client, settings, now), timeout_s, "the scheduler")
