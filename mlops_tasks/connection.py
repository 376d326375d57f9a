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


def embedded_redis(settings: Settings, role: str) -> EmbeddedRedis:
    """The embedded Redis of ``MLOPS_DATA_DIR``, logged in as ``role`` (a role of
    mlops_tasks/acl.py) when ``MLOPS_REDIS_ACL`` is on; ConfigError when its password is unset."""
    folder = settings.effective_data_dir
    if not settings.redis_acl:
        return EmbeddedRedis(folder)
    from . import acl  # noqa: PLC0415 - only with ACLs on

    return EmbeddedRedis(folder, login=(role, acl.password(settings, role)))


def resolve_redis_url(settings: Settings, start: bool = True, *, role: str) -> str:
    """``REDIS_URL`` when set, else the embedded server's URL, with ``role``'s login when the
    embedded Redis enforces ACLs (``MLOPS_REDIS_ACL``).

    ``start`` (what `mlops` commands do) starts the embedded server when it is not running.
    Without it, the server must already run: the Celery app and library code never start a
    private Redis as a side effect, and say instead how to start one or set ``REDIS_URL``."""
    if settings.redis_url:
        return settings.redis_url
    embedded = embedded_redis(settings, role)
    if start:
        return embedded.ensure_running(acl_file=embedded_acl_file(settings))
    if embedded.is_running():
        return embedded.login_url
    raise RedisUnavailableError(
        f"no Redis: REDIS_URL is not set and the embedded Redis of {embedded.data_dir} is not "
        "running; start it with `mlops redis start` (with the same MLOPS_DATA_DIR), or set "
        "REDIS_URL")


def embedded_acl_file(settings: Settings) -> Callable[[], str] | None:
    """What gives the ACL file an embedded Redis starting now enforces (every role's password
    is needed then, and only then); None with ACLs off."""
    if not settings.redis_acl:
        return None
    from . import acl  # noqa: PLC0415 - only with ACLs on

    return lambda: acl.acl_file(acl.users(acl.passwords(settings)))


def resolve_broker_url(settings: Settings, start: bool = True, *, role: str) -> str:
    """``CELERY_BROKER_URL`` when set, else the Redis URL in kombu's spelling (``start`` and
    ``role`` as in :func:`resolve_redis_url`)."""
    if settings.celery_broker_url:
        return settings.celery_broker_url
    url = resolve_redis_url(settings, start, role=role)
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
