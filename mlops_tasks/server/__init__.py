"""`mlops serve`: the health and metrics HTTP service (Tornado).

    app.py      the application and its routes: /health/live, /health/ready, /health,
                /health/<component>, /metrics
    probes.py   readiness and the health document, every probe bounded by a timeout
    metrics.py  the Prometheus collector, reading Redis at scrape time
    activity.py its event counts: alerts fired, tuning runs, scheduled job runs
    liveness.py mlops_workers_alive from the workers' last answer, asked in the background
    auth.py     basic authentication (MLOPS_SERVE_BASIC_AUTH), compared in constant time
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from ..connection import connect, resolve_broker_url
from ..health import ActiveQueues
from ..health.queues import REDIS_SCHEMES
from ..roles import OPERATOR
from ..settings import Settings, mask_url
from .app import make_app, run
from .liveness import LivenessCache
from .metrics import MlopsCollector, metrics_registry
from .probes import Probes

log = logging.getLogger(__name__)

__all__ = ["serve"]


def serve(settings: Settings, redis_url: str, host: str, port: int, *,
          pools: Mapping[str, Sequence[str]] | None = None,
          active_queues: ActiveQueues | None = None) -> None:
    """Serve the health endpoints and /metrics on ``host:port`` until SIGTERM or SIGINT.
    Starts even when Redis is down: readiness then answers 503."""
    client = connect(redis_url, fail_fast=True)
    raw = connect(redis_url, decode=False, fail_fast=True)
    broker_url = resolve_broker_url(settings, start=False, role=OPERATOR)
    broker = (connect(broker_url, fail_fast=True) if broker_url.startswith(REDIS_SCHEMES)
              else None)
    probes = Probes(settings=settings, client=client, broker=broker, pools=pools,
                    active_queues=active_queues)
    liveness = (LivenessCache(pools, active_queues)
                if pools is not None and active_queues is not None else None)
    registry = metrics_registry(MlopsCollector(client, raw, broker, settings, liveness))
    app = make_app(probes, registry, settings.serve_basic_auth)
    log.info("serving health and metrics on http://%s:%d (Redis %s)", host, port,
             mask_url(redis_url))
    asyncio.run(run(app, host, port))
