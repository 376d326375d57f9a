"""Which model versions a job looks at: production's, or the one an operator names."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..locks import model_lock
from ..registry import Registry
from ..services import Services
from ..timefmt import iso


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


def check_each(svc: Services, model: str | None, job: str,
               check: Callable[[Target], dict[str, Any]], status_key: Callable[[str], str],
               log: logging.Logger, failure_message: str,
               kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    """Run ``check`` for every target under the model's ``job`` lock. One model's failure is
    logged with ``failure_message`` and reported in its result; the others still run. Each
    result is also kept at ``status_key(model)``, and alerts of ``kinds`` left by versions no
    longer in production are resolved."""
    now = svc.clock()
    results = []
    for t in targets(svc.registry, model):
        try:
            with model_lock(svc.redis, t.name, job) as mine:
                result = check(t) if mine else {
                    "name": t.name, "version": t.version, "status": "already_running",
                    "reason": f"another {job} run holds this model"}
                if mine:
                    svc.alerts.clear_other_versions(t.name, t.version, kinds)
        except Exception as exc:  # noqa: BLE001 - one model's failure is reported, not raised
            log.error(failure_message, extra={"model": t.name, "reason": str(exc)},
                      exc_info=True)
            result = {"name": t.name, "version": t.version, "status": "failed",
                      "reason": f"{type(exc).__name__}: {exc}"}
        result["checked_at"] = iso(now)
        svc.redis.set(status_key(t.name), json.dumps(result, default=str))
        results.append(result)
    return results
