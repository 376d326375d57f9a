"""Read the aggregates back: windowed metrics, score histograms, pending and orphan counts.

Windows of a model version:
    last_100, last_1000   the most recent labeled outcomes (exact, from the recent ring)
    since_deployment      every event of the version (counters)
    last_hour             labeled outcomes whose label arrived in the last hour (minute buckets)
    any time window       ``time_window(window_s)``: minute, hour or day buckets, whichever are
                          still kept for that length (rounded outwards to whole buckets)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import redis

from . import keys, lua_scripts
from .binning import COARSE_BINS, DELAY_BASE_S, LATENCY_BASE_MS, SCORE_BINS
from .ingest.increments import HIST_ROWS, HIST_SIZE, RECENT_SIZE, unpack_ring
from .ingest.store import hist_type
from .metrics import confusion_from_arrays, confusion_metrics, exact_quantiles, histogram_quantiles
from .settings import Settings
from .timebuckets import DAY_S, Granularity, bucket_range, covering, day

COUNT_WINDOWS = {"last_100": 100, "last_1000": 1000}
LAST_HOUR_S = 3600


@dataclass
class WindowData:
    """Summed counters and score histograms of a time window."""

    counts: dict[str, float]
    hist: np.ndarray  # shape (HIST_ROWS, SCORE_BINS)
    granularity: str
    buckets: int

    def rows(self) -> dict[str, np.ndarray]:
        return {"tn": self.hist[0], "fp": self.hist[1], "fn": self.hist[2], "tp": self.hist[3],
                "all": self.hist[4]}


def _bins(counts: Mapping[str, float], prefix: str) -> np.ndarray:
    out = np.zeros(COARSE_BINS)
    for k, v in counts.items():
        if k.startswith(prefix):
            out[int(k[len(prefix):])] += float(v)
    return out


def counter_metrics(counts: Mapping[str, float]) -> dict[str, Any]:
    """Window metrics from summed bucket counters."""
    c = {k: float(v) for k, v in counts.items()}
    m = confusion_metrics(c.get("tp", 0), c.get("fp", 0), c.get("tn", 0), c.get("fn", 0))
    labeled = c.get("labeled", 0)
    m["avg_confidence"] = c.get("score_sum", 0) / labeled if labeled else None
    p50, p95 = histogram_quantiles(_bins(c, "lat:"), (0.5, 0.95), LATENCY_BASE_MS)
    m["latency_p50_ms"], m["latency_p95_ms"] = p50, p95
    m["predictions"] = int(c.get("n", 0))
    return m


def ring_metrics(ring: dict[str, np.ndarray]) -> dict[str, Any]:
    m = confusion_metrics(*confusion_from_arrays(ring["actual"], ring["predicted"]))
    m["avg_confidence"] = float(ring["score"].mean()) if ring["score"].size else None
    p50, p95 = exact_quantiles(ring["latency_ms"], (0.5, 0.95))
    m["latency_p50_ms"], m["latency_p95_ms"] = p50, p95
    return m


def delay_quantiles(counts: Mapping[str, float], qs: tuple[float, ...]) -> list[float | None]:
    return histogram_quantiles(_bins(counts, "delay:"), qs, DELAY_BASE_S)


class WindowReader:
    def __init__(self, raw: redis.Redis, settings: Settings,
                 clock: Callable[[], float] = time.time) -> None:
        self.redis = raw
        self.settings = settings
        self.clock = clock
        self._bucket_series = raw.register_script(lua_scripts.source("bucket_series.lua"))

    # ------------------------------------------------------------ count windows
    def recent(self, model: str, version: str, n: int = RECENT_SIZE) -> dict[str, np.ndarray]:
        """The last ``n`` labeled outcomes, newest first."""
        packed = cast("list[bytes]", self.redis.lrange(keys.recent(model, version), 0, n - 1))
        return unpack_ring(packed)

    def count_window(self, model: str, version: str, n: int) -> dict[str, Any]:
        return ring_metrics(self.recent(model, version, n))

    # ------------------------------------------------------------ counters
    def totals(self, model: str, version: str) -> dict[str, float]:
        return _decode_hash(self.redis.hgetall(keys.total(model, version)))

    def counters(self, model: str) -> dict[str, int]:
        raw = _decode_hash(self.redis.hgetall(keys.counters(model)))
        return {k: int(v) for k, v in raw.items()}

    def pending(self, model: str) -> int:
        return int(self.redis.hget(keys.pending_meta(model), keys.F_PENDING_COUNT) or 0)

    # ------------------------------------------------------------ time windows
    def time_window(self, model: str, version: str, window_s: float,
                    now: float | None = None, with_hist: bool = True,
                    gran: Granularity | None = None) -> WindowData:
        now = self.clock() if now is None else now
        window_s = min(window_s, self.settings.retention_days * DAY_S)  # nothing older is kept
        g = gran or covering(window_s, self.settings.retention_days)
        starts = bucket_range(now, window_s, g)
        return self.sum_buckets(model, version, g, starts, with_hist)

    def buckets(self, model: str, version: str, g: Granularity,
                starts: list[int]) -> list[dict[str, float]]:
        """Counters of each bucket, in order (empty dict for an empty bucket)."""
        pipe = self.redis.pipeline(transaction=False)
        for s in starts:
            pipe.hgetall(keys.agg(model, version, g.code, s))
        return [_decode_hash(h) for h in pipe.execute()]

    def bucket_series(self, model: str, version: str, g: Granularity, starts: list[int],
                      fields: tuple[str, ...]) -> tuple[list[dict[str, float]], dict[str, float]]:
        """In one command (lua/bucket_series.lua): ``fields`` of each bucket, in order (a field
        a bucket lacks is missing), and every counter of the buckets summed on the server (the
        ``counts`` ``sum_buckets`` returns, without reading each bucket's histograms)."""
        rows, flat = self._bucket_series(
            keys=[keys.agg(model, version, g.code, s) for s in starts], args=fields)
        n = len(fields)
        series = [{f: float(v) for f, v in zip(fields, rows[i:i + n], strict=True) if v}
                  for i in range(0, len(rows), n)]
        sums = {_text(flat[i]): float(flat[i + 1]) for i in range(0, len(flat), 2)}
        return series, sums

    def sum_buckets(self, model: str, version: str, g: Granularity, starts: list[int],
             with_hist: bool) -> WindowData:
        pipe = self.redis.pipeline(transaction=False)
        for s in starts:
            pipe.hgetall(keys.agg(model, version, g.code, s))
            if with_hist:
                pipe.get(keys.hist(model, version, g.code, s))
        replies = pipe.execute()
        counts: dict[str, float] = {}
        hist = np.zeros(HIST_SIZE, dtype=np.int64)
        dtype = ">u4" if hist_type(g.code) == "u32" else ">i8"
        width = np.dtype(dtype).itemsize
        step = 2 if with_hist else 1
        for i in range(0, len(replies), step):
            for k, v in _decode_hash(replies[i]).items():
                counts[k] = counts.get(k, 0.0) + v
            if with_hist and replies[i + 1]:
                raw = replies[i + 1]
                usable = len(raw) - len(raw) % width
                arr = np.frombuffer(raw[:usable], dtype=dtype)
                hist[:arr.size] += arr[:HIST_SIZE].astype(np.int64)
        return WindowData(counts=counts, hist=hist.reshape(HIST_ROWS, SCORE_BINS),
                          granularity=g.code, buckets=len(starts))

    def daily(self, model: str, version: str, days: int,
              now: float | None = None) -> list[tuple[int, dict[str, float]]]:
        now = self.clock() if now is None else now
        g = day(self.settings.retention_days)
        today = g.start(now)
        starts = [today - i * DAY_S for i in range(days - 1, -1, -1)]
        return list(zip(starts, self.buckets(model, version, g, starts), strict=True))

    # ------------------------------------------------------------ summaries
    def windows(self, model: str, version: str, now: float | None = None) -> dict[str, Any]:
        out = {name: self.count_window(model, version, n) for name, n in COUNT_WINDOWS.items()}
        out["since_deployment"] = counter_metrics(self.totals(model, version))
        out["last_hour"] = counter_metrics(
            self.time_window(model, version, LAST_HOUR_S, now, with_hist=False).counts)
        return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _decode_hash(raw: Mapping[Any, Any]) -> dict[str, float]:
    out = {}
    for k, v in raw.items():
        key = k.decode() if isinstance(k, bytes) else k
        out[key] = float(v)
    return out
