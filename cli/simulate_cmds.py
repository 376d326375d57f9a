"""`mlops simulate`: labeled traffic through the real detectors and the thin client."""

from __future__ import annotations

import signal
import sys
import threading

import click

from mlops_tasks.durations import parse_duration
from mlops_tasks.errors import MlopsError, ValidationError

from .context import App, json_option, pass_app
from .output import emit, fmt, table

MODELS = ("n1-detector", "waf-behavioral", "queue-anomaly")


@click.command("simulate")
@click.option("--models", default=",".join(MODELS), show_default=True, metavar="M,...",
              help="Models whose traffic to generate.")
@click.option("--rate", type=click.FloatRange(0.1, 100_000), default=50.0, show_default=True,
              metavar="EVENTS_PER_S", help="Inputs per second, shared by the models.")
@click.option("--duration", default="60s", show_default=True,
              help="How long to send: 90s, 15m, 2h.")
@click.option("--label-delay", default="5s", show_default=True,
              help="When each label follows its prediction (0: with it).")
@click.option("--drift-at", metavar="D", help="From this time on, the traffic drifts (--drift).")
@click.option("--drift", "drift", metavar="KIND",
              help="Drift kind, or MODEL:KIND, comma-separated (see the error for the list).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--actor", metavar="NAME", help="Who registers missing models.")
@json_option
@pass_app
def simulate(app: App, models: str, rate: float, duration: str, label_delay: str,
             drift_at: str | None, drift: str | None, seed: int, actor: str | None,
             as_json: bool) -> None:
    """Generate realistic labeled inputs for each detector, run the real detectors on them and
    report predictions, then the labels, through the client (registering and deploying the
    built-in models that are missing)."""
    from mlops_tasks.client import MonitoringClient  # noqa: PLC0415 - Celery
    from mlops_tasks.simulator.run import (  # noqa: PLC0415 - numpy and the detectors
        Simulation,
        ensure_deployed,
        parse_drift,
    )

    chosen = [m.strip() for m in models.split(",") if m.strip()]
    seconds = parse_duration(duration, "--duration")
    delay = 0.0 if label_delay.strip() in {"0", "0s"} else \
        parse_duration(label_delay, "--label-delay")
    drifts = parse_drift(drift)
    at = parse_duration(drift_at, "--drift-at") if drift_at else None
    if drifts and at is None:
        at = 0.0
    if at is not None and not drifts:
        raise ValidationError("--drift-at: needs --drift KIND")
    for line in ensure_deployed(app.registry, app.settings, chosen, app.actor(actor)):
        click.echo(line, err=True)
    stop = threading.Event()
    with MonitoringClient(redis_url=app.redis_url, overflow="block",
                          settings=app.settings) as client:
        sim = Simulation(client, chosen, rate=rate, duration_s=seconds, label_delay_s=delay,
                         drift_at_s=at, drifts=drifts, seed=seed, settings=app.settings)

        def progress(s: Simulation) -> None:
            if as_json:
                return
            parts = [f"{m} {st.sent} sent, accuracy {fmt(st.recent_accuracy)}"
                     + (" (drifted)" if st.drifted else "") for m, st in s.stats.items()]
            click.echo(f"\r[{s.elapsed():5.0f}s] " + "; ".join(parts), nl=False, err=True)

        # Ctrl-C ends the run; the labels still pending are sent, none is lost
        previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
        try:
            stats = sim.run(stop, progress)
        finally:
            signal.signal(signal.SIGINT, previous)
        if not as_json:
            click.echo("", err=True)
        if not client.flush(60):
            raise MlopsError(f"events could not be sent: {client.stats()['last_error']}")
    doc = {"models": {m: s.to_dict() for m, s in stats.items()}, "seed": seed,
           "drift": drifts, "drift_at_s": at}
    emit(as_json, doc, lambda: table(
        ["model", "sent", "labels", "positives", "accuracy", "last 500", "drifted"],
        [[m, s.sent, s.labels_sent, s.positives, fmt(s.accuracy), fmt(s.recent_accuracy),
          "yes" if s.drifted else "no"] for m, s in stats.items()]))
    sys.stdout.flush()


def register(group: click.Group) -> None:
    group.add_command(simulate)
