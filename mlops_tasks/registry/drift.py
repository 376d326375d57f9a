"""Configuration drift: what differs between deployed, registered and default configurations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .catalogue import CatalogueEntry
from .store import ENVIRONMENTS, Registry


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"tuning": {"step": 0.05}}`` -> ``{"tuning.step": 0.05}``."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Dotted paths whose value differs between two configurations, sorted."""
    a, b = flatten(before), flatten(after)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def drift_report(registry: Registry, catalogue: Iterable[CatalogueEntry]) -> list[dict[str, Any]]:
    defaults = {e.name: e.config.to_dict() for e in catalogue}
    report = []
    for name in registry.model_names():
        deployments = registry.deployments(name)
        for env in ENVIRONMENTS:
            dep = deployments[env]
            if dep is None:
                continue
            history = registry.revisions(name, dep["version"])
            deployed = flatten(history[-1]["config"])
            registered = flatten(history[0]["config"])
            default = flatten(defaults[name]) if name in defaults else None
            fields = sorted(k for k in deployed
                            if deployed[k] != registered.get(k)
                            or (default is not None and deployed[k] != default.get(k)))
            report.append({
                "name": name,
                "env": env,
                "version": dep["version"],
                "revision": history[-1]["revision"],
                "deployed_revision": dep["revision"],
                "changed_since_deploy": history[-1]["revision"] != dep["revision"],
                "status": "drifted" if fields else "in_sync",
                "differences": [
                    {"field": f, "deployed": deployed[f], "registered": registered.get(f),
                     "default": default.get(f) if default is not None else None}
                    for f in fields],
            })
    return report
