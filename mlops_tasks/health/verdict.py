"""The health verdict: healthy, degraded or unhealthy, with a reason for each finding.

``evaluate`` is pure (results in, verdict out); ``check_health`` runs the probes it is given,
each bounded by ``timeout_s``, and evaluates them. The CLI (`mlops scheduler health`), the HTTP
server and the Prometheus collector call ``check_health``.

Unhealthy
    beat has no fresh leader heartbeat;
    a job last ran more than two intervals ago, or never ran while beat has been up that long;
    a job failed FAILURES_UNHEALTHY times in a row;
    a pool has no worker consuming all its queues;
    a probe failed or timed out.
Degraded
    a job failed once or twice in a row;
    a queue holds more than ``backlog`` waiting messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import redis

from ..errors import ProbeTimeoutError
from ..settings import Settings
from ..timefmt import iso
from .probe import DEFAULT_TIMEOUT_S, bounded
from .queues import Broker, QueueDepths, queue_depths
from .scheduler import SchedulerStatus, read_scheduler
from .workers import ActiveQueues, PoolLiveness, worker_liveness

Level = Literal["degraded", "unhealthy"]
Status = Literal["healthy", "degraded", "unhealthy"]

FAILURES_UNHEALTHY = 3
STALE_INTERVALS = 2
QUEUE_BACKLOG_DEGRADED = 10_000


@dataclass(frozen=True)
class Reason:
    component: str  # "beat", a job's name, "pool <name>", "queue <name>"
    level: Level
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"component": self.component, "level": self.level, "message": self.message}


@dataclass(frozen=True)
class Verdict:
    reasons: tuple[Reason, ...]

    @property
    def status(self) -> Status:
        levels = {r.level for r in self.reasons}
        return "unhealthy" if "unhealthy" in levels else "degraded" if levels else "healthy"

    @property
    def healthy(self) -> bool:
        """Nothing unhealthy (a degraded system still counts as healthy)."""
        return self.status != "unhealthy"

    @property
    def problems(self) -> list[str]:
        return [r.message for r in self.reasons if r.level == "unhealthy"]

    @property
    def warnings(self) -> list[str]:
        return [r.message for r in self.reasons if r.level == "degraded"]

    def to_dict(self) -> dict[str, Any]:
        """`mlops scheduler health --json`."""
        return {"healthy": self.healthy, "problems": self.problems}


def scheduler_reasons(status: SchedulerStatus) -> list[Reason]:
    out = []
    beat, now = status.beat, status.read_at
    if not beat.alive:
        out.append(Reason("beat", "unhealthy", "beat: no leader heartbeat in the last "
                          f"{beat.stale_after_s:g}s (is `mlops beat` running?)"))
    up_since = beat.leader.started_at if beat.leader else None
    for job in status.jobs:
        interval, last = job.interval_s, job.last_run_at
        if last is not None and now - last > STALE_INTERVALS * interval:
            out.append(Reason(job.name, "unhealthy",
                              f"{job.name}: last ran {now - last:.0f}s ago, more than two "
                              f"intervals of {interval}s"))
        elif last is None and up_since is not None and now - up_since > STALE_INTERVALS * interval:
            out.append(Reason(job.name, "unhealthy",
                              f"{job.name}: never ran although beat has been up for "
                              f"{now - up_since:.0f}s (interval {interval}s)"))
        failures = job.consecutive_failures
        if failures:
            level: Level = "unhealthy" if failures >= FAILURES_UNHEALTHY else "degraded"
            times = "times" if failures > 1 else "time"
            out.append(Reason(job.name, level, f"{job.name}: failed {failures} {times} in a row"
                                               f" (last error: {job.last_error})"))
    return out


def pool_reasons(pools: Sequence[PoolLiveness]) -> list[Reason]:
    return [Reason(f"pool {p.name}", "unhealthy", f"pool {p.name}: {p.detail}")
            for p in pools if not p.alive]


def queue_reasons(depths: QueueDepths, backlog: int) -> list[Reason]:
    return [Reason(f"queue {q}", "degraded",
                   f"queue {q}: {n} messages waiting (more than {backlog})")
            for q, n in depths.waiting.items() if n > backlog]


def evaluate(scheduler: SchedulerStatus | None = None,
             pools: Sequence[PoolLiveness] | None = None, queues: QueueDepths | None = None,
             backlog: int = QUEUE_BACKLOG_DEGRADED) -> Verdict:
    """The verdict on whatever was probed (pure)."""
    reasons: list[Reason] = []
    if scheduler is not None:
        reasons += scheduler_reasons(scheduler)
    if pools is not None:
        reasons += pool_reasons(pools)
    if queues is not None:
        reasons += queue_reasons(queues, backlog)
    return Verdict(tuple(reasons))


@dataclass(frozen=True)
class Health:
    verdict: Verdict
    scheduler: SchedulerStatus | None
    pools: tuple[PoolLiveness, ...] | None
    queues: QueueDepths | None
    checked_at: float

    @property
    def status(self) -> Status:
        return self.verdict.status

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "healthy": self.verdict.healthy,
                "checked_at": iso(self.checked_at),
                "reasons": [r.to_dict() for r in self.verdict.reasons],
                "scheduler": self.scheduler.to_dict() if self.scheduler else None,
                "pools": [p.to_dict() for p in self.pools] if self.pools is not None else None,
                "queues": self.queues.to_dict() if self.queues else None}


def check_health(client: redis.Redis, settings: Settings, *, scheduler: bool = True,
                 pools: Mapping[str, Sequence[str]] | None = None,
                 active_queues: ActiveQueues | None = None,
                 broker: Broker | None = None, backlog: int = QUEUE_BACKLOG_DEGRADED,
                 timeout_s: float = DEFAULT_TIMEOUT_S, now: float | None = None) -> Health:
    """Probe beat and the jobs (unless ``scheduler`` is false), the worker pools (when ``pools``
    and ``active_queues`` are given) and the queues (when the ``broker`` client is given), each
    within ``timeout_s``; a probe that fails or times out is an unhealthy reason of its own."""
    now = time.time() if now is None else now
    failed: list[Reason] = []

    def probe(component: str, fn: Callable[[], Any], grace_s: float = 0.0) -> Any:
        try:
            return bounded(fn, timeout_s + grace_s, component)
        except Exception as exc:  # noqa: BLE001 - a failed probe is a finding
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if not isinstance(exc, ProbeTimeoutError):  # which already names the component
                text = f"{component}: {text}"
            failed.append(Reason(component, "unhealthy", text))
            return None

    status: SchedulerStatus | None = None
    if scheduler:
        status = probe("scheduler", lambda: read_scheduler(client, settings, now))
    lives: tuple[PoolLiveness, ...] | None = None
    if pools is not None and active_queues is not None:
        served, ask = pools, active_queues
        # ``ask`` waits for replies itself (up to timeout_s when built by
        # celery_active_queues): its probe gets a second more before it counts as hung
        lives = probe("workers", lambda: worker_liveness(served, ask), grace_s=1.0)
    depths: QueueDepths | None = None
    if broker is not None:
        depths = probe("queues", lambda: queue_depths(broker))
    found = evaluate(status, lives, depths, backlog)
    return Health(verdict=Verdict(tuple(failed) + found.reasons), scheduler=status,
                  pools=lives, queues=depths, checked_at=now)
