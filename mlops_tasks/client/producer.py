"""The producer: numbers each batch, journals it, then sends it to the ingest queue by task name.

One producer per process (a forked child makes its own): its random id names the process to the
workers. Each batch gets the id ``<producer>.<seq>``, numbered per model from 1 in sending order,
so the workers detect duplicates with a watermark per producer (``lua/dedup.lua``). The batch is
written to the journal before it is sent (``ingest/journal.py``): a message the broker loses on
its way is sent again by the monitoring job, and the ingest script forgets the entry when it
applies the batch.

The Celery app and the journal's connection are made at the first send that finds a broker
(see ``endpoints.py``): a client created before Redis runs starts sending once it does. When the
broker is the journal's Redis, the entry and the message go in one transaction (``publish.py``).
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any

import redis
from celery import Celery
from kombu.exceptions import EncodeError

from ..celery_config import producer_config
from ..connection import ReplicaWait, connect, wait_replicas
from ..errors import MlopsError
from ..ingest import journal
from ..queues import EVENTS_QUEUE
from ..settings import Settings
from .endpoints import Endpoints
from .publish import DirectPublisher, same_redis


class UnsendableError(MlopsError):
    """The batch cannot be encoded: sending it again would fail again."""


class Producer:
    def __init__(self, settings: Settings, endpoints: Endpoints) -> None:
        self.settings = settings
        self.endpoints = endpoints
        self.id = secrets.token_hex(6)
        self._seqs: dict[str, itertools.count[int]] = {}
        self._app: Celery | None = None
        self._journal: redis.Redis | None = None
        self._direct: DirectPublisher | None = None
        self._replicas: ReplicaWait | None = None  # a journal entry's replicas (Sentinel)

    def next_batch_id(self, model: str) -> str:
        """``<producer>.<seq>``: this process's messages to a model, numbered from 1 (sender
        thread only). The worker remembers which it applied by a watermark per producer, so
        duplicate detection costs memory per producer, not per message (lua/dedup.lua)."""
        counter = self._seqs.get(model)
        if counter is None:
            counter = self._seqs[model] = itertools.count(1)
        return f"{self.id}.{next(counter)}"

    def send(self, task: str, body: dict[str, Any]) -> None:
        """Number (once), journal, send. UnsendableError when the batch cannot be encoded;
        RedisUnavailableError when there is no broker to send to; any other exception is the
        broker's or the journal's failure (nothing was lost: send it again later)."""
        if body["batch_id"] is None:  # numbered in sending order, once
            body["batch_id"] = self.next_batch_id(body["model"])
        app, journal_client = self._connections()
        try:
            entry = journal.encode(task, body)
            message = None if self._direct is None else self._direct.message(task, body)
        except (TypeError, ValueError) as exc:  # from encoding: Redis raises RedisError
            raise UnsendableError(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        # journal first: a batch lost on its way is sent again (see ingest/journal.py)
        pipe = journal_client.pipeline(transaction=message is not None)
        journal.add_entry(pipe, body["model"], body["batch_id"], entry)
        if message is not None:  # the same Redis: entry and message in one transaction
            pipe.lpush(EVENTS_QUEUE, message)
            pipe.execute()
            return
        if self._replicas:  # Sentinel: the entry must survive a failover (see ingest/journal.py)
            self._replicas.add(pipe)
            *_, acked, role = pipe.execute()
            self._replicas.check(acked, role)
        else:
            pipe.execute()
        try:
            # argsrepr/kwargsrepr: Celery would otherwise render the whole batch as text
            app.send_task(task, args=[body], queue=EVENTS_QUEUE, retry=False,
                          serializer="json", argsrepr="", kwargsrepr="")
        except EncodeError as exc:
            raise UnsendableError(str(exc)[:200]) from exc

    def _connections(self) -> tuple[Celery, redis.Redis]:
        if self._app is None or self._journal is None:
            app = Celery("mlops-client", set_as_current=False)
            conf = producer_config(self.settings, self.endpoints.broker_url())
            # Fail fast when the broker is down: the sender keeps the batch and retries itself,
            # instead of kombu blocking the sender for seconds on each attempt.
            conf["broker_transport_options"] = {**conf["broker_transport_options"],
                                                "max_retries": 0, "socket_connect_timeout": 2}
            app.config_from_object(conf)
            redis_url = self.endpoints.redis_url()
            self._journal = connect(redis_url, decode=False, fail_fast=True)
            wanted = wait_replicas(self.settings, redis_url)
            self._replicas = ReplicaWait(wanted) if wanted else None
            self._direct = DirectPublisher(app, EVENTS_QUEUE) if same_redis(
                self.endpoints.broker_url(), redis_url, conf["broker_transport_options"]) \
                else None
            self._app = app
        return self._app, self._journal
