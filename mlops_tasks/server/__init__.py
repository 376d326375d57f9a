"""`mlops serve`: the health and metrics HTTP service (Tornado).

    app.py      the application and its routes: /health/live, /health/ready, /health,
                /health/<component>, /metrics, and the dashboard page / with its style sheet
    page.py     the dashboard as HTML (reports/dashboard.py reads it): charts.py draws a
                model's charts with svg.py, page_style.py is the style sheet
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
from ..health.queues import broker_for
from ..reports.dashboard import Dashboard, read_dashboard
from ..roles import OPERATOR
from ..services import Services
from ..settings import Settings, mask_url
from .activity import TuningCounts
from .app import make_app, run
from .liveness import LivenessCache
from .metrics import MlopsCollector, metrics_registry
from .probes import Probes

log = logging.getLogger(__name__)

__all__ = ["serve"]


def serve(settings: Settings, redis_url: str, host: str, port: int, *,
          pools: Mapping[str, Sequence[str]] | None = None,
          active_queues: ActiveQueues | None = None) -> None:
    """Serve the health endpoints, /metrics and the dashboard on ``host:port`` until SIGTERM
    or SIGINT. Starts even when Redis is down: readiness then answers 503."""
    client = connect(redis_url, fail_fast=True)
    raw = connect(redis_url, decode=False, fail_fast=True)
    broker_url = resolve_broker_url(settings, start=False, role=OPERATOR)
    broker = broker_for(broker_url, fail_fast=True)
    probes = Probes(settings=settings, client=client, broker=broker, pools=pools,
                    active_queues=active_queues)
    liveness = (LivenessCache(pools, active_queues)
                if pools is not None and active_queues is not None else None)
    registry = metrics_registry(MlopsCollector(client, raw, broker, settings, liveness))
    services = Services.of(settings, client, raw)
    tuning = TuningCounts()

    def dashboard(span: str) -> Dashboard:
        return read_dashboard(services, span, broker=broker, tuning=tuning,
                              workers=liveness.current() if liveness is not None else None)

    app = make_app(probes, registry, settings.serve_basic_auth, dashboard)
    log.info("serving health, metrics and the dashboard on http://%s:%d (Redis %s)", host, port,
             mask_url(redis_url))
    asyncio.run(run(app, host, port))
