"""Which model versions a job looks at: production's, or the one an operator names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..registry import Registry


@dataclass(frozen=True)
class Target:
    name: str
    version: str
    display_name: str
    config: dict[str, Any]
    deployed_ts: float | None


def target(registry: Registry, name: str) -> Target:
    """The version production runs, else the latest registered one."""
    meta = registry.meta(name)
    deployed = registry.deployment(name, "production")
    version = deployed["version"] if deployed else registry.latest_version(name)
    config = registry.current(name, version)["config"]
    return Target(name=name, version=version, display_name=meta.get("display_name", name),
                  config=config, deployed_ts=deployed.get("deployed_ts") if deployed else None)


def targets(registry: Registry, model: str | None = None) -> list[Target]:
    """Every model deployed to production, or just ``model`` (deployed or not)."""
    if model is not None:
        return [target(registry, model)]
    return [target(registry, n) for n in registry.model_names()
            if registry.deployment(n, "production") is not None]
