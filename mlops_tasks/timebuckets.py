"""Time buckets of the aggregates: minutes for the last hours, hours for the last days, days for
the retention period. Memory is bounded by the number of buckets, never by the traffic."""

from __future__ import annotations

import math
from dataclasses import dataclass

DAY_S = 86400


@dataclass(frozen=True)
class Granularity:
    code: str
    size_s: int
    keep_s: int

    def start(self, ts: float) -> int:
        return math.floor(ts / self.size_s) * self.size_s

    def expire_at(self, bucket_start: int) -> int:
        return bucket_start + self.size_s + self.keep_s


MINUTE = Granularity("m", 60, 3 * 3600)
HOUR = Granularity("h", 3600, 8 * DAY_S)


def day(retention_days: int) -> Granularity:
    return Granularity("d", DAY_S, retention_days * DAY_S)


def granularities(retention_days: int) -> tuple[Granularity, ...]:
    return (MINUTE, HOUR, day(retention_days))


def covering(window_s: float, retention_days: int) -> Granularity:
    """The finest granularity whose buckets are still kept for a window of this length."""
    for g in granularities(retention_days):
        if window_s <= g.keep_s:
            return g
    return day(retention_days)


def bucket_range(now: float, window_s: float, g: Granularity) -> list[int]:
    """Starts of the buckets covering [now - window_s, now], oldest first. The window is
    rounded outwards to whole buckets."""
    first = g.start(now - window_s + 1e-6)
    last = g.start(now)
    return list(range(first, last + 1, g.size_s))
