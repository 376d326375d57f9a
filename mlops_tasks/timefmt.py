"""Time stamps as text: ISO-8601 in UTC, the one format of every JSON document and log line.

``iso(ts)`` gives whole seconds (``2024-05-01T12:00:00Z``), the format of alert, run and report
times (they compare as strings); ``iso(ts, ms=True)`` adds milliseconds
(``2024-05-01T12:00:00.250Z``) for audit entries and log lines; ``day(ts)`` is the UTC date of
per-day series; ``from_iso(text)`` reads either form back. ``ts`` is seconds since the epoch,
from the caller's (injected) clock.
"""

from __future__ import annotations

import calendar
import time


def iso(ts: float, *, ms: bool = False) -> str:
    """``ts`` as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC, or with ``ms`` as ``YYYY-MM-DDTHH:MM:SS.mmmZ``
    (milliseconds truncated, never rounded up into the next second)."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))
    return f"{whole}.{int(ts % 1 * 1000):03d}Z" if ms else f"{whole}Z"


def day(ts: float) -> str:
    """The UTC date of ``ts``: ``YYYY-MM-DD``."""
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def from_iso(text: str) -> float:
    """Seconds since the epoch of a time written by ``iso`` (with or without milliseconds)."""
    whole, _, frac = text.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return seconds + (int(frac) / 10 ** len(frac) if frac else 0.0)
