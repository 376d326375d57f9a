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
from typing import Any, cast

import numpy as np
import redis

from .. import keys
from . import events
from .store import AggregateStore

log = logging.getLogger("mlops.ingest")

ENTRY_TTL_S = 7 * 86400
REPLAY_BATCH = 500


def encode(task: str, body: dict[str, Any]) -> bytes:
    """A JSON header, a newline, then the float columns as raw float64 (exact, and 20x cheaper
    than writing floats as JSON text)."""
    header: dict[str, Any] = {}
    blobs: list[bytes] = []
    offset = 0
    for key, value in body.items():
        if isinstance(value, list) and value and all(type(x) is float for x in value):
            arr = np.asarray(value, dtype="<f8")
            blobs.append(arr.tobytes())
            header[key] = {"f64": [offset, arr.size]}
            offset += arr.size
            continue
        header[key] = value
    head = json.dumps({"task": task, "body": header}, separators=(",", ":")).encode()
    return head + b"\n" + b"".join(blobs)


def decode(raw: bytes) -> tuple[str, dict[str, Any]]:
    """(task, body) of a journal entry; ValueError when the entry is not one."""
    if len(raw) > events.MAX_MESSAGE_BYTES:
        raise events.LimitError(f"journal entry: {len(raw)} bytes, more than the limit of "
                                f"{events.MAX_MESSAGE_BYTES}")
    head, _, blob = raw.partition(b"\n")
    try:
        doc = json.loads(head)
        floats = np.frombuffer(blob[:len(blob) - len(blob) % 8], dtype="<f8")
        body = {}
        for key, value in doc["body"].items():
            if isinstance(value, dict) and set(value) == {"f64"}:
                start, count = (int(x) for x in value["f64"])
                body[key] = floats[start:start + count].tolist()
            else:
                body[key] = value
        return doc["task"], body
    except RecursionError:
        raise events.LimitError(
            f"journal entry: nested deeper than {events.MAX_MESSAGE_DEPTH} levels") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise events.BatchError(f"journal entry: unreadable ({type(exc).__name__})") from None


def record(client: redis.Redis, model: str, batch_id: str, task: str, body: dict[str, Any],
           now: float | None = None) -> None:
    """Journal a batch before it is sent (one round trip)."""
    pipe = client.pipeline(transaction=False)
    add_entry(pipe, model, batch_id, encode(task, body), now)
    pipe.execute()


def add_entry(pipe: Any, model: str, batch_id: str, entry: bytes,
              now: float | None = None) -> None:
    """Queue the journal writes of a batch (its ``encode``d entry) on a pipeline: the client's
    producer sends the batch's message in the same transaction (client/publish.py)."""
    pipe.set(keys.journal_entry(model, batch_id), entry, ex=ENTRY_TTL_S)
    pipe.zadd(keys.journal(model), {batch_id: time.time() if now is None else now})


def forget(client: redis.Redis, model: str, batch_id: str) -> None:
    """Remove a batch from the journal (the ingest script does it itself when it applies one)."""
    pipe = client.pipeline(transaction=True)
    pipe.delete(keys.journal_entry(model, batch_id))
    pipe.zrem(keys.journal(model), batch_id)
    pipe.execute()


def replay(raw: redis.Redis, models: list[str], replay_after_s: float,
           send: Callable[[str, dict[str, Any]], None],
           clock: Callable[[], float] = time.time) -> dict[str, int]:
    """Send again every journaled batch older than ``replay_after_s``; returns counts per
    model. Each replayed entry's time is reset, so it is not sent again before the next
    period. ``raw`` must not decode responses (entries are binary)."""
    client = raw
    now = clock()
    replayed: dict[str, int] = {}
    rejected: dict[str, int] = {}
    for model in models:
        old = cast("list[bytes | str]", client.zrangebyscore(
            keys.journal(model), 0, now - replay_after_s, start=0, num=REPLAY_BATCH))
        for raw_id in old:
            batch_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
            entry = cast("bytes | None", client.get(keys.journal_entry(model, batch_id)))
            if entry is None:  # expired: nothing left to send
                client.zrem(keys.journal(model), batch_id)
                continue
            try:
                task, body = decode(entry)
                events.check_message(task, body)
            except ValueError as exc:  # BatchError, LimitError: never sent again
                _reject(client, model, batch_id, entry, str(exc), now)
                rejected[model] = rejected.get(model, 0) + 1
                continue
            send(task, body)
            # XX: if the batch was applied meanwhile, its entry is gone and must stay gone
            client.zadd(keys.journal(model), {batch_id: now}, xx=True)
            replayed[model] = replayed.get(model, 0) + 1
    if replayed:
        log.warning("journaled batches sent again", extra={"replayed": replayed,
                                                           "older_than_s": replay_after_s})
    if rejected:
        log.warning("journaled batches dead-lettered instead of sent again",
                    extra={"rejected": rejected})
    return replayed


def _reject(client: redis.Redis, model: str, batch_id: str, raw: bytes, reason: str,
            now: float) -> None:
    """Dead-letter a journal entry that fails validation (one summary letter) and forget it,
    in one transaction."""
    letter = {"at": now, "model": model, "batch_id": batch_id, "index": None,
              "reason": f"journal replay refused: {reason}"[:300], "summary": True,
              "events": None, "bytes": len(raw)}
    pipe = client.pipeline(transaction=True)
    for cmd in AggregateStore.dead_letter_commands(model, [letter]):
        pipe.execute_command(*cmd)  # type: ignore[no-untyped-call]  # unannotated in redis-py
    pipe.delete(keys.journal_entry(model, batch_id))
    pipe.zrem(keys.journal(model), batch_id)
    pipe.execute()


def pending(client: redis.Redis, model: str) -> int:
    return int(client.zcard(keys.journal(model)))
