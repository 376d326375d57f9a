"""`mlops scheduler restart`: fresh worker pool processes and fresh beat processes, no message lost.

Worker pools. Celery's ``pool_restart`` remote command (enabled by ``worker_pool_restarts``)
asks each prefork worker to replace its pool children. billiard replaces a child only after the
task it is running ends, so every task in progress completes and is acknowledged; messages
waiting in the worker's prefetch buffer stay with the parent process, which keeps its broker
connection. The restart is judged by what the worker reports afterwards, not by its reply
("reload started" is also the reply of a pool that cannot restart): a pool is restarted once
none of the child pids it had before is left. A solo or threads pool has no children to
replace and is reported as not restarted (restart that worker's process instead).

Beat. ``keys.BEAT_RESTART`` holds the latest restart request; each beat process notes the
request current when it started and, on its next tick after a new one, releases its leader lock
and heartbeat and re-executes its own command line (same pid, so supervisors see no exit).
Redbeat keeps every job's last run in Redis, so a job that fell due during the restart runs
when the new process takes the lock: beat only publishes ticks, and none is dropped.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis

from . import keys
from .health.beat import BeatInstance, beat_state
from .settings import Settings
from .timefmt import iso

PREFORK = "celery.concurrency.prefork:TaskPool"
POLL_S = 0.5


class Control(Protocol):
    """The part of Celery's ``app.control`` used here."""

    def inspect(self, **kwargs: Any) -> Any: ...
    def broadcast(self, command: str, **kwargs: Any) -> Any: ...


@dataclass
class WorkerRestart:
    worker: str
    pool: str
    restarted: bool
    children_before: list[int]
    children_after: list[int] = field(default_factory=list)
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"worker": self.worker, "pool": self.pool, "restarted": self.restarted,
                "children_before": self.children_before,
                "children_after": self.children_after, "detail": self.detail}


@dataclass
class BeatRestart:
    instance: str
    host: str
    pid: int
    role: str
    restarted: bool
    new_instance: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"instance": self.instance, "host": self.host, "pid": self.pid,
                "role": self.role, "restarted": self.restarted,
                "new_instance": self.new_instance, "detail": self.detail}


@dataclass
class RestartReport:
    requested_at: float
    workers: list[WorkerRestart]
    beats: list[BeatRestart]

    @property
    def ok(self) -> bool:
        """Everything that was running was restarted, and something was running."""
        parts: list[WorkerRestart | BeatRestart] = [*self.workers, *self.beats]
        return bool(parts) and all(p.restarted for p in parts)

    def to_dict(self) -> dict[str, Any]:
        return {"requested_at": iso(self.requested_at), "ok": self.ok,
                "workers": [w.to_dict() for w in self.workers],
                "beats": [b.to_dict() for b in self.beats]}


def restart(control: Control, client: redis.Redis, settings: Settings, timeout_s: float,
            clock: Callable[[], float] = time.time) -> RestartReport:
    """Restart every worker pool and every beat process; wait up to ``timeout_s`` for both."""
    requested_at = clock()
    deadline = time.monotonic() + timeout_s
    inspect_timeout = min(2.0, max(0.5, timeout_s / 10))
    workers = _pools(control, inspect_timeout)
    beats = list(beat_state(client, settings).instances)
    request_beat_restart(client, requested_at)
    prefork = [w.worker for w in workers if w.pool == PREFORK]
    if prefork:
        control.broadcast("pool_restart", arguments={"reload": False}, destination=prefork,
                          reply=True, timeout=inspect_timeout)
    beat_results = [BeatRestart(b.id, b.host, b.pid, b.role, restarted=False) for b in beats]
    while True:
        _check_workers(control, workers, inspect_timeout)
        _check_beats(client, settings, beat_results)
        parts: list[WorkerRestart | BeatRestart] = [*workers, *beat_results]
        pending = [p for p in parts if not p.restarted and not p.detail]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(POLL_S)
    for w in workers:
        if not w.restarted and not w.detail:
            left = sorted(set(w.children_before) & set(w.children_after))
            w.detail = (f"timed out: {len(left)} child(ren) still finishing their task"
                        if w.children_after else "timed out: the worker did not answer")
    for b in beat_results:
        if not b.restarted and not b.detail:
            b.detail = "timed out: no new heartbeat from this process"
    return RestartReport(requested_at, workers, beat_results)


def request_beat_restart(client: redis.Redis, at: float) -> str:
    """Ask every beat process to re-execute itself at its next tick; returns the request id."""
    request_id = uuid.uuid4().hex[:12]
    client.set(keys.BEAT_RESTART, json.dumps({"id": request_id, "at": at}))
    return request_id


def beat_restart_request(client: redis.Redis) -> str | None:
    """The id of the latest restart request (what a beat process compares at each tick)."""
    raw = client.get(keys.BEAT_RESTART)
    if not raw:
        return None
    try:
        return str(json.loads(raw)["id"])
    except (ValueError, KeyError, TypeError):
        return None


def _pools(control: Control, timeout_s: float) -> list[WorkerRestart]:
    stats: dict[str, Any] = control.inspect(timeout=timeout_s).stats() or {}
    out = []
    for name, info in sorted(stats.items()):
        pool = info.get("pool") or {}
        implementation = str(pool.get("implementation", "?"))
        children = [int(p) for p in pool.get("processes") or []]
        item = WorkerRestart(name, implementation, restarted=False, children_before=children)
        if implementation != PREFORK:
            item.detail = (f"not restarted: a {implementation.rsplit(':', 1)[0]} pool has no "
                           "child processes to replace; restart this worker's process")
        out.append(item)
    return out


def _check_workers(control: Control, workers: list[WorkerRestart], timeout_s: float) -> None:
    waiting = [w for w in workers if w.pool == PREFORK and not w.restarted]
    if not waiting:
        return
    stats: dict[str, Any] = control.inspect(
        timeout=timeout_s, destination=[w.worker for w in waiting]).stats() or {}
    for w in waiting:
        info = stats.get(w.worker)
        if info is None:
            continue
        w.children_after = [int(p) for p in (info.get("pool") or {}).get("processes") or []]
        if w.children_after and not set(w.children_before) & set(w.children_after):
            w.restarted = True


def _check_beats(client: redis.Redis, settings: Settings, beats: list[BeatRestart]) -> None:
    if all(b.restarted for b in beats):
        return
    now_running = beat_state(client, settings).instances
    for b in beats:
        if b.restarted:
            continue
        fresh = _successor(b, now_running)
        if fresh is not None:
            b.restarted, b.new_instance = True, fresh.id


def _successor(old: BeatRestart, running: tuple[BeatInstance, ...]) -> BeatInstance | None:
    """The process that replaced ``old``: same host and pid (it re-executed itself), a new
    instance id."""
    for inst in running:
        if (inst.host, inst.pid) == (old.host, old.pid) and inst.id != old.instance:
            return inst
    return None
