"""What the endpoints probe, each within its timeout: readiness and the health document."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from .. import keys
from ..health import ActiveQueues, bounded, check_health
from ..health.queues import Broker
from ..health.topology import read_topology
from ..settings import Settings

READY_TIMEOUT_S = 2.0
HEALTH_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Probes:
    """The server's connections and what it asks of them."""

    settings: Settings
    client: redis.Redis
    broker: Broker | None
    pools: Mapping[str, Sequence[str]] | None = None
    active_queues: ActiveQueues | None = None

    def ready(self, timeout_s: float = READY_TIMEOUT_S) -> bool:
        """Redis and the broker answer, and the registry is readable."""
        checks: list[tuple[str, Callable[[], Any]]] = [
            ("redis", self.client.ping),
            ("registry", lambda: self.client.smembers(keys.MODELS))]
        if self.broker is not None:
            checks.append(("broker", self.broker.ping))
        try:
            for what, fn in checks:
                bounded(fn, timeout_s, what)
        except Exception:  # noqa: BLE001 - any failure means not ready
            return False
        return True

    def redis_info(self, timeout_s: float = HEALTH_TIMEOUT_S) -> dict[str, Any]:
        """Latency, memory and persistence of the Redis holding the registry and metrics."""
        def read() -> dict[str, Any]:
            started = time.perf_counter()
            self.client.ping()
            latency_ms = (time.perf_counter() - started) * 1e3
            info: dict[str, Any] = self.client.info()
            found = read_topology(self.client, self.settings)
            return {"ok": found.ok, "latency_ms": round(latency_ms, 3),
                    "topology": found.to_dict(),
                    "used_memory_bytes": info.get("used_memory"),
                    "maxmemory_bytes": info.get("maxmemory"),
                    "aof_enabled": bool(info.get("aof_enabled")),
                    "rdb_last_save_at": info.get("rdb_last_save_time"),
                    "rdb_last_bgsave_status": info.get("rdb_last_bgsave_status")}
        try:
            return bounded(read, timeout_s, "redis")
        except Exception as exc:  # noqa: BLE001 - a failed probe is reported, not raised
            return {"ok": False, "error": str(exc).splitlines()[0] if str(exc) else
                    type(exc).__name__}

    def health(self, timeout_s: float = HEALTH_TIMEOUT_S) -> tuple[bool, dict[str, Any]]:
        """(healthy, the document of ``check_health`` with the Redis facts under ``redis``)."""
        found = check_health(self.client, self.settings, pools=self.pools,
                             active_queues=self.active_queues, broker=self.broker,
                             timeout_s=timeout_s)
        doc = found.to_dict()
        doc["redis"] = self.redis_info(timeout_s)
        healthy = found.verdict.healthy and bool(doc["redis"]["ok"])
        if not doc["redis"]["ok"] and doc["healthy"]:
            doc["status"], doc["healthy"] = "unhealthy", False
            doc["reasons"] = [*doc.get("reasons", []), *doc["redis"].get("topology", {}).get(
                "problems", [doc["redis"].get("error", "redis")])]
        return healthy, doc
