"""The registry cache's miss rate over a recent window, and its alert ``registry_cache_miss_rate``.

The counters behind ``mlops_registry_cache_requests_total`` (``keys.cache_stats(m)``, fields
``hits`` and ``misses``, counted by ``lua/cached_get.lua`` at every read of a resolved
configuration) only ever grow. Each check keeps a sample of every model's two counters in
:func:`samples_key` and judges the difference between now and the newest sample at least
:data:`WINDOW_S` old (at most :data:`MAX_AGE_S`; the monitoring job samples every 5 minutes):

* fewer than :data:`MIN_REQUESTS` reads in the window: not judged (a few cold-start misses after
  a restart or `mlops cache clear` never fire it, and a firing alert stays as it is);
* more than :data:`MISS_RATE` of them missed: the alert fires (warning);
* otherwise it resolves.

A counter that went down (its hash was deleted) counts from zero.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from .. import keys
from ..alerts.model import NO_VERSION, Alert
from ..alerts.subjects import REGISTRY
from ..services import Services
from .results import AlertRaised

KIND = "registry_cache_miss_rate"
WINDOW_S = 1800.0  # the reads of the last 30 minutes are judged (as the Prometheus rule does)
MAX_AGE_S = 4 * WINDOW_S  # an older sample is no baseline (the checks stopped meanwhile)
MIN_REQUESTS = 100  # fewer reads than this in the window are not judged
MISS_RATE = 0.10  # a miss rate over this fires the alert

Counts = Mapping[str, tuple[int, int]]  # model -> (hits, misses)


def samples_key() -> str:
    """ZSET: JSON ``{"at", "counts": {model: [hits, misses]}}`` scored by ``at``; trimmed by
    every check to the samples it may still need, expires after MAX_AGE_S."""
    return keys.ALERTS_CACHE_SAMPLES


@dataclass(frozen=True)
class Window:
    """The reads between a sample and now."""

    hits: int
    misses: int

    @property
    def requests(self) -> int:
        return self.hits + self.misses

    @property
    def miss_rate(self) -> float | None:
        return self.misses / self.requests if self.requests else None


def window(before: Counts, now: Counts) -> Window:
    """The reads counted between two samples, summed over models (pure). A model's counter
    that went down was reset, and counts from zero."""
    hits = misses = 0
    for model, (h, m) in now.items():
        h0, m0 = before.get(model, (0, 0))
        hits += h - h0 if h >= h0 else h
        misses += m - m0 if m >= m0 else m
    return Window(hits, misses)


def verdict(w: Window) -> str:
    """``insufficient_data``, ``alerting`` or ``ok`` (pure)."""
    if w.requests < MIN_REQUESTS:
        return "insufficient_data"
    return "alerting" if w.misses > MISS_RATE * w.requests else "ok"


def message(w: Window) -> str:
    return (f"Registry Cache Miss Rate High: {(w.miss_rate or 0.0) * 100:.1f}% of "
            f"{w.requests} configuration reads missed in the last {WINDOW_S / 60:g} min "
            f"(threshold {MISS_RATE * 100:g}%)")


def _read_counts(svc: Services) -> dict[str, tuple[int, int]]:
    names = svc.registry.model_names()
    pipe = svc.redis.pipeline(transaction=False)
    for n in names:
        pipe.hmget(keys.cache_stats(n), [keys.F_CACHE_HITS, keys.F_CACHE_MISSES])
    return {n: (int(h or 0), int(m or 0))
            for n, (h, m) in zip(names, pipe.execute(), strict=True)}


def _sample(svc: Services, now: float) -> tuple[Counts | None, dict[str, tuple[int, int]]]:
    """Take a sample; return the baseline sample's counts (None without one) and the new."""
    key = samples_key()
    current = _read_counts(svc)
    older = cast("list[tuple[str, float]]", svc.redis.zrangebyscore(
        key, now - MAX_AGE_S, now - WINDOW_S, withscores=True))
    base: Counts | None = None
    pipe = svc.redis.pipeline(transaction=True)
    if older:
        raw, at = older[-1]
        base = {m: (int(c[0]), int(c[1])) for m, c in json.loads(raw)["counts"].items()}
        pipe.zremrangebyscore(key, "-inf", f"({at}")  # older than the baseline: not needed
    else:
        pipe.zremrangebyscore(key, "-inf", f"({now - MAX_AGE_S}")
    pipe.zadd(key, {json.dumps({"at": now, "counts": current}): now})
    pipe.expire(key, int(MAX_AGE_S))
    pipe.execute()
    return base, current


@dataclass(frozen=True)
class CacheCheck:
    status: str  # ok, alerting, insufficient_data
    window: Window | None  # None without a sample old enough
    alert: AlertRaised | None


def check_cache_miss_rate(svc: Services) -> CacheCheck:
    """Sample the counters and raise or clear ``registry_cache_miss_rate``."""
    base, current = _sample(svc, svc.clock())
    if base is None:
        return CacheCheck("insufficient_data", None, None)
    w = window(base, current)
    status = verdict(w)
    alert = None
    if status == "alerting":
        decision = svc.alerts.raise_alert(Alert(
            REGISTRY, NO_VERSION, KIND, "warning", message(w),
            {"miss_rate": w.miss_rate, "hits": w.hits, "misses": w.misses,
             "requests": w.requests, "window_s": WINDOW_S, "threshold": MISS_RATE,
             "min_requests": MIN_REQUESTS}))
        alert = AlertRaised(decision.alert.id, decision.notify, decision.reason)
    elif status == "ok":
        svc.alerts.clear(REGISTRY, NO_VERSION, KIND)
    return CacheCheck(status, w, alert)
