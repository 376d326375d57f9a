"""`mlops verify-systems`: one pass/fail line per part of the system."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import click
from mlops_tasks.workers.pools import POOLS

from mlops_tasks.client import MonitoringClient
from mlops_tasks.errors import MlopsError
from mlops_tasks.registry import ModelConfig, builtin_models
from mlops_tasks.settings import mask_url

from .context import EXIT_FAILURE, App, json_option, pass_app
from .output import emit
from .scheduler_cmds import beat_state

PROBE_MODEL = "mlops-probe"
PROBE_CONFIG = {"decision_threshold": 0.5, "accuracy_threshold": 0.5, "severity": "info",
                "tuning": {"parameter": "probe_threshold", "min": 0.4, "max": 0.6,
                           "step": 0.1, "enabled": False},
                "enabled": False, "params": {}}


def _check(name: str, fn: Callable[[], str]) -> dict[str, Any]:
    started = time.monotonic()
    try:
        detail, ok = fn(), True
    except Exception as exc:  # noqa: BLE001 - every failure becomes a FAIL line
        detail, ok = (str(exc) if isinstance(exc, MlopsError)
                      else f"{type(exc).__name__}: {exc}").splitlines()[0], False
    return {"name": name, "ok": ok, "detail": detail,
            "seconds": round(time.monotonic() - started, 3)}


def _workers(app: App, timeout_s: float) -> dict[str, list[str]]:
    from mlops_tasks.workers.app import app as celery_app  # noqa: PLC0415

    replies = celery_app.control.inspect(timeout=timeout_s).active_queues() or {}
    return {host: [q["name"] for q in queues] for host, queues in replies.items()}


@click.command("verify-systems")
@click.option("--timeout", type=click.FloatRange(min=0.5), default=15.0, show_default=True,
              help="Seconds to wait for workers and for the probe event.")
@json_option
@pass_app
def verify_systems(app: App, timeout: float, as_json: bool) -> None:
    """Check Redis, the broker, each worker pool, beat, the registry catalogue and the metrics
    pipeline (a synthetic event through the real path); exit 1 if any check fails."""
    checks = []

    def redis_check() -> str:
        start = time.perf_counter()
        app.plain_redis().ping()
        elapsed_ms = (time.perf_counter() - start) * 1e3
        return f"{mask_url(app.redis_url)} answered in {elapsed_ms:.1f} ms"

    def broker_check() -> str:
        from mlops_tasks.workers.app import app as celery_app  # noqa: PLC0415

        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
            return f"{conn.as_uri()} reachable"  # as_uri() masks the password

    checks.append(_check("redis", redis_check))
    checks.append(_check("broker", broker_check))
    try:
        workers = _workers(app, min(timeout, 3.0))
    except Exception:  # noqa: BLE001 - reported per pool below
        workers = {}
    for name, pool in POOLS.items():
        if name == "all":
            continue

        def pool_check(pool: Any = pool) -> str:
            serving = sorted(h for h, qs in workers.items() if set(pool.queues) <= set(qs))
            if not serving:
                raise MlopsError(f"no worker consumes {', '.join(pool.queues)} "
                                 f"(start `mlops worker --pool {pool.name}`)")
            return f"{', '.join(pool.queues)} consumed by {', '.join(serving)}"
        checks.append(_check(f"pool {name}", pool_check))

    def beat_check() -> str:
        state = beat_state(app)
        if not state["alive"]:
            raise MlopsError("no beat leader heartbeat (start `mlops beat`)")
        return f"leader {state['leader']}, last heartbeat {state['last_heartbeat_at']}"
    checks.append(_check("beat", beat_check))

    def catalogue_check() -> str:
        missing = [f"{e.name} {e.version}" for e in builtin_models(app.settings)
                   if e.name not in app.registry.model_names()
                   or e.version not in app.registry.versions(e.name)]
        if missing:
            raise MlopsError(f"not registered: {', '.join(missing)} "
                             f"(run `mlops register-all-models`)")
        return f"{len(builtin_models(app.settings))} built-in models registered"
    checks.append(_check("registry catalogue", catalogue_check))

    def pipeline_check() -> str:
        reg = app.registry
        reg.register(PROBE_MODEL, "1.0.0", ModelConfig.from_dict(PROBE_CONFIG),
                     actor="verify-systems", description="synthetic events of verify-systems",
                     exist_ok=True)
        before = int(app.windows.totals(PROBE_MODEL, "1.0.0").get("n", 0))
        started = time.monotonic()
        with MonitoringClient(redis_url=app.redis_url, settings=app.settings) as client:
            client.record_prediction(PROBE_MODEL, 0.75, actual=True)
            if not client.flush(timeout):
                raise MlopsError(f"the client could not send: {client.stats()['last_error']}")
        while time.monotonic() - started < timeout:
            if int(app.windows.totals(PROBE_MODEL, "1.0.0").get("n", 0)) > before:
                return (f"a synthetic event went client -> mlops.events -> worker -> Redis in "
                        f"{time.monotonic() - started:.2f}s")
            time.sleep(0.05)
        raise MlopsError(f"the synthetic event was not counted within {timeout:g}s")
    checks.append(_check("metrics pipeline", pipeline_check))

    ok = all(c["ok"] for c in checks)
    emit_lines = "\n".join(f"{'PASS' if c['ok'] else 'FAIL'}  {c['name']:<20} {c['detail']}"
                           for c in checks)
    emit(as_json, {"ok": ok, "checks": checks}, emit_lines)
    if not ok:
        sys.exit(EXIT_FAILURE)


def register(group: click.Group) -> None:
    group.add_command(verify_systems)
