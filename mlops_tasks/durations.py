"""Human durations on the command line: 90s, 15m, 2h, 7d, 90days, 1w, "1 week ago"."""

from __future__ import annotations

import re

from .errors import ValidationError

_UNITS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
          "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
          "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
          "d": 86400, "day": 86400, "days": 86400,
          "w": 604800, "week": 604800, "weeks": 604800}
MAX_DURATION_S = 3650 * 86400
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)(?:\s+ago)?\s*$")


def parse_duration(text: str, option: str = "duration") -> float:
    """Seconds in ``text``; a bare number is seconds; a trailing "ago" (``1 week ago``,
    ``3 days ago``) reads as the same duration, for options that name a point in the past."""
    m = _DURATION.match(str(text).lower())
    if not m or (m[2] and m[2] not in _UNITS):
        raise ValidationError(
            f"{option}: expected a duration such as 90s, 15m, 2h or 7d, got {text!r}")
    seconds = float(m[1]) * _UNITS.get(m[2] or "s", 1)
    if seconds <= 0:
        raise ValidationError(f"{option}: expected a positive duration, got {text!r}")
    if seconds > MAX_DURATION_S:
        raise ValidationError(f"{option}: expected at most 10 years, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
