"""Semantic versions (https://semver.org): validation and ordering.

A version is matched whole (a trailing newline is not part of it) and is at most
``MAX_VERSION_CHARS`` characters: it is part of Redis keys and every record that names it.
"""

from __future__ import annotations

import re

from ..errors import ValidationError
from .limits import quote

MAX_VERSION_CHARS = 64

# \Z, not $: `$` also matches before a trailing newline. Also imported by wire.py.
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?\Z"
)


def validate(version: str, field: str = "version") -> str:
    if (not isinstance(version, str) or len(version) > MAX_VERSION_CHARS
            or not _SEMVER.fullmatch(version)):
        raise ValidationError(
            f"{field}: expected a semantic version such as 1.0.0 (at most {MAX_VERSION_CHARS} "
            f"characters), got {quote(version)}")
    return version


# major, minor, patch, 1 for a release (0 for a pre-release), the pre-release identifiers
SortKey = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]


def sort_key(version: str) -> SortKey:
    """Order by precedence: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-beta < 1.0.0 < 1.0.1."""
    m = _SEMVER.fullmatch(version)
    if not m:
        raise ValidationError(f"version: expected a semantic version, got {quote(version)}")
    major, minor, patch, pre = int(m[1]), int(m[2]), int(m[3]), m[4]
    if pre is None:
        return (major, minor, patch, 1, ())
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (major, minor, patch, 0, ids)


def ordered(versions: list[str]) -> list[str]:
    return sorted(versions, key=sort_key)
