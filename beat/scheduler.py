"""Beat's scheduler: celery-redbeat (schedule and leader lock in Redis) plus heartbeats.

Two or more beat processes can run: the first takes redbeat's lock and schedules; the others
wait for the lock and take over within MLOPS_BEAT_LOCK_TIMEOUT_S + MLOPS_BEAT_MAX_INTERVAL_S of
the leader's death. Every process, leader or standby, keeps a heartbeat key with a TTL, so
`mlops scheduler status` can tell who leads and who waits. Redbeat keeps each entry's last run
in Redis, so a job that missed its slots while everything was down runs once on recovery.

`mlops scheduler restart` leaves a request in Redis (mlops_tasks/restart.py); at its next tick a
beat process releases its lock and heartbeat and re-executes its own command line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import time
import uuid
from typing import Any, cast

import redis
from redbeat import RedBeatScheduler

from mlops_tasks import keys
from mlops_tasks.connection import connect, resolve_redis_url
from mlops_tasks.health.beat import forget_instance, record_heartbeat
from mlops_tasks.jobs import JOBS
from mlops_tasks.restart import beat_restart_request
from mlops_tasks.roles import WORKER
from mlops_tasks.settings import Settings

log = logging.getLogger("mlops.scheduler")

REDBEAT_CLIENT_ATTR = "redbeat_redis"  # where redbeat's get_redis(app) caches its client


def connect_redbeat(app: Any) -> redis.Redis:
    """Redbeat's Redis client, made from the settings rather than from ``redbeat_redis_url``,
    which the app's conf holds masked (it is visible to anyone with broker access). Redbeat
    finds the client cached on the app and never reads the URL."""
    client = getattr(app, REDBEAT_CLIENT_ATTR, None)
    if client is None:
        client = connect(resolve_redis_url(Settings.from_env(), start=False, role=WORKER))
        setattr(app, REDBEAT_CLIENT_ATTR, client)
    return client


class MlopsScheduler(RedBeatScheduler):  # type: ignore[misc]  # redbeat is untyped (Any)
    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        self._client: redis.Redis = connect_redbeat(app)
        super().__init__(app, *args, **kwargs)
        self.instance_id = uuid.uuid4().hex[:10]
        self._started_at = time.time()
        self._announced = False
        self._stop = threading.Event()
        self._restart_seen = self._restart_request()
        self._beating: threading.Thread | None = None
        if not kwargs.get("lazy"):  # celery also builds a lazy instance just to print its info
            self._beating = threading.Thread(target=self._heartbeat_loop,
                                             name="mlops-beat-heartbeat", daemon=True)
            self._beating.start()

    @property
    def role(self) -> str:
        return "leader" if self.lock is not None else "standby"

    def _heartbeat_ttl_s(self) -> int:
        return int(max(3 * self.max_interval, 10))

    def _heartbeat(self) -> None:
        now = time.time()
        doc = {"id": self.instance_id, "host": socket.gethostname(), "pid": os.getpid(),
               "role": self.role, "started_at": self._started_at, "at": now}
        record_heartbeat(self._client, doc, self._heartbeat_ttl_s(), self.role == "leader")

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(min(1.0, self.max_interval / 2)):
            try:
                self._heartbeat()
            except redis.RedisError as exc:
                log.warning("beat heartbeat failed", extra={"error": str(exc)})

    def tick(self, *args: Any, **kwargs: Any) -> float:
        request = self._restart_request()
        if request is not None and request != self._restart_seen:
            self._reexec(request)
        interval = super().tick(*args, **kwargs)
        if not self._announced:
            self._announced = True
            self._heartbeat()
            log.info("ML monitoring scheduler initialized (jobs_scheduled: %s, "
                     "models_monitored: %s)", len(JOBS), self._models_monitored(),
                     extra={"instance": self.instance_id,
                            "jobs": [j.name for j in JOBS]})
        return float(interval)

    def _restart_request(self) -> str | None:
        try:
            return beat_restart_request(self._client)
        except redis.RedisError:
            return None  # redbeat's own tick reports the outage

    def _reexec(self, request: str) -> None:
        """Release the lock and heartbeat, then become a fresh process with the same pid and
        command line (``sys.orig_argv``: also right when started with ``python -m``)."""
        log.info("scheduler restarting on request", extra={"request": request,
                                                            "instance": self.instance_id})
        self.close()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])  # noqa: S606 - our own argv

    def _models_monitored(self) -> int | str:
        """Models deployed to production; a registry that cannot be read must not stop beat."""
        try:
            names = cast("set[str]", self._client.smembers(keys.MODELS))
            pipe = self._client.pipeline(transaction=False)
            for name in names:
                pipe.hexists(keys.deployments(name), "production")
            return sum(1 for found in pipe.execute() if found)
        except redis.RedisError as exc:
            log.warning("registry unreadable", extra={"error": str(exc)})
            return "unknown"

    def close(self) -> None:
        self._stop.set()
        if self._beating is not None and self._beating is not threading.current_thread():
            self._beating.join(5)  # a heartbeat written after the delete would outlive us
        with contextlib.suppress(redis.RedisError):  # gone with Redis: it expires by itself
            forget_instance(self._client, self.instance_id, self.role == "leader")
        super().close()
