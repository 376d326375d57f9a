"""Reading the dead-letter store: events rejected by ingest, with their reason."""

from __future__ import annotations

import json
from typing import Any

import redis

from . import keys


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
