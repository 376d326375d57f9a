"""The Tornado application of `mlops serve`: health endpoints, ``/metrics`` and the dashboard
page (``/``, with its style sheet).

Probes block on Redis, so every handler runs them in the IO loop's thread pool, each bounded
by its timeout: a hung Redis fails its entry, never the endpoint. The page is read and drawn in
that pool too, within the same timeout.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from typing import Any

import tornado.web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from ..health import bounded
from ..reports.dashboard import Dashboard
from ..reports.timeline import DEFAULT_SPAN, SPANS
from .auth import authorized, parse_pairs
from .page import CONTENT_SECURITY_POLICY, STYLE_PATH, render_page
from .page_style import STYLE
from .probes import HEALTH_TIMEOUT_S, Probes

ReadDashboard = Callable[[str], Dashboard]
"""The dashboard over a span (a key of ``reports.timeline.SPANS``), read now."""

COMPONENTS = ("scheduler", "pools", "queues", "redis")


class Base(tornado.web.RequestHandler):
    protected = True

    def initialize(self, ctx: dict[str, Any]) -> None:
        self.ctx = ctx

    def prepare(self) -> None:
        pairs = self.ctx["auth"]
        if self.protected and pairs and not authorized(
                self.request.headers.get("Authorization"), pairs):
            self.set_header("WWW-Authenticate", 'Basic realm="mlops"')
            self.set_status(401)
            self.finish("unauthorized\n")

    def json(self, status: int, doc: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(doc, default=str))

    async def blocking(self, fn: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn)


class Live(Base):
    protected = False

    def get(self) -> None:
        self.json(200, {"status": "ok"})


class Ready(Base):
    protected = False

    async def get(self) -> None:
        probes: Probes = self.ctx["probes"]
        ok = await self.blocking(probes.ready)
        self.json(200 if ok else 503, {"status": "ready" if ok else "not ready"})


class HealthDoc(Base):
    async def get(self, component: str | None = None) -> None:
        if component is not None and component not in COMPONENTS:
            self.json(404, {"error": f"unknown component; expected one of "
                                     f"{', '.join(COMPONENTS)}"})
            return
        probes: Probes = self.ctx["probes"]
        healthy, doc = await self.blocking(probes.health)
        if component is None:
            self.json(200 if healthy else 503, doc)
            return
        found = [r for r in doc["reasons"] if component_of(r["component"]) == component]
        part = doc.get(component)
        ok = (bool(part and part.get("ok")) if component == "redis" else
              part is not None and all(r["level"] != "unhealthy" for r in found))
        self.json(200 if ok else 503, {component: part, "reasons": found})


def component_of(reason: str) -> str:
    """The component of the health document a reason's component belongs to."""
    if reason == "workers" or reason.startswith("pool "):
        return "pools"
    if reason == "queues" or reason.startswith("queue "):
        return "queues"
    return "scheduler"  # beat, a job's name, or the scheduler probe


class Metrics(Base):
    async def get(self) -> None:
        registry: CollectorRegistry = self.ctx["registry"]
        try:
            body = await self.blocking(
                lambda: bounded(lambda: generate_latest(registry), HEALTH_TIMEOUT_S, "metrics"))
        except Exception as exc:  # noqa: BLE001 - a failed scrape is a 503, not a crash
            self.set_status(503)
            self.finish(f"scrape failed: {str(exc).splitlines()[0] if str(exc) else exc}\n")
            return
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(body)


class Page(Base):
    """The dashboard: the page of one span (``?span=day|week|month``)."""

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-store")

    async def get(self) -> None:
        span = self.get_query_argument("span", DEFAULT_SPAN)
        if span not in SPANS:
            self.set_status(400)
            self.finish(f"unknown span; expected one of {', '.join(SPANS)}\n")
            return
        read: ReadDashboard = self.ctx["dashboard"]
        try:
            page = await self.blocking(
                lambda: bounded(lambda: render_page(read(span)), HEALTH_TIMEOUT_S, "dashboard"))
        except Exception as exc:  # noqa: BLE001 - a failed read is a 503, not a crash
            self.set_status(503)
            self.finish(f"dashboard failed: {str(exc).splitlines()[0] if str(exc) else exc}\n")
            return
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(page)


class Style(Page):
    """The page's style sheet (no data in it, but served like the page)."""

    async def get(self) -> None:
        self.set_header("Content-Type", "text/css; charset=utf-8")
        self.finish(STYLE)


def make_app(probes: Probes, registry: CollectorRegistry, basic_auth: str | None,
             dashboard: ReadDashboard | None = None) -> tornado.web.Application:
    ctx = {"probes": probes, "registry": registry, "dashboard": dashboard,
           "auth": parse_pairs(basic_auth) if basic_auth else []}
    args = {"ctx": ctx}
    routes: list[Any] = [
        (r"/health/live", Live, args),
        (r"/health/ready", Ready, args),
        (r"/health", HealthDoc, args),
        (r"/health/([a-z_]+)", HealthDoc, args),
        (r"/metrics", Metrics, args),
    ]
    if dashboard is not None:
        routes += [(r"/", Page, args), (STYLE_PATH, Style, args)]
    return tornado.web.Application(routes)


async def run(app: tornado.web.Application, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = app.listen(port, address=host, xheaders=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()
    await server.close_all_connections()
