"""Explicit Redis connections: resolve the URL from settings, connect, report failures in one line."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import redis

from .embedded import EmbeddedRedis
from .errors import RedisUnavailableError
from .settings import Settings, mask_url

T = TypeVar("T")


def resolve_redis_url(settings: Settings) -> str:
    """``REDIS_URL`` when set, else the embedded server's URL (started if needed)."""
    if settings.redis_url:
        return settings.redis_url
    return EmbeddedRedis(settings.effective_data_dir).ensure_running()


def resolve_broker_url(settings: Settings) -> str:
    """``CELERY_BROKER_URL`` when set, else the Redis URL in kombu's spelling."""
    if settings.celery_broker_url:
        return settings.celery_broker_url
    url = resolve_redis_url(settings)
    if url.startswith("unix://"):
        return "redis+socket://" + url[len("unix://"):]
    return url


def connect(url: str, *, decode: bool = True) -> redis.Redis:
    """A client with bounded connect and read timeouts; ``decode=False`` for binary values."""
    if url.startswith("redis+socket://"):
        url = "unix://" + url[len("redis+socket://"):]
    return redis.Redis.from_url(url, decode_responses=decode, socket_connect_timeout=5,
                                socket_timeout=30, health_check_interval=30)


def call(url: str, fn: Callable[[], T]) -> T:
    """Run ``fn``; turn a connection failure into RedisUnavailableError naming the URL."""
    try:
        return fn()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RedisUnavailableError(
            f"Redis at {mask_url(url)} is unreachable: {reason}") from exc
