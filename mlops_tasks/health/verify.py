"""`mlops verify-systems`: one pass/fail check per part of the system, each timed.

Redis, the broker, each worker pool, beat, the registry catalogue, and the metrics pipeline (a
synthetic event sent through the real client, queue and worker). The caller passes the Celery
app and the pools, so the library never imports the workers package.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..connection import call, connect
from ..errors import MlopsError
from ..settings import mask_url
from .beat import beat_state
from .probe import bounded
from .topology import read_topology
from .workers import celery_active_queues, worker_liveness

if TYPE_CHECKING:
    from ..services import Services

PROBE_MODEL = "mlops-probe"
PROBE_CONFIG = {"decision_threshold": 0.5, "accuracy_threshold": 0.5, "severity": "info",
                "tuning": {"parameter": "probe_threshold", "min": 0.4, "max": 0.6,
                           "step": 0.1, "enabled": False},
                "enabled": False, "params": {}}
WORKER_REPLY_S = 3.0  # longest wait for workers to say which queues they consume


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail,
                "seconds": self.seconds}


@dataclass(frozen=True)
class SystemsCheck:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.to_dict() for c in self.checks]}


def run_check(name: str, fn: Callable[[], str], timeout_s: float | None = None) -> Check:
    """``fn`` returns the PASS detail or raises; any exception becomes a FAIL line. With
    ``timeout_s``, a check that takes longer fails."""
    started = time.monotonic()
    try:
        detail = fn() if timeout_s is None else bounded(fn, timeout_s, name)
        ok = True
    except Exception as exc:  # noqa: BLE001 - every failure becomes a FAIL line
        detail, ok = (str(exc) if isinstance(exc, MlopsError)
                      else f"{type(exc).__name__}: {exc}").splitlines()[0], False
    return Check(name=name, ok=ok, detail=detail,
                 seconds=round(time.monotonic() - started, 3))


def verify_systems(svc: Services, redis_url: str, celery_app: Any,
                   pools: Mapping[str, Sequence[str]], timeout_s: float) -> SystemsCheck:
    """Every check, in order; ``pools`` maps each dedicated pool to its queues."""
    checks = []

    def redis_check() -> str:
        start = time.perf_counter()
        client = connect(redis_url)
        call(redis_url, client.ping)
        client.ping()
        elapsed_ms = (time.perf_counter() - start) * 1e3
        return f"{mask_url(redis_url)} answered in {elapsed_ms:.1f} ms"

    def broker_check() -> str:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout_s)
            return f"{conn.as_uri()} reachable"  # as_uri() masks the password

    def topology_check() -> str:
        found = read_topology(svc.redis, svc.settings)
        if found.problems:
            raise MlopsError(found.summary())
        return found.summary()

    checks.append(run_check("redis", redis_check, timeout_s))
    checks.append(run_check("store topology", topology_check, timeout_s))
    checks.append(run_check("broker", broker_check, timeout_s + 1.0))
    reply_s = min(timeout_s, WORKER_REPLY_S)
    ask = celery_active_queues(celery_app, reply_s)
    for pool in worker_liveness(pools, lambda: bounded(ask, reply_s + 1.0, "workers")):
        def pool_check(pool: Any = pool) -> str:
            if not pool.alive:
                raise MlopsError(pool.detail)
            return str(pool.detail)
        checks.append(run_check(f"pool {pool.name}", pool_check))

    def beat_check() -> str:
        state = beat_state(svc.redis, svc.settings)
        if not state.alive or state.leader is None:
            raise MlopsError("no beat leader heartbeat (start `mlops beat`)")
        doc = state.to_dict()
        return f"leader {doc['leader']}, last heartbeat {doc['last_heartbeat_at']}"
    checks.append(run_check("beat", beat_check, timeout_s))

    def catalogue_check() -> str:
        from ..registry import builtin_models  # noqa: PLC0415 - the catalogue imports numpy

        reg = svc.registry
        entries = builtin_models(svc.settings)
        missing = [f"{e.name} {e.version}" for e in entries
                   if e.name not in reg.model_names() or e.version not in reg.versions(e.name)]
        if missing:
            raise MlopsError(f"not registered: {', '.join(missing)} "
                             f"(run `mlops register-all-models`)")
        return f"{len(entries)} built-in models registered"
    checks.append(run_check("registry catalogue", catalogue_check, timeout_s))
    checks.append(run_check("metrics pipeline",
                            lambda: pipeline_check(svc, redis_url, timeout_s)))
    return SystemsCheck(tuple(checks))


def pipeline_check(svc: Services, redis_url: str, timeout_s: float) -> str:
    """Send one synthetic event of the probe model through the client and wait until a worker
    has counted it (within ``timeout_s`` to send and as long again to be counted)."""
    from ..client import MonitoringClient  # noqa: PLC0415 - imports Celery
    from ..registry import ModelConfig  # noqa: PLC0415 - imports numpy

    svc.registry.register(PROBE_MODEL, "1.0.0", ModelConfig.from_dict(PROBE_CONFIG),
                          actor="verify-systems",
                          description="synthetic events of verify-systems", exist_ok=True)
    before = int(svc.windows.totals(PROBE_MODEL, "1.0.0").get("n", 0))
    started = time.monotonic()
    with MonitoringClient(redis_url=redis_url, settings=svc.settings) as client:
        client.record_prediction(PROBE_MODEL, 0.75, actual=True)
        if not client.flush(timeout_s):
            raise MlopsError(f"the client could not send: {client.stats()['last_error']}")
    while time.monotonic() - started < timeout_s:
        if int(svc.windows.totals(PROBE_MODEL, "1.0.0").get("n", 0)) > before:
            return (f"a synthetic event went client -> mlops.events -> worker -> Redis in "
                    f"{time.monotonic() - started:.2f}s")
        time.sleep(0.05)
    raise MlopsError(f"the synthetic event was not counted within {timeout_s:g}s")
