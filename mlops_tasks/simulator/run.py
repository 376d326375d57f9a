"""`mlops simulate`: generated inputs through the real detectors, predictions and delayed labels
through the thin client.

Each model's traffic comes from its generator (``simulator/<model>.py``), is scored and decided
by its reference detector (``detectors/``), which reports the prediction without its label;
the label follows ``label_delay_s`` later as ground truth, as a human verdict or an incident
report would. From ``drift_at_s`` on, a model's traffic is generated with its drift kind, so its
accuracy really drops. Deterministic for a seed: the same inputs in the same order (the wall
clock only decides when they are sent).
"""

from __future__ import annotations

import heapq
import importlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ValidationError
from . import Labeled

if TYPE_CHECKING:
    from ..client import MonitoringClient
    from ..detectors import Detection, ReferenceDetector
    from ..registry import Registry
    from ..settings import Settings

CHUNK = 64  # inputs generated at a time per model
TICK_S = 0.05


@dataclass(frozen=True)
class Source:
    """Where a model's traffic and detector live, and how its detector takes one input."""

    model: str
    generator: str  # module of generate / DRIFTS / naive_score
    detector: str  # "module:Class"
    method: str  # the detector's detect_* method

    def module(self) -> Any:
        return importlib.import_module(self.generator)

    @property
    def drifts(self) -> tuple[str, ...]:
        return tuple(self.module().DRIFTS)

    def new_detector(self, client: MonitoringClient | None,
                     settings: Settings | None) -> ReferenceDetector:
        module, name = self.detector.split(":")
        cls = getattr(importlib.import_module(module), name)
        detector: ReferenceDetector = cls(client=client, settings=settings)
        return detector


SOURCES = {s.model: s for s in (
    Source("n1-detector", "mlops_tasks.simulator.nplusone",
           "mlops_tasks.detectors.nplusone:NPlusOneDetector", "detect_request"),
    Source("waf-behavioral", "mlops_tasks.simulator.waf",
           "mlops_tasks.detectors.waf:WafBehavioralDetector", "detect_session"),
    Source("queue-anomaly", "mlops_tasks.simulator.queue",
           "mlops_tasks.detectors.queue:QueueAnomalyDetector", "detect_job"),
)}


def drift_kinds() -> dict[str, str]:
    """Every drift kind -> the model whose traffic it changes."""
    return {kind: s.model for s in SOURCES.values() for kind in s.drifts}


def parse_drift(value: str | None) -> dict[str, str]:
    """``KIND`` or ``MODEL:KIND`` (comma-separated) -> {model: kind}."""
    if not value:
        return {}
    known = drift_kinds()
    out: dict[str, str] = {}
    for part in (p.strip() for p in value.split(",") if p.strip()):
        model, _, kind = part.rpartition(":")
        owner = known.get(kind)
        if owner is None or (model and model != owner):
            choices = ", ".join(f"{m}:{k}" for k, m in sorted(known.items()))
            raise ValidationError(f"--drift: unknown drift {part!r} (expected one of {choices})")
        out[owner] = kind
    return out


@dataclass
class ModelStats:
    """What the simulator sent for one model, and how right its detector was."""

    sent: int = 0
    labels_sent: int = 0
    correct: int = 0
    positives: int = 0
    drifted: bool = False
    recent: list[bool] = field(default_factory=list)  # last decisions' correctness

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.sent if self.sent else None

    @property
    def recent_accuracy(self) -> float | None:
        return sum(self.recent) / len(self.recent) if self.recent else None

    def to_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "labels_sent": self.labels_sent, "accuracy": self.accuracy,
                "recent_accuracy": self.recent_accuracy, "positives": self.positives,
                "drifted": self.drifted}


RECENT = 500


class _Stream:
    """One model's endless labeled inputs, clean until the drift starts."""

    def __init__(self, source: Source, seed: int) -> None:
        self.module = source.module()
        self.rng = np.random.default_rng(seed)
        self.drift: str | None = None
        self.buffer: Iterator[Labeled[Any]] = iter(())

    def next(self) -> Labeled[Any]:
        for item in self.buffer:
            return item
        self.buffer = iter(self.module.generate(self.rng, CHUNK, drift=self.drift))
        return next(self.buffer)


class Simulation:
    """Send ``rate`` inputs per second, shared by ``models``, for ``duration_s`` (None: until
    stopped); labels ``label_delay_s`` after their prediction; drift from ``drift_at_s``."""

    def __init__(self, client: MonitoringClient, models: Sequence[str], *, rate: float,
                 duration_s: float | None, label_delay_s: float = 0.0,
                 drift_at_s: float | None = None, drifts: dict[str, str] | None = None,
                 seed: int = 0, settings: Settings | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        unknown = [m for m in models if m not in SOURCES]
        if unknown or not models:
            raise ValidationError(f"--models: expected some of {', '.join(SOURCES)}, got "
                                  f"{', '.join(unknown) or 'none'}")
        if rate <= 0:
            raise ValidationError(f"--rate: expected a positive number, got {rate:g}")
        self.client = client
        self.models = list(models)
        self.rate = rate
        self.duration_s = duration_s
        self.label_delay_s = label_delay_s
        self.drift_at_s = drift_at_s
        self.drifts = {m: k for m, k in (drifts or {}).items() if m in self.models}
        self.clock = clock
        self.detectors = {m: SOURCES[m].new_detector(client, settings) for m in self.models}
        self.streams = {m: _Stream(SOURCES[m], seed + i) for i, m in enumerate(self.models)}
        self.stats = {m: ModelStats() for m in self.models}
        self._labels: list[tuple[float, int, str, str, bool]] = []
        self._order = 0
        self.started: float | None = None

    def elapsed(self) -> float:
        return 0.0 if self.started is None else self.clock() - self.started

    def run(self, stop: threading.Event | None = None,
            progress: Callable[[Simulation], None] | None = None,
            progress_every_s: float = 1.0) -> dict[str, ModelStats]:
        stop = stop or threading.Event()
        self.started = self.clock()
        next_progress = self.started + progress_every_s
        while not stop.is_set():
            now = self.clock()
            elapsed = now - self.started
            if self.duration_s is not None and elapsed >= self.duration_s:
                break
            self._maybe_drift(elapsed)
            due = int(self.rate * elapsed) - sum(s.sent for s in self.stats.values())
            for i in range(max(due, 0)):
                self._one(self.models[i % len(self.models)], now)
            self._send_labels(now)
            if progress is not None and now >= next_progress:
                progress(self)
                next_progress = now + progress_every_s
            stop.wait(TICK_S)
        # the labels still pending fall due within label_delay_s: send them when due, or all
        # at once when stopped (none is lost)
        while self._labels and not stop.is_set():
            self._send_labels(self.clock())
            stop.wait(TICK_S)
        self._send_labels(float("inf"))
        return self.stats

    def _maybe_drift(self, elapsed: float) -> None:
        if self.drift_at_s is None or elapsed < self.drift_at_s:
            return
        for model, kind in self.drifts.items():
            if self.streams[model].drift is None:
                self.streams[model].drift = kind
                self.stats[model].drifted = True

    def _one(self, model: str, now: float) -> None:
        item = self.streams[model].next()
        method = getattr(self.detectors[model], SOURCES[model].method)
        immediate = item.label if self.label_delay_s <= 0 else None
        found: Detection = method(item.input, actual=immediate)
        stats = self.stats[model]
        stats.sent += 1
        stats.positives += item.label
        right = found.decision == item.label
        stats.correct += right
        stats.recent.append(right)
        if len(stats.recent) > RECENT:
            del stats.recent[: len(stats.recent) - RECENT]
        if immediate is not None:
            stats.labels_sent += 1
        elif found.prediction_id is not None:
            self._order += 1
            heapq.heappush(self._labels, (now + self.label_delay_s, self._order, model,
                                          found.prediction_id, item.label))

    def _send_labels(self, now: float) -> None:
        while self._labels and self._labels[0][0] <= now:
            _, _, model, prediction_id, label = heapq.heappop(self._labels)
            self.client.record_ground_truth(model, prediction_id, label)
            self.stats[model].labels_sent += 1


def ensure_deployed(registry: Registry, settings: Settings, models: Sequence[str],
                    actor: str) -> list[str]:
    """Register the built-in ``models`` that are not yet, and deploy to production those that
    run nothing there; returns what was done, one line each (an operator's own deployments
    are left as they are)."""
    from ..registry import builtin_models  # noqa: PLC0415 - the catalogue needs numpy

    done = []
    for entry in builtin_models(settings):
        if entry.name not in models:
            continue
        res = registry.register(entry.name, entry.version, entry.config, actor=actor,
                                display_name=entry.display_name,
                                description=entry.description, builtin=True, exist_ok=True)
        if res["created"]:
            done.append(f"registered {entry.name} {entry.version}")
        if registry.deployment(entry.name, "production") is None:
            registry.deploy(entry.name, entry.version, "production", actor=actor)
            done.append(f"deployed {entry.name} {entry.version} to production")
    return done
