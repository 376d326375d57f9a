"""`mlops demo`: the whole loop on this machine, with nothing else installed, in about two
minutes: the stack of `mlops up`, the simulator, a drift, the alert, auto-tuning, recovery."""

from __future__ import annotations

import queue
import sys
from typing import TYPE_CHECKING, Any

import click

from mlops_tasks.errors import MlopsError

from .context import App, json_option, pass_app
from .output import emit, safe, table
from .up_cmds import WORKER_REPLY_S, JsonView, TextView

if TYPE_CHECKING:
    from mlops_tasks.demo import Step, Tour, TourOptions
    from mlops_tasks.stack import StackInfo, StackStatus, StackView


class DemoView:
    """The stack's view, plus the tour: started once the stack is ready, its steps printed
    as they happen (from the main thread)."""

    def __init__(self, inner: StackView, options: TourOptions, actor: str,
                 as_json: bool) -> None:
        self.inner = inner
        self.options = options
        self.actor = actor
        self.as_json = as_json
        self.tour: Tour | None = None
        self.said: queue.SimpleQueue[Step] = queue.SimpleQueue()
        self.redis_url: str | None = None
        self.info: StackInfo | None = None

    def started(self, info: StackInfo) -> None:
        self.redis_url = info.redis.url
        self.info = info
        self.inner.started(info)

    def ready(self, after_s: float) -> None:
        from mlops_tasks.demo import COMPRESSED, Tour, demo_settings  # noqa: PLC0415
        from mlops_tasks.services import Services  # noqa: PLC0415 - heavy import

        self.inner.ready(after_s)
        assert self.redis_url is not None  # noqa: S101 - started() comes first
        settings = demo_settings()
        self.tour = Tour(Services.connect(settings, self.redis_url), self.redis_url,
                         self.options, self.said.put, actor=self.actor)
        self.tour.start()
        if not self.as_json:
            click.echo(f"demo: {COMPRESSED}")
            click.echo(f"demo: {self.options.rate:g} events/s through the three detectors; "
                       f"{self.options.drift_model} drifts after {self.options.drift_at_s:g} s")

    def status(self, status: StackStatus) -> None:
        self._steps()
        self.inner.status(status)

    def stopping(self, signal_name: str | None) -> None:
        self._steps()
        if self.tour is not None:
            self.tour.stop()
            self.tour.wait(30)
        self.inner.stopping(signal_name)

    def _steps(self) -> None:
        while not self.said.empty():
            step = self.said.get()
            if not self.as_json:
                click.echo(f"\r\x1b[2K[{step.at_s:5.1f} s] {step.name}: {safe(step.text)}"
                           if sys.stdout.isatty() else
                           f"[{step.at_s:5.1f} s] {step.name}: {safe(step.text)}")
                click.echo(f"           look: {step.look}")

    def finished(self) -> bool:
        return self.tour is not None and self.tour.finished


class SilentView(JsonView):
    """Nothing on stdout while the stack runs."""

    def started(self, info: StackInfo) -> None:
        pass


def run_demo(app: App, *, host: str, serve_port: int, flower_port: int, rate: float,
             drift_at_s: float, timeout_s: float, fixed_end: bool, as_json: bool,
             ready_timeout_s: float = 300.0) -> dict[str, Any]:
    """The stack with the tour; with ``fixed_end`` it stops once the loop closed (or the time
    is up), else it runs until Ctrl-C. Returns what happened."""
    from mlops_tasks.demo import DEMO_ENV, STEPS, TourOptions  # noqa: PLC0415
    from mlops_tasks.health import celery_active_queues  # noqa: PLC0415 - on first use
    from mlops_tasks.stack import StackOptions, run_stack  # noqa: PLC0415 - on first use
    from mlops_tasks.workers.app import app as celery_app  # noqa: PLC0415 - heavy import
    from mlops_tasks.workers.pools import POOLS  # noqa: PLC0415 - the workers' own table

    options = TourOptions(rate=rate, drift_at_s=drift_at_s, timeout_s=timeout_s)
    live = sys.stdout.isatty()
    # with a fixed end and --json, stdout holds one document: the stack goes into it
    inner: StackView = (SilentView() if fixed_end else JsonView()) if as_json else \
        TextView(live=live)
    view = DemoView(inner, options, app.actor(None), as_json)
    pools = {name: pool.queues for name, pool in POOLS.items() if name != "all"}
    result = run_stack(app.settings, StackOptions(host, serve_port, flower_port, None), pools,
                       view, active_queues=celery_active_queues(celery_app, WORKER_REPLY_S),
                       ready_timeout_s=ready_timeout_s,
                       status_every_s=None if as_json else 1.0 if live else 30.0,
                       extra_env=DEMO_ENV, done=view.finished if fixed_end else None)
    for line in result.log_tail:
        click.echo(f"  | {safe(line)}", err=True)
    if result.failure:
        raise MlopsError(result.failure)
    tour = view.tour
    steps = [s.to_dict() for s in tour.steps] if tour else []
    missing = tour.missing if tour else list(STEPS)
    stack = view.info.to_dict() if view.info else {}
    stack.get("flower", {}).pop("password", None)  # stopped now, and never printed twice
    return {"steps": steps, "missing": missing, "error": tour.error if tour else None,
            "stack": {k: stack[k] for k in ("redis", "serve", "flower") if k in stack}}


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address serve and Flower bind.")
@click.option("--serve-port", type=click.IntRange(1, 65535), default=9808, show_default=True)
@click.option("--flower-port", type=click.IntRange(1, 65535), default=5555, show_default=True)
@click.option("--rate", type=click.FloatRange(10, 2000), default=120.0, show_default=True,
              metavar="EVENTS_PER_S", help="Simulated inputs per second, for all three.")
@click.option("--drift-at", "drift_at_s", type=click.FloatRange(10, 600), default=45.0,
              show_default=True, metavar="SECONDS", help="When waf-behavioral's traffic drifts.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(30, 3600), default=240.0,
              show_default=True, metavar="SECONDS", help="Give up on the loop after this.")
@json_option
@pass_app
def demo(app: App, host: str, serve_port: int, flower_port: int, rate: float,
         drift_at_s: float, timeout_s: float, as_json: bool) -> None:
    """The whole loop in about two minutes: start the stack (Redis, workers, beat, Flower,
    serve) on a time-compressed schedule, send realistic traffic through the three reference
    detectors, drift one, and show each step: events, metrics, the degradation alert,
    auto-tuning applying a threshold the detector reads back, and accuracy recovering; then
    stop everything. Exit 1 when a step did not happen in time."""
    doc = run_demo(app, host=host, serve_port=serve_port, flower_port=flower_port, rate=rate,
                   drift_at_s=drift_at_s, timeout_s=timeout_s, fixed_end=True,
                   as_json=as_json)
    emit(as_json, doc, lambda: table(["at", "step", "what happened"], [
        [f"{s['at_s']:.0f} s", s["step"], safe(s["text"])] for s in doc["steps"]]))
    if doc["error"]:
        raise MlopsError(f"the demo's traffic stopped: {doc['error']}")
    if doc["missing"]:
        raise MlopsError(f"the loop did not close within {timeout_s:g} s: no "
                         f"{', '.join(doc['missing'])} (see `mlops up` logs in "
                         "MLOPS_LOG_DIR/up/)")


def register(group: click.Group) -> None:
    group.add_command(demo)
