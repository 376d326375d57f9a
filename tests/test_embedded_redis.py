"""With no REDIS_URL the tools bring their own Redis: started once, reused, stopped cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_tasks.embedded import EmbeddedRedis


def mlops(*args: str, data_dir: Path, expect: int = 0,
          **extra: str) -> subprocess.CompletedProcess:
    """Run the real CLI with no REDIS_URL (so the embedded Redis is used) and check its exit
    code."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env.update(MLOPS_DATA_DIR=str(data_dir), **extra)
    result = subprocess.run([sys.executable, "-m", "mlops_tasks.cli.main", *args], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == expect, result.stderr
    return result


@pytest.mark.slow
def test_embedded_redis_is_started_reused_persisted_and_stopped(tmp_path: Path) -> None:
    """The first command starts the server, later ones reuse it, stop flushes the append-only
    file and the next command brings the registry back from it."""
    # given no REDIS_URL and an empty data directory
    data = tmp_path / "data"
    server = EmbeddedRedis(data)
    try:
        # when commands run one after the other
        mlops("register-all-models", data_dir=data)
        pid = server.pid()  # asked of the server itself, not read from redis.pid
        assert server.is_running() and pid
        assert pid == int((data / "redis.pid").read_text())
        # then they share one server, reported as embedded with append-only persistence
        names = [m["name"] for m in json.loads(mlops("list-models", "--json",
                                                     data_dir=data).stdout)["models"]]
        assert names == ["n1-detector", "queue-anomaly", "waf-behavioral"]
        assert server.pid() == pid  # reused, not restarted
        health = json.loads(mlops("cache", "health", "--json", data_dir=data).stdout)
        assert health["embedded"] is True and health["persistence"] == "aof"
        assert health["url"].startswith("unix://")
        assert (data / "redis.sock").stat().st_mode & 0o077 == 0  # private socket
        # when it is stopped
        mlops("redis", "stop", data_dir=data)
        assert not server.is_running()
        # then the next command starts it again, and the append-only file brought the registry back.
        doc = json.loads(mlops("list-models", "--json", data_dir=data).stdout)
        assert len(doc["models"]) == 3
    finally:
        server.stop()


def test_cache_health_reports_an_unreachable_redis_in_one_line(tmp_path: Path) -> None:
    """An unreachable REDIS_URL is one line with the password masked."""
    result = mlops("cache", "health", data_dir=tmp_path, expect=1,
                   REDIS_URL="redis://:topsecret@127.0.0.1:1/0")
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: Redis at redis://:***@127.0.0.1:1/0 is unreachable")
    assert "topsecret" not in result.stderr


def test_cache_health_reports_latency_memory_keys_and_hit_rate(cli) -> None:
    """Health reports latency, memory, keys per family and the registry cache's hit rate."""
    cli("register-all-models")
    cli("deploy-to-production", "--all")
    doc = cli.json("cache", "health")
    assert doc["ping_ms"] >= 0
    assert doc["memory"]["used_bytes"] > 0
    assert doc["persistence"] == "aof"
    assert doc["keys"]["by_family"]["rev"] == 3
    assert set(doc["registry_cache"]) == {"hits", "misses", "hit_rate"}
