"""Reading the dead-letter store: events rejected by ingest, with their reason."""

from __future__ import annotations

import json
from typing import Any

import redis

from . import keys


def read(client: redis.Redis, models: list[str], model: str | None = None,
         limit: int = 50) -> list[dict[str, Any]]:
    """Dead letters, newest first, of one model (or all models and malformed batches)."""
    sources = [keys.dead_letters(model)] if model else \
        [keys.dead_letters(m) for m in models] + [keys.DEAD_INVALID]
    pipe = client.pipeline(transaction=False)
    for key in sources:
        pipe.lrange(key, 0, limit - 1)
    letters = [json.loads(x) for batch in pipe.execute() for x in batch]
    letters.sort(key=lambda x: x.get("at", 0), reverse=True)
    return letters[:limit]


def counts(client: redis.Redis, models: list[str]) -> dict[str, int]:
    pipe = client.pipeline(transaction=False)
    for m in models:
        pipe.hget(keys.counters(m), "dead_letters")
    return {m: int(v or 0) for m, v in zip(models, pipe.execute(), strict=True)}
