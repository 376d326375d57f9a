"""The demo tour: the whole loop on a time-compressed schedule, watched step by step.

On the stack of `mlops up` (workers, beat, Flower, serve) the simulator sends realistic traffic
through the three reference detectors; after ``drift_at_s`` one model's traffic drifts so that
its accuracy really drops. The tour watches Redis, as an operator would, and says when each
step of the loop happens: events flowing, metrics per model, the drift, the degradation alert,
auto-tuning applying a new threshold (which the detector reads back through its client), and
accuracy recovering. The schedule is compressed (``DEMO_ENV``: checks every few seconds instead
of every few minutes), which the tour says at its start.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .settings import Settings

if TYPE_CHECKING:
    from .services import Services
    from .simulator.run import Simulation

# The demo's compressed schedule, given to every process of the stack and to the tour itself.
DEMO_ENV = {
    "MLOPS_MONITORING_INTERVAL_S": "5",
    "MLOPS_DEGRADATION_INTERVAL_S": "10",
    "MLOPS_TUNING_INTERVAL_S": "60",
    "MLOPS_CLEANUP_INTERVAL_S": "3600",
    "MLOPS_TUNING_COOLDOWN_S": "120",
    "MLOPS_BEAT_MAX_INTERVAL_S": "1",
    "MLOPS_CLIENT_CONFIG_TTL_S": "1",
    "MLOPS_BASELINE_SIZE": "500",
}
COMPRESSED = ("time-compressed for the demo: monitoring every 5 s, degradation checks every "
              "10 s (each reads the minutes that ended), auto-tuning every 60 s (120 s "
              "cool-down), baselines of 500 labeled predictions")
STEPS = ("events flowing", "metrics per model", "drift injected", "degradation alert fired",
         "auto-tuning applied", "accuracy recovering")
WATCH_S = 1.0
RECOVERY_WINDOW = 300  # labeled outcomes the recovery is judged on, from the workers' ring


@dataclass(frozen=True)
class Step:
    name: str
    at_s: float  # since the traffic started
    text: str
    look: str  # where an operator sees it

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.name, "at_s": round(self.at_s, 1), "text": self.text,
                "look": self.look}


@dataclass
class TourOptions:
    drift_model: str = "waf-behavioral"
    drift_kind: str | None = "throttled-attacks"  # None: the model's first drift kind
    rate: float = 120.0
    drift_at_s: float = 45.0
    label_delay_s: float = 2.0
    timeout_s: float = 240.0
    seed: int = 0


@dataclass
class Tour:
    """Runs the simulator and watches for the steps, in a thread; ``finished`` once every step
    happened or the time is up."""

    services: Services
    redis_url: str
    options: TourOptions
    say: Callable[[Step], None]
    actor: str = "demo"
    steps: list[Step] = field(default_factory=list)
    error: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _done: threading.Event = field(default_factory=threading.Event)

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    @property
    def missing(self) -> list[str]:
        seen = {s.name for s in self.steps}
        return [name for name in STEPS if name not in seen]

    def start(self) -> None:
        threading.Thread(target=self._run, name="mlops-demo-tour", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _run(self) -> None:
        from .client import MonitoringClient  # noqa: PLC0415 - Celery
        from .simulator.run import SOURCES, Simulation, ensure_deployed  # noqa: PLC0415

        o = self.options
        try:
            models = list(SOURCES)
            ensure_deployed(self.services.registry, self.services.settings, models, self.actor)
            kind = o.drift_kind or SOURCES[o.drift_model].drifts[0]
            with MonitoringClient(self.redis_url, redis_url=self.redis_url, overflow="block",
                                  settings=self.services.settings) as client:
                sim = Simulation(client, models, rate=o.rate, duration_s=o.timeout_s,
                                 label_delay_s=o.label_delay_s, drift_at_s=None,
                                 drifts={o.drift_model: kind}, seed=o.seed,
                                 settings=self.services.settings)
                watcher = threading.Thread(target=self._watch, args=(sim, kind),
                                           name="mlops-demo-watch", daemon=True)
                watcher.start()
                sim.run(self._stop)
                watcher.join()
        except Exception as exc:  # noqa: BLE001 - reported by the caller, never a traceback
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._done.set()

    def _record(self, sim: Simulation, name: str, text: str, look: str) -> None:
        if name in {s.name for s in self.steps}:
            return
        step = Step(name, sim.elapsed(), text, look)
        self.steps.append(step)
        self.say(step)

    def _schedule_drift(self, sim: Simulation, model: str) -> None:
        """The drift starts no sooner than ``drift_at_s`` and only once the model's baseline
        is complete (its whole minutes have ended), so the baseline never holds drifted
        traffic."""
        from .monitoring.degradation import get_baseline  # noqa: PLC0415 - scipy

        if sim.drift_at_s is not None:
            return
        version = self.services.registry.default_version(model)
        base = get_baseline(self.services, model, version)
        if base is not None and base.get("until_ts"):
            after_baseline = sim.elapsed() + float(base["until_ts"]) - time.time() + 5.0
            sim.drift_at_s = max(self.options.drift_at_s, after_baseline)

    def _watch(self, sim: Simulation, kind: str) -> None:
        svc = self.services
        model = self.options.drift_model
        version = svc.registry.default_version(model)
        initial = float(svc.registry.current(model, version)["config"]["decision_threshold"])
        worst: float | None = None  # accuracy after the drift, before the tuning
        before: float | None = None  # accuracy when the tuning was applied
        tuned_at: int | None = None  # labeled outcomes counted then
        while not self._stop.wait(WATCH_S):
            totals = {m: svc.windows.totals(m, svc.registry.default_version(m))
                      for m in sim.models}
            if all(t.get("n", 0) > 0 for t in totals.values()):
                self._record(sim, "events flowing", ", ".join(
                    f"{m} {int(t['n'])}" for m, t in totals.items()) + " predictions counted",
                    "mlops performance-summary; Flower: the ingest tasks; /metrics: "
                    "mlops_predictions_total")
            accuracy = {m: svc.windows.count_window(m, svc.registry.default_version(m),
                                                    RECOVERY_WINDOW)
                        for m in sim.models}
            if all(a["count"] >= RECOVERY_WINDOW for a in accuracy.values()):
                self._record(sim, "metrics per model", ", ".join(
                    f"{m} accuracy {a['accuracy']:.2f}" for m, a in accuracy.items())
                    + f" (last {RECOVERY_WINDOW} labeled)",
                    "mlops performance-summary NAME; /metrics: mlops_model_accuracy")
            self._schedule_drift(sim, model)
            if sim.stats[model].drifted:
                self._record(sim, "drift injected", f"{model}: {kind}",
                             "mlops simulate --help (drift kinds)")
            drifted = any(s.name == "drift injected" for s in self.steps)
            now = accuracy[model]["accuracy"]
            for alert in svc.alerts.store.active([model]):
                if alert.kind == "performance_degraded" and drifted:
                    self._record(sim, "degradation alert fired", alert.message,
                                 "mlops alerts --active; the monitoring log; /metrics: "
                                 "mlops_alerts_firing")
            threshold = float(svc.registry.current(model, version)["config"]
                              ["decision_threshold"])
            labeled = int(totals[model].get("labeled", 0))
            # applied once the detector itself decides with it (read through its client)
            in_use = sim.detectors[model].decision_threshold
            if drifted and threshold != initial and in_use == threshold and tuned_at is None:
                tuned_at, before = labeled, now
                self._record(sim, "auto-tuning applied",
                             f"{model} decision threshold {initial:g} -> {threshold:g}; the "
                             f"detector decides with {in_use:g}, read through its client",
                             "mlops auto-tuning-history; mlops audit-log " + model)
            # judged on outcomes decided with the new threshold only
            if tuned_at is not None and labeled >= tuned_at + RECOVERY_WINDOW and \
                    worst is not None and before is not None and now is not None and \
                    now >= max(worst + 0.05, before):
                self._record(sim, "accuracy recovering",
                             f"{model} last {RECOVERY_WINDOW} labeled accuracy {worst:.2f} "
                             f"after the drift, {before:.2f} when tuned, {now:.2f} now",
                             "mlops performance-summary " + model)
            if tuned_at is None and drifted and now is not None:
                worst = now if worst is None else min(worst, now)
            if not self.missing:
                self._stop.set()


def demo_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings with the demo's compressed schedule."""
    return Settings.from_env({**(os.environ if environ is None else environ), **DEMO_ENV})
