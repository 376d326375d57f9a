"""Queue depth: messages waiting in each queue, and messages taken but not yet acknowledged.

With kombu's Redis transport a queue is a LIST named after the queue, and every message a
worker has taken but not acknowledged (late acks: until its task ends) sits in the ``unacked``
HASH until then (``unacked_index`` orders it by time, for redelivery after the visibility
timeout).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from ..connection import connect, resolve_broker_url
from ..queues import ALL_QUEUES
from ..roles import OPERATOR
from ..settings import Settings

REDIS_SCHEMES = ("redis://", "rediss://", "redis+socket://", "unix://")
KOMBU_UNACKED = "unacked"  # kombu's default ``unacked_key``; celery_config does not change it


@dataclass(frozen=True)
class QueueDepths:
    waiting: dict[str, int]  # queue -> messages not yet taken
    unacked: int

    @property
    def total_waiting(self) -> int:
        return sum(self.waiting.values())

    def to_dict(self) -> dict[str, Any]:
        return {"waiting": dict(self.waiting), "unacked": self.unacked}


def queue_depths(broker: redis.Redis, queues: Sequence[str] = ALL_QUEUES,
                 unacked_key: str = KOMBU_UNACKED) -> QueueDepths:
    """LLEN of each queue and HLEN of kombu's unacked hash, in one round trip."""
    pipe = broker.pipeline(transaction=False)
    for q in queues:
        pipe.llen(q)
    pipe.hlen(unacked_key)
    *lengths, unacked = pipe.execute()
    return QueueDepths(waiting={q: int(n) for q, n in zip(queues, lengths, strict=True)},
                       unacked=int(unacked))


def broker_client(settings: Settings) -> redis.Redis | None:
    """A client of the broker's Redis (``CELERY_BROKER_URL``, else ``REDIS_URL``), or None when
    the broker is not Redis."""
    url = resolve_broker_url(settings, role=OPERATOR)
    if not url.startswith(REDIS_SCHEMES):
        return None
    return connect(url)
