"""The batch journal: at-least-once delivery that does not depend on the broker.

Celery's Redis transport pops a message (BRPOP) before it records it as unacknowledged, so a
worker killed in between loses that message (kombu #305, celery #7950). To close the gap, the
client writes every batch to a journal in Redis before sending it; the ingest script removes the
entry in the same atomic step that applies the batch. Entries still there after
``replay_after_s`` are sent again by ``replay`` (run with the monitoring job): ingest is
idempotent, so a batch that was merely slow is never counted twice.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import redis

from .. import keys

log = logging.getLogger("mlops.ingest")

ENTRY_TTL_S = 7 * 86400
REPLAY_BATCH = 500


def record(client: redis.Redis, model: str, batch_id: str, task: str, body: dict[str, Any],
           now: float | None = None) -> None:
    """Journal a batch before it is sent (one round trip)."""
    pipe = client.pipeline(transaction=False)
    pipe.set(keys.journal_entry(model, batch_id),
             json.dumps({"task": task, "body": body}, separators=(",", ":")), ex=ENTRY_TTL_S)
    pipe.zadd(keys.journal(model), {batch_id: time.time() if now is None else now})
    pipe.execute()


def forget_commands(model: str, batch_id: str) -> list[list[Any]]:
    """Commands that remove a batch from the journal, for the script that applies it."""
    return [["DEL", keys.journal_entry(model, batch_id)],
            ["ZREM", keys.journal(model), batch_id]]


def forget(client: redis.Redis, model: str, batch_id: str) -> None:
    pipe = client.pipeline(transaction=True)
    for cmd in forget_commands(model, batch_id):
        pipe.execute_command(*cmd)
    pipe.execute()


def replay(client: redis.Redis, models: list[str], replay_after_s: float,
           send: Callable[[str, dict[str, Any]], None],
           clock: Callable[[], float] = time.time) -> dict[str, int]:
    """Send again every journaled batch older than ``replay_after_s``; returns counts per
    model. Each replayed entry's time is reset, so it is not sent again before the next
    period."""
    now = clock()
    replayed: dict[str, int] = {}
    for model in models:
        old = client.zrangebyscore(keys.journal(model), 0, now - replay_after_s,
                                   start=0, num=REPLAY_BATCH)
        for raw_id in old:
            batch_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
            raw = client.get(keys.journal_entry(model, batch_id))
            if raw is None:  # expired: nothing left to send
                client.zrem(keys.journal(model), batch_id)
                continue
            entry = json.loads(raw)
            send(entry["task"], entry["body"])
            client.zadd(keys.journal(model), {batch_id: now})
            replayed[model] = replayed.get(model, 0) + 1
    if replayed:
        log.warning("journaled batches sent again", extra={"replayed": replayed,
                                                           "older_than_s": replay_after_s})
    return replayed


def pending(client: redis.Redis, model: str) -> int:
    return int(client.zcard(keys.journal(model)))
