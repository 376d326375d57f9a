"""The configuration a detector applies, read from the registry and cached for a few seconds, so
that auto-tuned thresholds arrive without a restart."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..acl import client_user
from ..connection import call, connect
from ..errors import NotFoundError
from ..registry import Registry
from ..roles import DETECTOR
from ..settings import Settings
from .endpoints import Endpoints


class ConfigCache:
    def __init__(self, settings: Settings, endpoints: Endpoints, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.endpoints = endpoints
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}
        self._registry: tuple[str, Registry] | None = None

    def get(self, model: str) -> dict[str, Any]:
        """The configuration in force: production's, else the latest version's, read at most
        every ``ttl_s`` seconds. RedisUnavailableError when Redis cannot be reached."""
        now = self.clock()
        hit = self._entries.get(model)
        if hit is not None and hit[0] > now:
            return hit[1]
        url, registry = self._connect()
        resolved = call(url, lambda: self._resolved(registry, model))
        self._entries[model] = (now + self.ttl_s, resolved)
        return resolved

    @staticmethod
    def _resolved(registry: Registry, model: str) -> dict[str, Any]:
        try:
            return registry.resolved(model, "production")
        except NotFoundError:
            return registry.resolved(model, "latest")

    def _connect(self) -> tuple[str, Registry]:
        if self._registry is None:
            url = self.endpoints.redis_url()  # RedisUnavailableError when there is none
            client = connect(url)
            self._registry = (url, Registry(client, self.settings,
                                            fills_cache=client_user(client) != DETECTOR))
        return self._registry

    def after_fork(self) -> None:
        """A connection pool is not shared with a forked child: it makes its own."""
        self._registry = None
