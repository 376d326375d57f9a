"""Where a client sends: the broker, and the project's Redis (journal, registry), found without
ever starting anything.

Only ``mlops`` commands start the embedded Redis. A client uses it when it already runs and
otherwise reports that it has nowhere to send (``connection.resolve_redis_url`` with
``start=False``: the message says to run ``mlops redis start`` or set REDIS_URL), so a detector's
process never gets a private Redis as a side effect of creating a client:

    broker   the ``broker_url`` argument, CELERY_BROKER_URL, the ``redis_url`` argument,
             REDIS_URL, else the embedded Redis if it runs
    Redis    the ``redis_url`` argument, REDIS_URL (through Sentinel or as a Cluster when the
             settings say so), a broker given explicitly (argument or CELERY_BROKER_URL) when it
             is a Redis, else the embedded Redis if it runs
"""

from __future__ import annotations

from dataclasses import dataclass

from ..connection import redis_py_url, resolve_broker_url, resolve_redis_url, topology_url
from ..roles import DETECTOR
from ..settings import Settings

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+socket://")
_KOMBU_SOCKET = "redis+socket://"
_REDIS_PY_SOCKET = "unix://"


def kombu_url(url: str) -> str:
    """A Redis URL in kombu's spelling (``redis+socket://`` for a Unix socket)."""
    if url.startswith(_REDIS_PY_SOCKET):
        return _KOMBU_SOCKET + url[len(_REDIS_PY_SOCKET):]
    return url


@dataclass(frozen=True)
class Endpoints:
    settings: Settings
    broker_given: str | None = None
    redis_given: str | None = None

    def broker_url(self) -> str:
        """In kombu's spelling; RedisUnavailableError when there is none."""
        given = self.broker_given or self.settings.celery_broker_url or self.redis_given
        if given:
            return kombu_url(given)
        return resolve_broker_url(self.settings, start=False, role=DETECTOR)

    def redis_url(self) -> str:
        """In redis-py's spelling; RedisUnavailableError when there is none."""
        given = self.redis_given or self.settings.redis_url
        if given or self.settings.redis_sentinels:
            # in the spelling of the store's topology (Sentinel, Cluster)
            return redis_py_url(str(topology_url(self.settings, given)))
        # a Redis broker named explicitly comes before an embedded Redis that happens to run:
        # the journal belongs next to the queue its batches go to
        broker = self.broker_given or self.settings.celery_broker_url
        if broker and broker.startswith(_REDIS_SCHEMES):
            return redis_py_url(broker)
        return redis_py_url(resolve_redis_url(self.settings, start=False, role=DETECTOR))
