"""Per-process state of a worker: connections and caches, built on first use after the fork."""

from __future__ import annotations

import getpass
import logging
import os
from dataclasses import dataclass
from functools import cached_property

import redis

from mlops_tasks.connection import connect, resolve_redis_url
from mlops_tasks.ingest.pipeline import Ingestor
from mlops_tasks.registry import Registry, builtin_models
from mlops_tasks.settings import Settings

log = logging.getLogger("mlops.worker")


@dataclass
class Runtime:
    settings: Settings

    @cached_property
    def redis_url(self) -> str:
        return resolve_redis_url(self.settings)

    @cached_property
    def redis(self) -> redis.Redis:
        return connect(self.redis_url)

    @cached_property
    def raw(self) -> redis.Redis:
        return connect(self.redis_url, decode=False)

    @cached_property
    def registry(self) -> Registry:
        return Registry(self.redis, self.settings)

    @cached_property
    def ingestor(self) -> Ingestor:
        return Ingestor(self.settings, self.registry, self.raw)


_runtime: tuple[int, Runtime] | None = None


def runtime() -> Runtime:
    """This process's runtime (a forked child builds its own)."""
    global _runtime
    if _runtime is None or _runtime[0] != os.getpid():
        _runtime = (os.getpid(), Runtime(Settings.from_env()))
    return _runtime[1]


def auto_register() -> None:
    """Register the built-in models whose *_AUTO_REGISTER setting is on (idempotent)."""
    rt = runtime()
    actor = rt.settings.actor or f"worker:{getpass.getuser()}"
    for entry in builtin_models(rt.settings):
        if not entry.auto_register:
            continue
        result = rt.registry.register(entry.name, entry.version, entry.config, actor=actor,
                                      display_name=entry.display_name,
                                      description=entry.description, builtin=True,
                                      exist_ok=True)
        if result["created"]:
            log.info("model registered", extra={"model": entry.name, "version": entry.version})
