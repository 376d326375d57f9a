"""What several reports share: which version a report is about."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..registry import Registry


def resolve_version(registry: Registry, name: str, version: str | None) -> str:
    """``version`` once checked to exist, else production's version, else the latest."""
    if version is None:
        return registry.default_version(name)
    registry.current(name, version)  # raises NotFoundError for an unknown model or version
    return version
