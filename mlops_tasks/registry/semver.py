"""Semantic versions (https://semver.org): validation and ordering."""

from __future__ import annotations

import re

from ..errors import ValidationError

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


def validate(version: str, field: str = "version") -> str:
    if not isinstance(version, str) or not _SEMVER.match(version):
        raise ValidationError(
            f"{field}: expected a semantic version such as 1.0.0, got {version!r}")
    return version


def sort_key(version: str) -> tuple:
    """Order by precedence: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-beta < 1.0.0 < 1.0.1."""
    m = _SEMVER.match(version)
    if not m:
        raise ValidationError(f"version: expected a semantic version, got {version!r}")
    major, minor, patch, pre = int(m[1]), int(m[2]), int(m[3]), m[4]
    if pre is None:
        return (major, minor, patch, 1, ())
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (major, minor, patch, 0, ids)


def ordered(versions: list[str]) -> list[str]:
    return sorted(versions, key=sort_key)
