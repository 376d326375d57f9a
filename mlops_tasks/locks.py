"""Per-model job locks: a slow run is never overlapped by the next one for the same model."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from . import keys
from .lua_scripts import source

# A job's lock on a model expires after this long, so a run that crashed cannot hold it forever.
LOCK_TTL_S = 600


@contextmanager
def model_lock(client: redis.Redis, model: str, job: str,
               ttl_s: int = LOCK_TTL_S) -> Iterator[bool]:
    """Yields True when this run holds the lock, False when another run does. The lock expires
    after ``ttl_s`` so a crashed run cannot hold it forever; only its owner releases it."""
    key = keys.job_lock(model, job)
    token = uuid.uuid4().hex
    acquired = bool(client.set(key, token, nx=True, ex=ttl_s))
    try:
        yield acquired
    finally:
        if acquired:
            client.register_script(source("release_lock.lua"))(keys=[key], args=[token])
