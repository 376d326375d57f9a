"""Worker liveness per pool: is some worker consuming every queue of the pool?

The library never imports the workers package: the caller passes the pools (name -> queues)
and a callable that asks the workers which queues they consume, such as
``celery_active_queues(app, timeout_s)`` built on the Celery app it has.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ActiveQueues = Callable[[], Mapping[str, Sequence[str]]]
"""Worker host name -> names of the queues it consumes, for every worker that answered."""


def celery_active_queues(celery_app: Any, timeout_s: float) -> ActiveQueues:
    """Ask through Celery's remote control (``inspect().active_queues()``); workers that do not
    answer within ``timeout_s`` are missing from the result."""
    def ask() -> dict[str, list[str]]:
        replies = celery_app.control.inspect(timeout=timeout_s).active_queues() or {}
        return {host: [q["name"] for q in queues] for host, queues in replies.items()}
    return ask


@dataclass(frozen=True)
class PoolLiveness:
    name: str
    queues: tuple[str, ...]
    workers: tuple[str, ...]  # hosts consuming every queue of the pool

    @property
    def alive(self) -> bool:
        return bool(self.workers)

    @property
    def detail(self) -> str:
        queues = ", ".join(self.queues)
        if self.workers:
            return f"{queues} consumed by {', '.join(self.workers)}"
        return f"no worker consumes {queues} (start `mlops worker --pool {self.name}`)"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "queues": list(self.queues), "workers": list(self.workers),
                "alive": self.alive}


def pool_liveness(pools: Mapping[str, Sequence[str]],
                  consumed: Mapping[str, Sequence[str]]) -> tuple[PoolLiveness, ...]:
    """Which hosts of ``consumed`` (host -> queues) serve each pool (pure)."""
    return tuple(PoolLiveness(name=name, queues=tuple(queues),
                              workers=tuple(sorted(h for h, qs in consumed.items()
                                                   if set(queues) <= set(qs))))
                 for name, queues in pools.items())


def worker_liveness(pools: Mapping[str, Sequence[str]],
                    active_queues: ActiveQueues) -> tuple[PoolLiveness, ...]:
    """Ask the workers once; a failed question counts as no worker answering."""
    try:
        consumed = active_queues()
    except Exception:  # noqa: BLE001 - an unreachable broker means no worker is seen
        consumed = {}
    return pool_liveness(pools, consumed)
