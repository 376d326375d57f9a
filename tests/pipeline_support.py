"""A fake clock and a pipeline of real services around it, for monitoring and tuning tests."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from mlops_tasks.ingest.pipeline import Ingestor
from mlops_tasks.services import Services
from mlops_tasks.settings import Settings

from .test_registry import register_catalogue


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Pipeline:
    """Services with a fake clock, an ingestor on the same clock, and recorded webhooks."""

    def __init__(self, redis_url: str, dispatch: Any = "record") -> None:
        self.clock = Clock()
        self.dispatched: list[tuple[int, dict[str, Any]]] = []
        if dispatch == "record":
            def record(i: int, d: dict[str, Any]) -> None:
                self.dispatched.append((i, d))
            dispatch = record
        self.svc = Services.connect(Settings.from_env(), redis_url, dispatch=dispatch,
                                    clock=self.clock)
        register_catalogue(self.svc.registry)
        self.ingestor = Ingestor(self.svc.settings, self.svc.registry, self.svc.raw,
                                 clock=self.clock, cache_ttl_s=0)
        self.batches = 0

    def deploy(self, model: str, ago_s: float = 0.0) -> None:
        real = self.svc.registry.clock
        self.svc.registry.clock = lambda: self.clock.now - ago_s
        self.svc.registry.deploy(model, "1.0.0", "production", actor="test")
        self.svc.registry.clock = real

    def feed(self, model: str, n: int, accuracy: float, *, at: float | None = None,
             scores: np.ndarray | None = None, seed: int = 0) -> None:
        """``n`` labeled outcomes of which exactly ``round(accuracy * n)`` are correct."""
        rng = np.random.default_rng(seed + self.batches)
        s = rng.random(n) if scores is None else scores
        predicted = (rng.random(n) < 0.5).astype(int)
        correct = np.zeros(n, dtype=bool)
        correct[rng.permutation(n)[: round(accuracy * n)]] = True
        actual = np.where(correct, predicted, 1 - predicted)
        for lo in range(0, n, 5000):
            self.batches += 1
            self.ingestor.ingest_predictions({
                "v": 1, "kind": "predictions", "batch_id": f"feed-{self.batches}",
                "model": model, "n": min(5000, n - lo), "score": s[lo:lo + 5000].tolist(),
                "predicted": predicted[lo:lo + 5000].tolist(),
                "actual": actual[lo:lo + 5000].tolist(),
                "timestamp": self.clock.now if at is None else at})

    def active(self) -> list[dict[str, Any]]:
        return [a.to_dict() for a in self.svc.alerts.store.active(
            self.svc.registry.model_names())]

    def alerting_waf(self) -> None:
        """waf-behavioral degraded from 90 % to 70 %, n1-detector healthy; then a monitoring
        run and a degradation check (a minute later: checks read whole minutes)."""
        from mlops_tasks.monitoring.degradation import run_degradation
        from mlops_tasks.monitoring.performance import run_monitoring

        self.deploy("n1-detector", ago_s=7200)
        self.deploy("waf-behavioral", ago_s=7200)
        self.feed("waf-behavioral", 1000, 0.9, at=self.clock.now - 7000)
        self.feed("waf-behavioral", 5000, 0.7)
        self.feed("n1-detector", 500, 0.9)
        run_monitoring(self.svc)
        self.clock.now += 60
        run_degradation(self.svc)
