"""``mlops_workers_alive`` without making a scrape wait for the workers.

Celery workers keep no heartbeat in Redis: liveness is the same bounded question ``/health``
asks (``worker_liveness``: which queues each worker consumes, over Celery's remote control,
which waits up to its reply timeout). The collector never asks it itself: it reads the last
answer, at most ``MAX_AGE_S`` old, and when that answer is older than ``REFRESH_S`` starts one
question in a background thread (never two at once). The first scrapes after start, and any
scrape while every answer is stale, therefore have no ``mlops_workers_alive`` sample.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric

from ..health import ActiveQueues, PoolLiveness, bounded, worker_liveness

REFRESH_S = 5.0
MAX_AGE_S = 30.0
ASK_TIMEOUT_S = 5.0


class LivenessCache:
    def __init__(self, pools: Mapping[str, Sequence[str]], active_queues: ActiveQueues,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.pools = pools
        self.active_queues = active_queues
        self.clock = clock
        self._lock = threading.Lock()
        self._value: tuple[PoolLiveness, ...] | None = None
        self._at = float("-inf")
        self._asking = False

    def _ask(self) -> None:
        try:
            value = bounded(lambda: worker_liveness(self.pools, self.active_queues),
                            ASK_TIMEOUT_S, "workers")
        except Exception:  # noqa: BLE001 - a hung question leaves the last answer to age
            value = None
        with self._lock:
            if value is not None:
                self._value, self._at = value, self.clock()
            self._asking = False

    def current(self) -> tuple[PoolLiveness, ...] | None:
        """The last answer if fresh enough (None otherwise); starts a refresh when due."""
        with self._lock:
            age = self.clock() - self._at
            if age >= REFRESH_S and not self._asking:
                self._asking = True
                threading.Thread(target=self._ask, name="mlops-workers-alive",
                                 daemon=True).start()
            return self._value if age < MAX_AGE_S else None


def worker_metrics(lives: tuple[PoolLiveness, ...] | None) -> Iterator[Metric]:
    alive = GaugeMetricFamily("mlops_workers_alive", "workers consuming every queue of the pool "
                              "(asked in the background every few seconds, as /health asks)",
                              labels=["pool"])
    for pool in lives or ():
        alive.add_metric([pool.name], len(pool.workers))
    yield alive
