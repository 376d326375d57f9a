"""kombu's Redis-through-Sentinel transport with one fix, used for ``sentinel://`` brokers
(celery_config.py names it in ``broker_transport``).

When the master dies, Celery closes the consumer's connection and kombu closes its channels; a
channel closing restores its unacknowledged messages, which makes a new connection pool from the
connection's settings. After a failover that connection is already gone (``client`` is None) and
kombu 5.7 raises AttributeError there, which Celery treats as an unrecoverable error: the worker
exits instead of reconnecting to the new master. Here that case raises redis' ConnectionError,
one of the transport's connection errors, which kombu ignores while closing; the messages are
restored from the new master after the visibility timeout, as for any worker that died.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport.redis import SentinelChannel, SentinelTransport


class Channel(SentinelChannel):
    def _connparams(self, asynchronous: bool = False) -> Any:
        if getattr(self.connection, "client", None) is None:
            raise redis.ConnectionError("the broker connection is closed (a failover?)")
        return super()._connparams(  # type: ignore[no-untyped-call]  # kombu is untyped
            asynchronous=asynchronous)


class Transport(SentinelTransport):
    Channel = Channel
