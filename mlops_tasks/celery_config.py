"""Celery settings shared by the workers and the thin client: JSON only, late acks, routes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from .jobs import JOBS
from .queues import ALL_QUEUES, MONITORING_QUEUE, ROUTES
from .settings import AMQP_URL_SCHEMES, SENTINEL_URL_SCHEME, Settings

if TYPE_CHECKING:
    from kombu.entity import Queue

# Soft shutdown: a cold shutdown (SIGQUIT, a second Ctrl-C, or SIGTERM with Celery's
# REMAP_SIGTERM=SIGQUIT) first waits this long for the tasks in progress. An ingest batch
# (milliseconds) or a webhook attempt (at most MLOPS_WEBHOOK_TIMEOUT_S, 10 s by default) ends and
# is acknowledged; a job still running then is cancelled unacknowledged, kombu puts its message
# back on the queue and another worker runs the job from the start (a job is safe to run again).
# Without it (Celery's default, 0) a cold shutdown cancels even a batch about to finish. It fits
# in Kubernetes' default 30 s between SIGTERM and SIGKILL. A warm shutdown (plain SIGTERM) still
# waits for every task, however long.
SOFT_SHUTDOWN_S = 10.0

# Tasks that are not scheduled jobs (ingest, webhook deliveries) get this hard limit; jobs carry
# their own from their table entry. A batch is bounded in size (MLOPS_* message limits), so one
# that runs this long is stuck, not slow.
DEFAULT_TIME_LIMIT_S = 300

JSON_ONLY = {
    "task_serializer": "json",
    "result_serializer": "json",
    "accept_content": ["json"],
    "result_accept_content": ["json"],
    "event_serializer": "json",
}


SENTINEL_TRANSPORT = "mlops_tasks.sentinel_transport:Transport"


def broker_kind(url: str) -> str:
    """``amqp`` (RabbitMQ), ``sentinel`` (kombu's Redis through Sentinel) or ``redis``."""
    scheme = url.partition("://")[0].lower()
    if scheme in AMQP_URL_SCHEMES:
        return "amqp"
    if scheme == SENTINEL_URL_SCHEME:
        return "sentinel"
    return "redis"


def transport_options(settings: Settings, broker_url: str) -> dict[str, Any]:
    """Redis transport: a message taken by a worker that died is delivered again once
    ``visibility_timeout`` has passed; workers look for such messages every few seconds
    (kombu's default scans only every 100 s). Through Sentinel, also the master's name and the
    sentinels' password.

    RabbitMQ: publisher confirms, so a send returns once the broker has the message (in a
    quorum queue: on a majority of its nodes); a message taken by a worker that died goes back
    to its queue when the worker's connection closes, with no visibility timeout."""
    kind = broker_kind(broker_url)
    if kind == "amqp":
        return {"confirm_publish": True}
    options: dict[str, Any] = {
        "visibility_timeout": settings.visibility_timeout_s,
        "unacked_restore_interval": max(1, min(10, settings.visibility_timeout_s // 2)),
        "unacked_restore_throttle": 1,
    }
    if kind == "sentinel":
        options["master_name"] = settings.redis_sentinel_master
        if settings.redis_sentinel_password:
            options["sentinel_kwargs"] = {"password": settings.redis_sentinel_password}
    return options


def result_backend(broker_url: str, store_url: str) -> str:
    """Where job results go (``mlops run --wait`` reads them): the broker's Redis; with
    RabbitMQ the store's Redis, or RabbitMQ itself (``rpc://``) when the store is a cluster
    (Celery's Redis backend has no cluster mode)."""
    if broker_kind(broker_url) != "amqp":
        return broker_url
    from .connection import sentinel_broker_url, topology  # noqa: PLC0415 - imports redis-py

    kind = topology(store_url)
    if kind == "cluster":
        return "rpc://"
    if kind == "sentinel":
        return sentinel_broker_url(store_url)
    return store_url.replace("unix://", "socket://", 1)


def without_password(url: str) -> tuple[str, str | None]:
    """The URL without its password, and the password (from the userinfo or a ``password=``
    query parameter, percent-decoded). Celery reports its configuration to anyone with broker
    access (``celery inspect conf``, Flower's API) and masks a URL's userinfo password but not a
    query parameter; ``broker_password`` and ``redis_password`` it masks whole.

    A Unix socket URL keeps its password: kombu takes a socket's credentials from its URL only
    (``broker_password`` is ignored there), and Celery masks that userinfo password too."""
    if url.startswith(("redis+socket://", "socket://", "unix://")):
        return url, None
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url, None
    query = parse_qsl(parts.query, keep_blank_values=True)
    for key, value in query:
        if key == "password":
            password = value
    if password is None:
        return url, None
    netloc = parts.netloc.rpartition("@")[2]
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    rest = urlencode([(k, v) for k, v in query if k != "password"])
    bare = f"{parts.scheme}://{netloc}{parts.path}" + (f"?{rest}" if rest else "")
    return bare + (f"#{parts.fragment}" if parts.fragment else ""), unquote(password)


def task_queues(settings: Settings, broker_url: str) -> tuple[Queue, ...]:
    """The three queues, declared as Celery would create them on first use (a direct exchange
    of the queue's name, bound with that routing key), so that a worker started without ``-Q``
    consumes all of them and producers without this declaration reach the same queues. On
    RabbitMQ they are durable, of ``MLOPS_AMQP_QUEUE_TYPE`` (quorum: replicated, and a
    message is confirmed once a majority has it) behind topic exchanges; every process declares
    them alike."""
    from kombu.entity import Exchange, Queue  # noqa: PLC0415 - only a worker configuration needs it

    amqp = broker_kind(broker_url) == "amqp"
    arguments = {"x-queue-type": settings.amqp_queue_type} if amqp else None
    # RabbitMQ: topic exchanges, which Celery's native delayed delivery (retries with a
    # countdown, on quorum queues) requires; the routing key is the queue's name either way
    kind = "topic" if amqp else "direct"
    # kombu's constructors are unannotated
    return tuple(Queue(name, Exchange(name, type=kind),  # type: ignore[no-untyped-call]
                       routing_key=name, durable=True, queue_arguments=arguments)
                 for name in ALL_QUEUES)


def task_routes() -> dict[str, dict[str, str]]:
    """Each scheduled job to its queue (from the job table), the other tasks by name pattern."""
    return {**ROUTES, **{job.task: {"queue": job.queue} for job in JOBS}}


def producer_config(settings: Settings, broker_url: str) -> dict[str, Any]:
    """What a process that only sends tasks needs."""
    options = transport_options(settings, broker_url)
    kind = broker_kind(broker_url)
    queues = {"task_queues": task_queues(settings, broker_url),
              "task_default_queue_type": settings.amqp_queue_type} if kind == "amqp" else {}
    if kind == "sentinel":
        queues["broker_transport"] = SENTINEL_TRANSPORT
    broker_url, broker_password = without_password(broker_url)
    return {
        **JSON_ONLY,
        **queues,
        "broker_url": broker_url,
        "broker_password": broker_password,
        "task_routes": task_routes(),
        "task_default_queue": MONITORING_QUEUE,
        "broker_transport_options": options,
        "broker_connection_retry_on_startup": True,
        "enable_utc": True,
        "timezone": "UTC",
    }


def worker_config(settings: Settings, broker_url: str, backend_url: str) -> dict[str, Any]:
    backend_url, backend_password = without_password(backend_url)
    return {
        **producer_config(settings, broker_url),
        "result_backend": backend_url,
        "redis_password": backend_password,
        "result_backend_transport_options": {
            "visibility_timeout": settings.visibility_timeout_s,
            **({k: v for k, v in transport_options(settings, backend_url).items()
                if k in ("master_name", "sentinel_kwargs")})},
        "result_expires": 86400,
        # A task is acknowledged after it ran; a worker that dies mid-task leaves the message
        # to be delivered again (ingest is idempotent, so it is never counted twice).
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_time_limit": DEFAULT_TIME_LIMIT_S,
        # On a lost broker connection, cancel the acks_late tasks in progress. The worker
        # reconnects on a new channel; a message taken on the old one can no longer be
        # acknowledged, so it is delivered again (Redis: after the visibility timeout) whatever
        # the task does. Left running, the task would run twice, perhaps side by side with its
        # redelivery. And here the broker is the Redis every task writes to, so a task in
        # progress is failing anyway. Cancelling is safe: an ingest batch is applied by one Lua
        # script behind a done marker (idempotent), and a job run again recomputes its result.
        # Celery 6 makes this the default; Celery 5 warns on every connection loss until set.
        # The price: the cancelled child gets SIGTERM, so a job records no outcome and its
        # per-model locks stay until they expire (LOCK_TTL_S, 10 min: a rerun within that time
        # reports those models as already_running), and a webhook cancelled mid-POST may be
        # delivered twice (receivers dedupe by alert id and timestamp).
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_soft_shutdown_timeout": SOFT_SHUTDOWN_S,
        # A child whose resident memory grew past half its address-space ceiling (set in
        # workers/app.py) is replaced after its task: one big batch leaves no bloated child.
        "worker_max_memory_per_child": settings.worker_max_memory_mb * 1024 // 2,
        "worker_prefetch_multiplier": 4,
        # `mlops scheduler restart` replaces pool children through the pool_restart command
        # (mlops_tasks/restart.py); modules are never reloaded.
        "worker_pool_restarts": True,
        # Flower and `celery events` see every task.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        # `celery -A mlops_tasks.workers.app worker` without -Q consumes every queue.
        "task_queues": task_queues(settings, broker_url),
        "task_create_missing_queues": True,
        "task_default_queue": MONITORING_QUEUE,
    }
