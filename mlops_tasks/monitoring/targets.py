"""Which model versions a job looks at: production's, or the one an operator names."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, Self, TypeVar

from ..jobs import time_limit_reached
from ..locks import model_lock
from ..registry import Registry
from ..services import Services
from ..timefmt import iso
from .results import NotChecked


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


class ModelResult(Protocol):
    """One model's result of a check (monitoring.results): it says its status, takes the time
    it was checked at, and has one JSON form."""

    @property
    def status(self) -> str: ...

    def checked(self, at: str) -> Self: ...

    def to_dict(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=ModelResult)


def check_each(svc: Services, model: str | None, job: str, check: Callable[[Target], R],
               status_key: Callable[[str], str], log: logging.Logger, failure_message: str,
               kinds: tuple[str, ...]) -> tuple[R | NotChecked, ...]:
    """Run ``check`` for every target under the model's ``job`` lock. One model's failure is
    logged with ``failure_message`` and reported in its result; the others still run. Each
    result is also kept, as JSON, at ``status_key(model)``, and alerts of ``kinds`` left by
    versions no longer in production are resolved."""
    at = iso(svc.clock())
    results: list[R | NotChecked] = []
    for t in targets(svc.registry, model):
        result: R | NotChecked
        try:
            with model_lock(svc.redis, t.name, job) as mine:
                if mine:
                    result = check(t)
                    svc.alerts.clear_other_versions(t.name, t.version, kinds)
                else:
                    result = NotChecked(t.name, t.version, "already_running",
                                        f"another {job} run holds this model")
        except Exception as exc:  # one model's failure is reported (and logged), not raised
            if time_limit_reached(exc):
                raise
            log.exception(failure_message, extra={"model": t.name, "reason": str(exc)})
            result = NotChecked(t.name, t.version, "failed", f"{type(exc).__name__}: {exc}")
        result = result.checked(at)
        svc.redis.set(status_key(t.name), json.dumps(result.to_dict(), default=str))
        results.append(result)
    return tuple(results)


def last_checks(svc: Services, names: list[str],
                status_key: Callable[[str], str]) -> dict[str, dict[str, Any]]:
    """Each model's last result of a job as ``check_each`` kept it at ``status_key(model)``
    (the JSON of its check or of ``NotChecked``), for the models that have one."""
    pipe = svc.redis.pipeline(transaction=False)
    for n in names:
        pipe.get(status_key(n))
    return {n: json.loads(v) for n, v in zip(names, pipe.execute(), strict=True) if v}
