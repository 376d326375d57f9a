"""Explicit Redis connections: resolve the URL from settings, connect, report failures in one
line.

The store (registry and metrics) is one of three topologies, each spelt as a URL so that it
travels like any other (to workers, to the client, through ``Services``):

    standalone  ``REDIS_URL`` as given (``redis://``, ``rediss://``, ``unix://``), or the embedded
                Redis
    sentinel    ``MLOPS_REDIS_SENTINELS``: ``redis+sentinel://[login@]h1:p1,h2:p2/<master>/<db>``
                (``rediss+sentinel`` for TLS); :func:`connect` asks the sentinels for the master
                and asks again after a failover
    cluster     ``MLOPS_REDIS_CLUSTER``: ``redis+cluster://[login@]node:port/0`` (or
                ``rediss+cluster``); :func:`connect` makes a cluster client that routes each key
                to its slot's node (every key of a model shares its hash tag, keys.py)

The broker is kombu's: a Redis URL, ``sentinel://h1:p1;sentinel://h2:p2`` with the master's
name in the transport options, or RabbitMQ (``amqp://``). With no ``CELERY_BROKER_URL`` it is
the store's Redis (a sentinel store gives the sentinel broker; a cluster needs a broker of its
own, settings.py says so).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.retry import Retry
from redis.sentinel import Sentinel

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


SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


def topology_url(settings: Settings, url: str | None) -> str | None:
    """``url`` (REDIS_URL) in the spelling of the store's topology (see the module's
    docstring); unchanged for a standalone Redis."""
    if settings.redis_sentinels:
        parts = urlsplit(url or "redis://sentinel-master/0")
        tls = parts.scheme == "rediss"
        login = parts.netloc.rpartition("@")[0]
        query = parse_qsl(parts.query, keep_blank_values=True)
        if settings.redis_sentinel_password:
            query.append(("sentinel_password", settings.redis_sentinel_password))
        db = parts.path.strip("/") or "0"
        return (f"{SENTINEL_SCHEMES[tls]}://{login + '@' if login else ''}"
                f"{settings.redis_sentinels}/{quote(settings.redis_sentinel_master, safe='')}"
                f"/{db}" + (f"?{urlencode(query)}" if query else ""))
    if settings.redis_cluster and url:
        scheme, _, rest = url.partition("://")
        return f"{CLUSTER_SCHEMES[scheme == 'rediss']}://{rest}"
    return url


def topology(url: str) -> str:
    """``standalone``, ``sentinel`` or ``cluster``: what a store URL names."""
    scheme = url.partition("://")[0]
    if scheme in SENTINEL_SCHEMES:
        return "sentinel"
    if scheme in CLUSTER_SCHEMES:
        return "cluster"
    return "standalone"


def resolve_redis_url(settings: Settings, start: bool = True, *, role: str) -> str:
    """``REDIS_URL`` (in its topology's spelling, see :func:`topology_url`) when set or when
    sentinels name the master, else the embedded server's URL, with ``role``'s login when the
    embedded Redis enforces ACLs (``MLOPS_REDIS_ACL``).

    ``start`` (what `mlops` commands do) starts the embedded server when it is not running.
    Without it, the server must already run: the Celery app and library code never start a
    private Redis as a side effect, and say instead how to start one or set ``REDIS_URL``."""
    if settings.redis_url or settings.redis_sentinels:
        return cast("str", topology_url(settings, settings.redis_url))
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
    if topology(url) == "sentinel":
        return sentinel_broker_url(url)
    return url


@dataclass(frozen=True)
class SentinelUrl:
    """The parts of a ``redis+sentinel://`` store URL."""

    tls: bool
    user: str | None = field(repr=False)
    password: str | None = field(repr=False)
    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int
    sentinel_password: str | None = field(repr=False)
    ssl_options: dict[str, str]

    @classmethod
    def parse(cls, url: str) -> SentinelUrl:
        scheme, _, rest = url.partition("://")
        netloc, _, path = rest.partition("/")
        login, _, hosts = netloc.rpartition("@")
        user, _, password = login.partition(":")
        path, _, query_text = path.partition("?")
        master, _, db = path.partition("/")
        query = dict(parse_qsl(query_text))
        return cls(tls=scheme == SENTINEL_SCHEMES[1], user=unquote(user) or None,
                   password=unquote(password) or None,
                   sentinels=tuple((h.rpartition(":")[0], int(h.rpartition(":")[2]))
                                   for h in hosts.split(",")),
                   master=unquote(master), db=int(db or 0),
                   sentinel_password=query.pop("sentinel_password", None),
                   ssl_options={k: v for k, v in query.items() if k.startswith("ssl_")})


def sentinel_broker_url(url: str) -> str:
    """A sentinel store URL as kombu's broker URL: ``sentinel://[login@]host:port/db`` for each
    sentinel, joined by ``;`` (the master's name and the sentinels' password go in the transport
    options, celery_config.py)."""
    parts = SentinelUrl.parse(url)
    login = ""
    if parts.user or parts.password:
        login = f"{quote(parts.user or '', safe='')}:{quote(parts.password or '', safe='')}@"
    return ";".join(f"sentinel://{login}{host}:{port}/{parts.db}"
                    for host, port in parts.sentinels)


def redis_py_url(url: str) -> str:
    """A Redis URL in redis-py's spelling (kombu's ``redis+socket://`` is ``unix://``); the
    topologies' URLs are left to :func:`connect`."""
    if url.startswith("redis+socket://"):
        return "unix://" + url[len("redis+socket://"):]
    return url


def connect(url: str, *, decode: bool = True, fail_fast: bool = False) -> redis.Redis:
    """A client with bounded connect and read timeouts; ``decode=False`` for binary values.
    ``fail_fast``: 2 s to connect, 10 s to answer and no retries, for a caller that keeps its
    data and tries again later itself (the client's journal)."""
    options: dict[str, Any] = (
        {"socket_connect_timeout": 2, "socket_timeout": 10, "retry": Retry(NoBackoff(), 0)}
        if fail_fast else
        {"socket_connect_timeout": 5, "socket_timeout": 30, "health_check_interval": 30})
    kind = topology(url)
    if kind == "sentinel":
        return _sentinel_master(url, decode, options)
    if kind == "cluster":
        scheme, _, rest = url.partition("://")
        options.pop("health_check_interval", None)
        cluster = RedisCluster.from_url(f"{scheme.partition('+')[0]}://{rest}",
                                        decode_responses=decode, **options)
        return cast("redis.Redis", cluster)  # the same commands; pipelines per slot
    return redis.Redis.from_url(redis_py_url(url), decode_responses=decode, **options)


def _sentinel_master(url: str, decode: bool, options: dict[str, Any]) -> redis.Redis:
    """A client of the master the sentinels name now; after a failover its next connection
    asks them again (redis-py's SentinelConnectionPool)."""
    parts = SentinelUrl.parse(url)
    tls: dict[str, Any] = {"ssl": True, **parts.ssl_options} if parts.tls else {}
    sentinel = Sentinel(list(parts.sentinels), sentinel_kwargs={  # type: ignore[no-untyped-call]
        "password": parts.sentinel_password, "socket_timeout": options["socket_timeout"],
        "socket_connect_timeout": options["socket_connect_timeout"], **tls})
    master = sentinel.master_for(  # type: ignore[no-untyped-call]  # redis-py's Sentinel
        parts.master, redis_class=redis.Redis, username=parts.user, password=parts.password,
        db=parts.db, decode_responses=decode, **options, **tls)
    return cast("redis.Redis", master)


WAIT_TIMEOUT_MS = 2000  # how long a write waits for its replicas (MLOPS_REDIS_WAIT_REPLICAS)


class NotReplicatedError(redis.RedisError):
    """Fewer replicas than MLOPS_REDIS_WAIT_REPLICAS confirmed a write in time: it may not
    survive a failover, so it does not count as done (it is retried; writes are idempotent)."""


def wait_replicas(settings: Settings, url: str) -> int:
    """How many replicas a write to the store at ``url`` must reach before it counts as done:
    ``MLOPS_REDIS_WAIT_REPLICAS`` behind Sentinel, else 0 (no failover to survive)."""
    return settings.redis_wait_replicas if topology(url) == "sentinel" else 0


class ReplicaWait:
    """Writes that must reach ``wanted`` replicas (``MLOPS_REDIS_WAIT_REPLICAS``) before they
    count as done: WAIT and ROLE queued behind a pipeline's writes (the same connection, so
    WAIT covers them), then :meth:`check` of the last two replies.

    With fewer replicas connected than wanted (a failover used one up), a write is as safe as
    it can be once each of them has it, and a master with none has no failover to lose it in:
    the next WAIT asks for the replicas ROLE saw (so it does not sit out its timeout for one
    that is not there) and asks for more again as they come back."""

    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        self.expected = wanted

    def add(self, pipe: Any) -> None:
        pipe.execute_command("WAIT", self.expected, WAIT_TIMEOUT_MS)
        pipe.execute_command("ROLE")

    def check(self, acked: Any, role: Any) -> None:
        """Raise NotReplicatedError unless enough replicas have the writes."""
        connected = len(role[2]) if len(role) > 2 else 0  # ROLE of a master: 3 items
        needed = min(self.wanted, connected)
        self.expected = needed
        if int(acked) < needed:
            raise NotReplicatedError(f"{acked} of {needed} replicas confirmed the write "
                                     f"within {WAIT_TIMEOUT_MS} ms")


def is_cluster(client: object) -> bool:
    """Whether a client (typed ``redis.Redis`` everywhere) is in fact a cluster client."""
    return isinstance(client, RedisCluster)


def run_scripts(client: redis.Redis, script: Script,
                calls: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> list[Any]:
    """Run ``script`` once per (keys, args): in one pipeline on a single Redis; one call each on
    a Redis Cluster, whose pipelines refuse scripts (each call goes to its keys' node)."""
    if is_cluster(client):
        return [script(keys=list(k), args=list(a)) for k, a in calls]
    pipe = client.pipeline(transaction=False)
    for k, a in calls:
        script(keys=list(k), args=list(a), client=pipe)
    return list(pipe.execute())


def call(url: str, fn: Callable[[], T]) -> T:
    """Run ``fn``; turn a connection failure into RedisUnavailableError naming the URL."""
    try:
        return fn()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RedisUnavailableError(
            f"Redis at {mask_url(url)} is unreachable: {reason}") from exc
