"""One round trip per batch: its journal entry and its Celery message in one Redis transaction.

Celery's ``send_task`` costs the sender thread about 230 µs of CPU per message (kombu builds a
Redis client for every publish and declares the queue again), and a round trip of its own after
the journal's. When the broker is the journal's Redis (one standalone server, the usual
deployment), the producer instead writes the journal entry and pushes the message in one
MULTI/EXEC: the journal still comes first, and a message is never on the queue without its entry.

The message is the one Celery's Redis transport pushes, made by Celery and kombu themselves: the
task message of protocol 2 from ``app.amqp.create_task_message``, the body serialized by kombu's
JSON serializer, in the envelope of kombu's virtual transport (``Channel.prepare_message`` and
``basic_publish`` in ``kombu/transport/virtual/base.py``: the body in base64, the delivery info,
a delivery tag), LPUSHed onto the queue's list as ``kombu/transport/redis.py`` ``_put`` does.
``tests/test_client.py`` checks it against what ``send_task`` pushes. Any other broker (another
server, Sentinel, Cluster, a key prefix) goes through ``send_task``.
"""

from __future__ import annotations

import base64
import os
import socket
import uuid
from typing import Any

from celery import Celery
from kombu.serialization import dumps as serialize
from kombu.utils.json import dumps as json_dumps

from ..connection import redis_py_url, topology


def same_redis(broker_url: str, redis_url: str, transport_options: dict[str, Any]) -> bool:
    """Whether the queue and the journal live on one standalone Redis, with the queue under its
    own name (no key prefix), so that one transaction can write both."""
    return topology(redis_url) == "standalone" and topology(broker_url) == "standalone" and \
        redis_py_url(broker_url) == redis_py_url(redis_url) and \
        not transport_options.get("global_keyprefix")


class DirectPublisher:
    """Task messages for ``queue`` exactly as Celery's Redis transport writes them."""

    def __init__(self, app: Celery, queue: str) -> None:
        self.app = app
        self.queue = queue
        self.origin = f"gen{os.getpid()}@{socket.gethostname()}"

    def message(self, task: str, body: dict[str, Any]) -> str:
        """The JSON text to LPUSH onto the queue; ValueError/TypeError when ``body`` is not
        JSON (as ``send_task`` would raise)."""
        task_id = str(uuid.uuid4())
        # argsrepr/kwargsrepr: Celery would otherwise render the whole batch as text;
        # ignore_result None: the task's own setting applies (an explicit False would store
        # every batch's result)
        made = self.app.amqp.create_task_message(
            task_id, task, [body], {}, origin=self.origin, argsrepr="", kwargsrepr="",
            ignore_result=None)
        content_type, content_encoding, data = serialize(  # type: ignore[no-untyped-call]  # unannotated in kombu
            made.body, serializer="json")
        raw = data.encode(content_encoding) if isinstance(data, str) else data
        properties = {**made.properties, "reply_to": self.app.thread_oid,
                      "argsrepr": "", "kwargsrepr": "",
                      "delivery_mode": 2,
                      "delivery_info": {"exchange": "", "routing_key": self.queue},
                      "priority": 0, "body_encoding": "base64",
                      "delivery_tag": str(uuid.uuid4())}
        rest = str(json_dumps({  # type: ignore[no-untyped-call]  # unannotated in kombu
            "content-encoding": content_encoding, "content-type": content_type,
            "headers": made.headers, "properties": properties}))
        # the body is base64, which needs no escaping in JSON: spliced in, not scanned again
        encoded = base64.b64encode(raw).decode("ascii")
        return '{"body": "' + encoded + '", ' + rest[1:]
