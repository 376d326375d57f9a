"""Queue depth: messages waiting in each queue, and messages taken but not yet acknowledged.

With kombu's Redis transport a queue is a LIST named after the queue, and every message a
worker has taken but not acknowledged (late acks: until its task ends) sits in the ``unacked``
HASH until then (``unacked_index`` orders it by time, for redelivery after the visibility
timeout).

With RabbitMQ a passive declaration of each queue answers its ready messages; the messages
delivered and not yet acknowledged are not told over AMQP (RabbitMQ's management API or its
Prometheus plugin have them), so ``unacked`` is None there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from ..connection import connect, resolve_broker_url
from ..queues import ALL_QUEUES
from ..roles import OPERATOR
from ..settings import AMQP_URL_SCHEMES, Settings

REDIS_SCHEMES = ("redis://", "rediss://", "redis+socket://", "unix://")
KOMBU_UNACKED = "unacked"  # kombu's default ``unacked_key``; celery_config does not change it


@dataclass(frozen=True)
class QueueDepths:
    waiting: dict[str, int]  # queue -> messages not yet taken
    unacked: int | None  # None: the broker does not say (RabbitMQ over AMQP)

    @property
    def total_waiting(self) -> int:
        return sum(self.waiting.values())

    def to_dict(self) -> dict[str, Any]:
        return {"waiting": dict(self.waiting), "unacked": self.unacked}


class AmqpBroker:
    """A RabbitMQ broker, asked over AMQP (kombu) with a short connection per question."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url
        self.timeout_s = timeout_s

    def _connection(self) -> Any:
        from kombu.connection import Connection  # noqa: PLC0415 - only for a RabbitMQ broker

        return Connection(self.url, connect_timeout=self.timeout_s)  # type: ignore[no-untyped-call]

    def ping(self) -> bool:
        with self._connection() as conn:
            conn.ensure_connection(max_retries=1, timeout=self.timeout_s)
        return True

    def depths(self, queues: Sequence[str]) -> QueueDepths:
        """Ready messages per queue by passive declaration (0 for a queue not declared yet:
        a failed passive declaration closes its channel, so each queue gets its own)."""
        from amqp.exceptions import NotFound  # type: ignore[import-untyped]  # noqa: PLC0415

        waiting = {}
        with self._connection() as conn:
            for queue in queues:
                channel = conn.channel()
                try:
                    waiting[queue] = int(channel.queue_declare(queue, passive=True).message_count)
                except NotFound:
                    waiting[queue] = 0
                finally:
                    if channel.is_open:
                        channel.close()
        return QueueDepths(waiting=waiting, unacked=None)


Broker = redis.Redis | AmqpBroker  # what queue_depths and the readiness probe ask


def broker_for(url: str, **redis_options: Any) -> Broker | None:
    """The broker of ``url`` as the health readers ask it: a Redis client, a RabbitMQ
    broker, or None (Sentinel: its master is reached through the store's own readers)."""
    if url.startswith(REDIS_SCHEMES):
        return connect(url, **redis_options)
    if url.partition("://")[0] in AMQP_URL_SCHEMES:
        return AmqpBroker(url)
    return None


def queue_depths(broker: Broker, queues: Sequence[str] = ALL_QUEUES,
                 unacked_key: str = KOMBU_UNACKED) -> QueueDepths:
    """LLEN of each queue and HLEN of kombu's unacked hash, in one round trip; with RabbitMQ,
    :meth:`AmqpBroker.depths`."""
    if isinstance(broker, AmqpBroker):
        return broker.depths(queues)
    pipe = broker.pipeline(transaction=False)
    for q in queues:
        pipe.llen(q)
    pipe.hlen(unacked_key)
    *lengths, unacked = pipe.execute()
    return QueueDepths(waiting={q: int(n) for q, n in zip(queues, lengths, strict=True)},
                       unacked=int(unacked))


def broker_client(settings: Settings) -> Broker | None:
    """The broker (``CELERY_BROKER_URL``, else ``REDIS_URL``) as :func:`broker_for` gives it."""
    return broker_for(resolve_broker_url(settings, role=OPERATOR))
