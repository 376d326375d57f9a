"""The workers' JSON decoder: bounded, so that no message can take a worker down.

Celery decodes a message in the worker's main process and pickles the decoded arguments to hand
them to a pool child. A message nested a few hundred levels deep decodes fine but then fails
pickling with ``RecursionError``: the main process exits, the message is restored and kills every
worker that takes it. A message of hundreds of megabytes costs its size several times over.

``install()`` replaces kombu's ``json`` decoder in the worker process with ``bounded_loads``,
which refuses a body over ``MAX_MESSAGE_BYTES``, with more than ``MAX_MESSAGE_CONTAINERS``
objects and lists (a body of millions of ``{}`` is small but costs seconds and gigabytes to
decode and walk), or nested deeper than ``MAX_MESSAGE_DEPTH``, and
returns instead a small stand-in message whose only argument names the batch (as far as it can be
read) and carries the reason under ``REJECTED_KEY``. The ingest task then dead-letters it as one
summary letter and the message is acknowledged: it is never delivered again. Encoding is kombu's
own, untouched.
"""

from __future__ import annotations

import re
from typing import Any

from kombu.serialization import registry
from kombu.utils import json as kombu_json

from .events import (
    MAX_MESSAGE_BYTES,
    MAX_MESSAGE_CONTAINERS,
    MAX_MESSAGE_DEPTH,
    REJECTED_KEY,
    depth_exceeds,
)

_HEAD_CHARS = 4096
_FIELD = {name: re.compile(rf'"{name}"\s*:\s*"([A-Za-z0-9_.:-]{{1,128}})"')
          for name in ("model", "batch_id", "kind")}
_N = re.compile(r'"n"\s*:\s*(\d{1,12})\b')


def _head_fields(text: str) -> dict[str, Any]:
    """model, batch_id, kind and n as far as the first few KB of an unreadable body show them."""
    head = text[:_HEAD_CHARS]
    out: dict[str, Any] = {}
    for name, pattern in _FIELD.items():
        if (m := pattern.search(head)) is not None:
            out[name] = m.group(1)
    if (m := _N.search(head)) is not None:
        out["n"] = int(m.group(1))
    return out


def _batch_fields(decoded: Any) -> dict[str, Any]:
    """The header of the batch argument of a decoded task body ``[args, kwargs, embed]``."""
    if isinstance(decoded, list) and decoded and isinstance(decoded[0], list) and decoded[0]:
        batch = decoded[0][0]
        if isinstance(batch, dict):
            return {k: batch[k] for k in ("model", "batch_id", "kind", "n")
                    if isinstance(batch.get(k), (str, int)) and not isinstance(batch.get(k), bool)
                    and len(str(batch[k])) <= 128}
    return {}


def stand_in(reason: str, fields: dict[str, Any]) -> list[Any]:
    """A task body (protocol 2) whose single argument is a refused batch: its header and why."""
    batch = {"v": 1, **fields, REJECTED_KEY: reason}
    return [[batch], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]


def bounded_loads(data: Any) -> Any:
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    size = len(data)
    if isinstance(data, str) and size * 4 > MAX_MESSAGE_BYTES:
        size = len(data.encode())
    if size > MAX_MESSAGE_BYTES:
        return stand_in(f"message: {size} bytes, more than the limit of "
                        f"{MAX_MESSAGE_BYTES}", _head_fields(_head(data)))
    # every container costs a Python object when decoded: count their opening brackets first
    # (brackets inside strings count too, so this can only overestimate)
    opening = data.count("{" if isinstance(data, str) else b"{") + \
        data.count("[" if isinstance(data, str) else b"[")
    if opening > MAX_MESSAGE_CONTAINERS:
        return stand_in(f"message: {opening} objects and lists, more than the limit of "
                        f"{MAX_MESSAGE_CONTAINERS}", _head_fields(_head(data)))
    try:
        decoded = kombu_json.loads(data)  # type: ignore[no-untyped-call]  # unannotated in kombu
    except RecursionError:
        return stand_in(f"message: nested deeper than {MAX_MESSAGE_DEPTH} levels",
                        _head_fields(_head(data)))
    # fewer containers than levels allowed cannot nest too deep (the usual columnar batch)
    if opening > MAX_MESSAGE_DEPTH and depth_exceeds(decoded, MAX_MESSAGE_DEPTH):
        return stand_in(f"message: nested deeper than {MAX_MESSAGE_DEPTH} levels",
                        _batch_fields(decoded))
    return decoded


def _head(data: str | bytes) -> str:
    head = data[:_HEAD_CHARS]
    return head if isinstance(head, str) else head.decode("utf-8", "replace")


def install() -> None:
    """Decode JSON messages in this process with ``bounded_loads`` (encoding unchanged). The
    worker's main process decodes every message and hands a pool child the decoded arguments,
    which must be small and shallow enough to pickle; the child decodes the same body again,
    with the same bounds (it inherits this registration when the pool forks)."""
    registry.register(  # type: ignore[no-untyped-call]  # unannotated in kombu
        "json", kombu_json.dumps, bounded_loads,
        content_type="application/json", content_encoding="utf-8")
