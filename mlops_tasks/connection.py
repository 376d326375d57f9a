"""Explicit Redis connections: resolve the URL from settings, connect, report failures in one
line."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .embedded import EmbeddedRedis
from .errors import RedisUnavailableError
from .settings import Settings, mask_url

T = TypeVar("T")


def resolve_redis_url(settings: Settings, start: bool = True) -> str:
    """``REDIS_URL`` when set, else the embedded server's URL.

    ``start`` (what `mlops` commands do) starts the embedded server when it is not running.
    Without it, the server must already run: the Celery app and library code never start a
    private Redis as a side effect, and say instead how to start one or set ``REDIS_URL``."""
    if settings.redis_url:
        return settings.redis_url
    embedded = EmbeddedRedis(settings.effective_data_dir)
    if start:
        return embedded.ensure_running()
    if embedded.is_running():
        return embedded.url
    raise RedisUnavailableError(
        f"no Redis: REDIS_URL is not set and the embedded Redis of {embedded.data_dir} is not "
        "running; start it with `mlops redis start` (with the same MLOPS_DATA_DIR), or set "
        "REDIS_URL")


def resolve_broker_url(settings: Settings, start: bool = True) -> str:
    """``CELERY_BROKER_URL`` when set, else the Redis URL in kombu's spelling (``start`` as in
    :func:`resolve_redis_url`)."""
    if settings.celery_broker_url:
        return settings.celery_broker_url
    url = resolve_redis_url(settings, start)
    if url.startswith("unix://"):
        return "redis+socket://" + url[len("unix://"):]
    return url


def redis_py_url(url: str) -> str:
    """A Redis URL in redis-py's spelling (kombu's ``redis+socket://`` is ``unix://``)."""
    if url.startswith("redis+socket://"):
        return "unix://" + url[len("redis+socket://"):]
    return url


def connect(url: str, *, decode: bool = True, fail_fast: bool = False) -> redis.Redis:
    """A client with bounded connect and read timeouts; ``decode=False`` for binary values.
    ``fail_fast``: 2 s to connect, 10 s to answer and no retries, for a caller that keeps its
    data and tries again later itself (the client's journal)."""
    if fail_fast:
        return redis.Redis.from_url(redis_py_url(url), decode_responses=decode,
                                    socket_connect_timeout=2, socket_timeout=10,
                                    retry=Retry(NoBackoff(), 0))
    return redis.Redis.from_url(redis_py_url(url), decode_responses=decode,
                                socket_connect_timeout=5, socket_timeout=30,
                                health_check_interval=30)


def call(url: str, fn: Callable[[], T]) -> T:
    """Run ``fn``; turn a connection failure into RedisUnavailableError naming the URL."""
    try:
        return fn()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RedisUnavailableError(
            f"Redis at {mask_url(url)} is unreachable: {reason}") from exc
