"""Everything a job needs, connected once: settings, Redis clients, registry, windows, alerts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from redis import Redis

from .alerts.service import AlertService, Dispatch
from .alerts.store import AlertStore
from .connection import call, connect, resolve_redis_url
from .registry import Registry
from .roles import OPERATOR
from .settings import Settings
from .windows import WindowReader


@dataclass
class Services:
    settings: Settings
    redis: Redis
    raw: Redis
    registry: Registry
    windows: WindowReader
    alerts: AlertService
    clock: Callable[[], float] = field(default=time.time)

    @classmethod
    def connect(cls, settings: Settings, url: str | None = None,
                dispatch: Dispatch | None = None,
                clock: Callable[[], float] = time.time) -> Services:
        url = url or resolve_redis_url(settings, role=OPERATOR)
        client = connect(url)
        call(url, client.ping)
        return cls.of(settings, client, connect(url, decode=False), dispatch, clock)

    @classmethod
    def of(cls, settings: Settings, client: Redis, raw: Redis, dispatch: Dispatch | None = None,
           clock: Callable[[], float] = time.time) -> Services:
        """Services on clients already made (``client`` decoding replies, ``raw`` not), without
        asking Redis anything: for a server that starts while Redis is down."""
        store = AlertStore(client, settings.alert_repeat_interval_s, clock)
        return cls(settings=settings, redis=client, raw=raw,
                   registry=Registry(client, settings, clock),
                   windows=WindowReader(raw, settings, clock),
                   alerts=AlertService(store, settings, dispatch, clock), clock=clock)
