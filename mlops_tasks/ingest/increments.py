"""From a batch of events to the increments of the aggregates: pure numpy, no I/O.

Two kinds of facts are aggregated per model version:

* a **prediction** (at prediction time): counted in ``n``, its score in histogram row 4 and
  ``score_sum_all``, its latency in the latency histogram;
* a **labeled outcome** (when its label is known: at prediction time for immediate labels, at
  label time for delayed ones): counted in the confusion matrix (as recorded: ``predicted``
  against ``actual``), its score in histogram row ``2 * actual + predicted`` and ``score_sum``,
  its label delay in the delay histogram, and pushed to the recent-outcomes ring.

Histogram rows: 0 = true negatives, 1 = false positives, 2 = false negatives, 3 = true
positives, 4 = every prediction; each row has ``SCORE_BINS`` bins.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..binning import (
    DELAY_BASE_S,
    LATENCY_BASE_MS,
    SCORE_BINS,
    coarse_bin,
    fine_code,
    score_bins,
)
from ..timebuckets import Granularity

HIST_ROWS = 5
ROW_ALL = 4
HIST_SIZE = HIST_ROWS * SCORE_BINS
RECENT_SIZE = 1000

RING_RECORD = struct.Struct("<bbff")  # actual, predicted, score, latency_ms (NaN: none)

CONFUSION_FIELDS = ("tn", "fp", "fn", "tp")  # indexed by 2 * actual + predicted


@dataclass
class BucketDelta:
    """Increments of one aggregate bucket (or of the since-deployment totals)."""

    hist: np.ndarray = field(default_factory=lambda: np.zeros(HIST_SIZE, dtype=np.int64))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    sums: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, other: BucketDelta) -> None:
        self.hist += other.hist
        for k, v in other.counts.items():
            self.counts[k] += v
        for k, total in other.sums.items():
            self.sums[k] += total


@dataclass
class Increments:
    """Everything one batch adds, keyed by version."""

    buckets: dict[tuple[str, str, int], BucketDelta] = field(default_factory=dict)
    totals: dict[str, BucketDelta] = field(default_factory=dict)
    recent: dict[str, list[bytes]] = field(default_factory=dict)

    def bucket(self, version: str, g: Granularity, start: int) -> BucketDelta:
        key = (version, g.code, start)
        if key not in self.buckets:
            self.buckets[key] = BucketDelta()
        return self.buckets[key]

    def total(self, version: str) -> BucketDelta:
        if version not in self.totals:
            self.totals[version] = BucketDelta()
        return self.totals[version]


def by_version(versions: Sequence[Any]) -> list[tuple[Any, np.ndarray]]:
    """(version, indices of its events) for each distinct version, sorted by version. A batch
    is almost always of one version: that case costs one C-level count, no per-event work."""
    n = len(versions)
    if n == 0:
        return []
    first = versions[0]
    if versions.count(first) == n:
        return [(first, np.arange(n))]
    distinct = sorted(set(versions))
    code = {v: i for i, v in enumerate(distinct)}
    codes = np.fromiter((code[v] for v in versions), dtype=np.int64, count=n)
    return [(v, np.flatnonzero(codes == i)) for i, v in enumerate(distinct)]


def _groups(groups: list[tuple[str, np.ndarray]], times: np.ndarray, g: Granularity
            ) -> list[tuple[str, int, np.ndarray]]:
    """(version, bucket start, indices) for every group of events."""
    starts = (np.floor(times / g.size_s).astype(np.int64)) * g.size_s
    out: list[tuple[str, int, np.ndarray]] = []
    for version, vidx in groups:
        vstarts = starts[vidx]
        first = vstarts[0]
        if vstarts[-1] == first and bool((vstarts == first).all()):
            out.append((version, int(first), vidx))
            continue
        out.extend((version, int(start), vidx[vstarts == start]) for start in np.unique(vstarts))
    return out


def _fill_predictions(delta: BucketDelta, bins: np.ndarray, scores: np.ndarray,
                      latency_ms: np.ndarray) -> None:
    delta.hist[ROW_ALL * SCORE_BINS:(ROW_ALL + 1) * SCORE_BINS] += np.bincount(
        bins, minlength=SCORE_BINS)
    delta.counts["n"] += int(bins.size)
    delta.sums["score_sum_all"] += float(scores.sum())
    lat = coarse_bin(latency_ms, LATENCY_BASE_MS)
    for b, c in zip(*np.unique(lat[lat > 0], return_counts=True), strict=True):
        delta.counts[f"lat:{int(b)}"] += int(c)


def _fill_outcomes(delta: BucketDelta, bins: np.ndarray, scores: np.ndarray, actual: np.ndarray,
                   predicted: np.ndarray, delay_s: np.ndarray) -> None:
    rows = 2 * actual.astype(np.int64) + predicted.astype(np.int64)
    delta.hist[:4 * SCORE_BINS] += np.bincount(rows * SCORE_BINS + bins,
                                               minlength=4 * SCORE_BINS)
    per_row = np.bincount(rows, minlength=4)
    for name, c in zip(CONFUSION_FIELDS, per_row, strict=True):
        if c:
            delta.counts[name] += int(c)
    delta.counts["labeled"] += int(bins.size)
    delta.sums["score_sum"] += float(scores.sum())
    delayed = coarse_bin(delay_s, DELAY_BASE_S)
    if np.any(delayed > 0):
        delta.counts["delayed"] += int(np.sum(delayed > 0))
        for b, c in zip(*np.unique(delayed[delayed > 0], return_counts=True), strict=True):
            delta.counts[f"delay:{int(b)}"] += int(c)


def add_predictions(inc: Increments, grans: tuple[Granularity, ...], versions: list[str],
                    times: np.ndarray, scores: np.ndarray, latency_ms: np.ndarray) -> None:
    """Count predictions (labeled or not) at their prediction time."""
    if not versions:
        return
    bins = score_bins(scores)
    groups = by_version(versions)
    for g in grans:
        for version, start, idx in _groups(groups, times, g):
            _fill_predictions(inc.bucket(version, g, start), bins[idx], scores[idx],
                              latency_ms[idx])
    for version, idx in groups:
        _fill_predictions(inc.total(version), bins[idx], scores[idx], latency_ms[idx])


def add_outcomes(inc: Increments, grans: tuple[Granularity, ...], versions: list[str],
                 times: np.ndarray, scores: np.ndarray, actual: np.ndarray,
                 predicted: np.ndarray, latency_ms: np.ndarray,
                 delay_s: np.ndarray | None = None, bins: np.ndarray | None = None) -> None:
    """Count labeled outcomes at ``times`` (their label time), in event order."""
    if not versions:
        return
    n = len(versions)
    bins = score_bins(scores) if bins is None else bins
    delay = np.full(n, np.nan) if delay_s is None else delay_s
    groups = by_version(versions)
    for g in grans:
        for version, start, idx in _groups(groups, times, g):
            _fill_outcomes(inc.bucket(version, g, start), bins[idx], scores[idx], actual[idx],
                           predicted[idx], delay[idx])
    for version, vidx in groups:
        _fill_outcomes(inc.total(version), bins[vidx], scores[vidx], actual[vidx],
                       predicted[vidx], delay[vidx])
        ring = inc.recent.setdefault(version, [])
        ring.extend(pack_ring(actual, predicted, scores, latency_ms, vidx[-RECENT_SIZE:]))
        del ring[:-RECENT_SIZE]


_RING_DTYPE = np.dtype([("actual", "i1"), ("predicted", "i1"), ("score", "<f4"),
                        ("latency_ms", "<f4")])


def pack_ring(actual: np.ndarray, predicted: np.ndarray, scores: np.ndarray,
              latency_ms: np.ndarray, idx: np.ndarray) -> list[bytes]:
    """RING_RECORD records of events ``idx``, packed by numpy (byte for byte the same)."""
    rec = np.empty(idx.size, dtype=_RING_DTYPE)
    rec["actual"] = actual[idx]
    rec["predicted"] = predicted[idx]
    rec["score"] = scores[idx]
    rec["latency_ms"] = latency_ms[idx]
    buf = rec.tobytes()
    size = RING_RECORD.size
    return [buf[i:i + size] for i in range(0, len(buf), size)]


def unpack_ring(records: list[bytes]) -> dict[str, np.ndarray]:
    """Recent outcomes, newest first, as columns."""
    if not records:
        empty = np.zeros(0)
        return {"actual": empty.astype(np.int8), "predicted": empty.astype(np.int8),
                "score": empty, "latency_ms": empty}
    arr = np.frombuffer(b"".join(records), dtype=_RING_DTYPE)
    return {"actual": arr["actual"].astype(np.int8), "predicted": arr["predicted"].astype(np.int8),
            "score": arr["score"].astype(np.float64),
            "latency_ms": arr["latency_ms"].astype(np.float64)}


# A prediction awaiting its label: score bin, quantized score, minute of prediction, latency
# code, version index, predicted flag: 12 bytes (see _PENDING_DTYPE).
SCORE_Q = 65535


_PENDING_DTYPE = np.dtype([("bin", "<u2"), ("score_q", "<u2"), ("minute", "<u4"),
                           ("lat", "<u2"), ("vidx", "u1"), ("predicted", "u1")])


def pack_pending(bins: np.ndarray, scores: np.ndarray, times: np.ndarray,
                 latency_ms: np.ndarray, vidx: np.ndarray, predicted: np.ndarray) -> list[bytes]:
    rec = np.empty(len(bins), dtype=_PENDING_DTYPE)
    rec["bin"] = bins
    rec["score_q"] = np.rint(np.asarray(scores) * SCORE_Q)
    rec["minute"] = np.asarray(times) // 60
    rec["lat"] = fine_code(latency_ms)
    rec["vidx"] = vidx
    rec["predicted"] = predicted
    buf = rec.tobytes()
    size = _PENDING_DTYPE.itemsize
    return [buf[i:i + size] for i in range(0, len(buf), size)]


def unpack_pending(records: list[bytes]) -> dict[str, np.ndarray]:
    arr = np.frombuffer(b"".join(records), dtype=_PENDING_DTYPE)
    return {"bin": arr["bin"].astype(np.int64),
            "score": arr["score_q"].astype(np.float64) / SCORE_Q,
            "time": arr["minute"].astype(np.float64) * 60 + 30,
            "lat": arr["lat"].astype(np.int64), "vidx": arr["vidx"].astype(np.int64),
            "predicted": arr["predicted"].astype(np.int8)}

