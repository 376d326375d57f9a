"""The dead-letter store: events rejected by ingest, with their reason and the original event.

A dead letter is the only place a client's ``metadata`` is kept once its batch is applied (the
broker message and the journal entry are gone by then). Letters live for
``MLOPS_DEAD_LETTER_RETENTION_DAYS`` (the cleanup job trims older ones, see
maintenance/cleanup.py) or until :func:`purge` (``mlops dead-letters purge``) deletes them.
The per-model counts (:func:`counts`) are counters of rejected events: a purge keeps them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import redis

from . import keys
from .results import Result

log = logging.getLogger("mlops.maintenance")


def read(client: redis.Redis, models: list[str], model: str | None = None,
         limit: int = 50) -> list[dict[str, Any]]:
    """Dead letters, newest first, of one model (or of every model and of unrouted batches).
    A name that is not a registered model finds its letters in the unrouted store."""
    if model is not None and model not in models:
        letters = read(client, models, None, max(limit * 10, 1000))
        return [x for x in letters if x.get("model") == model][:limit]
    sources = [keys.dead_letters(model)] if model else \
        [keys.dead_letters(m) for m in [*models, keys.UNROUTED]]
    pipe = client.pipeline(transaction=False)
    for key in sources:
        pipe.lrange(key, 0, limit - 1)
    letters = [json.loads(x) for batch in pipe.execute() for x in batch]
    letters.sort(key=lambda x: x.get("at", 0), reverse=True)
    return letters[:limit]


def counts(client: redis.Redis, models: list[str]) -> dict[str, int]:
    """Dead letters per model; names that are not registered models are counted as given
    (printable, at most 64 characters; the 1,000 names with the most letters)."""
    pipe = client.pipeline(transaction=False)
    for m in models:
        pipe.hget(keys.counters(m), keys.F_DEAD_LETTERS)
    pipe.zrange(keys.unrouted_names(), 0, -1, withscores=True)
    *per_model, unrouted = pipe.execute()
    out = {m: int(v or 0) for m, v in zip(models, per_model, strict=True)}
    for field, v in unrouted:
        name = field.decode() if isinstance(field, bytes) else field
        out[name] = out.get(name, 0) + int(v)
    return out


@dataclass(frozen=True)
class PurgeReport(Result):
    """What a purge deleted: letters per name (the names that had some)."""

    model: str | None  # the one name purged, or None for every model and unrouted batches
    removed: dict[str, int]
    actor: str

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "removed": dict(self.removed),
                "total": sum(self.removed.values()), "actor": self.actor}


def purge(client: redis.Redis, models: list[str], model: str | None = None, *,
          actor: str) -> PurgeReport:
    """Delete the dead letters of ``model`` (a name that is not a registered model: its letters
    in the unrouted store), or of every model and of unrouted batches; log who did it."""
    removed: dict[str, int] = {}
    if model is not None and model not in models:
        dropped: list[int] = []
        client.transaction(lambda pipe: dropped.append(_drop_unrouted(pipe, model)),
                           keys.dead_letters(keys.UNROUTED))
        removed[model] = dropped[-1]  # the attempt that committed (a WATCH may retry)
    else:
        names = [model] if model is not None else [*models, keys.UNROUTED]
        for name in names:  # one transaction per model: its own slot on Redis Cluster
            pipe = client.pipeline(transaction=True)
            pipe.llen(keys.dead_letters(name))
            pipe.unlink(keys.dead_letters(name))
            removed[name] = int(pipe.execute()[0])
    removed = {name: n for name, n in removed.items() if n}
    report = PurgeReport(model=model, removed=removed, actor=actor)
    log.info("Dead letters purged", extra=report.to_dict())
    return report


def _drop_unrouted(pipe: Any, model: str) -> int:
    """In a WATCH of the unrouted letters: rewrite them without those of ``model``."""
    key = keys.dead_letters(keys.UNROUTED)
    letters = pipe.lrange(key, 0, -1)
    kept = [x for x in letters if _model_of(x) != model]
    pipe.multi()
    pipe.delete(key)
    if kept:
        pipe.rpush(key, *kept)
    return len(letters) - len(kept)


def _model_of(raw: str | bytes) -> Any:
    try:
        return json.loads(raw).get("model")
    except (ValueError, AttributeError):
        return None
