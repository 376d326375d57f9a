"""`mlops demo`: the whole pipeline on this machine, with nothing else installed."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlops_tasks import reports
from mlops_tasks.errors import MlopsError

from .context import App, json_option, pass_app
from .output import emit, fmt, metrics_table, table

if TYPE_CHECKING:
    from mlops_tasks.client import MonitoringClient

# name -> (positive rate, separation, latency ms): roughly the detectors' guide figures.
PROFILES = {"n1-detector": (0.3, 2.6, 20.0), "waf-behavioral": (0.1, 3.4, 40.0),
            "queue-anomaly": (0.2, 2.2, 10.0)}


@click.command("demo")
@click.option("--events", type=click.IntRange(1000, 10_000_000), default=20_000,
              show_default=True, help="Predictions per model.")
@click.option("--label-delay-share", type=click.FloatRange(0, 1), default=0.25,
              show_default=True, help="Share of labels sent later, as ground truth.")
@json_option
@pass_app
def demo(app: App, events: int, label_delay_share: float, as_json: bool) -> None:
    """Register and deploy the built-in models, start a worker, stream synthetic predictions
    through the client and show what the workers aggregated."""
    from mlops_tasks.client import MonitoringClient  # noqa: PLC0415 - Celery
    from mlops_tasks.monitoring.performance import run_monitoring  # noqa: PLC0415 - scipy
    from mlops_tasks.registry import builtin_models  # noqa: PLC0415 - numpy
    from mlops_tasks.synthetic import detector_traffic  # noqa: PLC0415 - numpy
    from mlops_tasks.tuning.engine import run_tuning  # noqa: PLC0415 - numpy

    reg = app.registry
    who = app.actor(None)
    for entry in builtin_models(app.settings):
        reg.register(entry.name, entry.version, entry.config, actor=who,
                     display_name=entry.display_name, description=entry.description,
                     builtin=True, exist_ok=True)
        reg.deploy(entry.name, entry.version, "production", actor=who)
    env = dict(os.environ, REDIS_URL=app.redis_url, MLOPS_LOG_LEVEL="warning")
    worker = subprocess.Popen([sys.executable, "-m", "mlops_tasks.cli.main", "worker",
                               "--concurrency", "2", "--loglevel", "warning"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        expected: dict[str, int] = {}
        before = {n: int(app.windows.totals(n, reg.default_version(n)).get("labeled", 0))
                  for n in PROFILES}
        with MonitoringClient(redis_url=app.redis_url, overflow="block") as client:
            for seed, (name, (rate, sep, lat)) in enumerate(PROFILES.items()):
                traffic = detector_traffic(events, positive_rate=rate, separation=sep,
                                           latency_ms=lat, seed=seed)
                delayed = _send(client, name, traffic, label_delay_share)
                expected[name] = before[name] + events
                if not as_json:
                    click.echo(f"  {name}: {events} predictions sent ({delayed} labeled later)",
                               err=True)
            if not client.flush(120):
                raise MlopsError(f"events could not be sent: {client.stats()['last_error']}")
        _wait(app, expected, worker, as_json)
        models = [m.to_dict()
                  for m in reports.performance_summary(app.services, list(PROFILES))]
    finally:
        worker.terminate()
        worker.wait(30)
    # what beat's jobs would say about this traffic, run here once
    monitoring = run_monitoring(app.services).to_dict()
    tuning = run_tuning(app.services, dry_run=True).to_dict()

    def human() -> str:
        parts = [f"{m['name']} v{m['version']}\n" + metrics_table(m["windows"]) for m in models]
        parts.append(table(
            ["model", "monitoring", "accuracy", "threshold now", "best threshold", "f1 gain"],
            [[r["model"], s["status"], fmt(s.get("accuracy")), fmt(r.get("current_threshold")),
              fmt(r.get("best_threshold")),
              "-" if r.get("improvement_percent") is None
              else f"{r['improvement_percent']:+.1f}%"]
             for r, s in zip(tuning["runs"], monitoring["models"], strict=True)]))
        return "\n\n".join(parts)
    emit(as_json, {"models": models, "monitoring": monitoring, "tuning": tuning}, human)


def _send(client: MonitoringClient, name: str, traffic: Any, delay_share: float) -> int:
    """Record the traffic; the first ``delay_share`` of labels arrive later as ground truth."""
    late = int(traffic.scores.size * delay_share)
    actual = [None] * late + traffic.actual[late:].tolist()
    ids = client.record_batch(name, traffic.scores, actual=actual, latency_ms=traffic.latency_ms)
    for i in range(late):
        client.record_ground_truth(name, ids[i], bool(traffic.actual[i]))
    return late


def _wait(app: App, expected: dict[str, int], worker: subprocess.Popen[bytes],
          quiet: bool, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(Path(os.devnull).open("w")) if quiet else sys.stderr
        bar = stack.enter_context(click.progressbar(length=sum(expected.values()),
                                                    label="aggregating", file=out))
        done = 0
        while True:
            now_done = sum(min(int(app.windows.totals(n, app.registry.default_version(n))
                                   .get("labeled", 0)), want) for n, want in expected.items())
            bar.update(now_done - done)
            done = now_done
            if done >= sum(expected.values()):
                return
            if worker.poll() is not None:
                said = worker.stderr.read() if worker.stderr else b""
                raise MlopsError("the demo worker exited: " + said.decode()[-500:])
            if time.monotonic() > deadline:
                raise MlopsError("events were not aggregated within "
                                 f"{timeout_s:g}s; see `mlops dead-letters`")
            time.sleep(0.2)


def register(group: click.Group) -> None:
    group.add_command(demo)
