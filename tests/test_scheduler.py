"""Beat, worker pools and scheduler health, with real workers and real beat processes on a
compressed schedule (seconds instead of minutes)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from mlops_tasks import keys
from mlops_tasks.jobs import JOBS, facts
from mlops_tasks.registry import Registry
from mlops_tasks.settings import Settings
from mlops_tasks.workers.pools import POOLS

from .conftest import wait_for
from .processes import BeatProcess, WorkerProcess, project_env
from .redis_server import RedisServer
from .test_registry import register_catalogue

COMPRESSED = {"MLOPS_MONITORING_INTERVAL_S": "2", "MLOPS_DEGRADATION_INTERVAL_S": "3",
              "MLOPS_TUNING_INTERVAL_S": "3", "MLOPS_CLEANUP_INTERVAL_S": "4",
              "MLOPS_BEAT_MAX_INTERVAL_S": "0.5", "MLOPS_BEAT_LOCK_TIMEOUT_S": "2"}


def mlops(url: str, *args: str, env: dict[str, str] | None = None,
          data_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = dict(env or {})
    if data_dir:
        extra["MLOPS_DATA_DIR"] = str(data_dir)
    return subprocess.run([sys.executable, "-m", "mlops_tasks.cli.main", *args],
                          env=project_env(url, **extra), capture_output=True, text=True,
                          timeout=60)


def runs(client: redis.Redis, job: str) -> int:
    return facts(client, job)["runs"]


def leader(client: redis.Redis) -> str | None:
    raw = client.get(keys.BEAT_LEADER)
    return json.loads(raw)["id"] if raw else None


@pytest.mark.slow
def test_two_beats_schedule_every_job_once_and_hand_over(tmp_path: Path) -> None:
    """Given two beat processes and a worker on a schedule of seconds, then all four jobs run
    and record their facts, each job is scheduled once per interval (not twice), and killing
    the leader hands over to the standby within the lock timeout."""
    server = RedisServer(tmp_path / "redis").start()
    client = server.client()
    procs: list = []
    try:
        registry = Registry(client, Settings.from_env({}))
        register_catalogue(registry)
        for name in registry.model_names():
            registry.deploy(name, "1.0.0", "production", actor="test")
        procs.append(WorkerProcess(server.url, tmp_path, "--pool", "all", "--concurrency", "2",
                                   **COMPRESSED).start())
        first = BeatProcess(server.url, tmp_path, **COMPRESSED).start()
        procs.append(first)
        wait_for(lambda: leader(client), timeout=20, what="a leader")
        second = BeatProcess(server.url, tmp_path, **COMPRESSED).start()
        procs.append(second)
        wait_for(lambda: len(list(client.scan_iter("mlops:beat:instance:*"))) == 2,
                 timeout=20, what="a standby")
        start = {j.name: runs(client, j.name) for j in JOBS}
        t0 = time.monotonic()
        time.sleep(12)
        elapsed = time.monotonic() - t0
        for job in JOBS:
            done = runs(client, job.name) - start[job.name]
            interval = job.interval_s(Settings.from_env(COMPRESSED))
            assert done >= 1, f"{job.name} never ran"
            assert done <= elapsed / interval + 2, f"{job.name} ran {done} times in {elapsed:.0f}s"
            f = facts(client, job.name)
            assert f["last_success_at"] and f["last_duration_s"] is not None
            assert f["success_rate"] == 1.0 and f["consecutive_failures"] == 0
        status = json.loads(mlops(server.url, "scheduler", "status", "--json",
                                  env=COMPRESSED, data_dir=tmp_path).stdout)
        assert status["beat"]["alive"] is True
        assert sorted(i["role"] for i in status["beat"]["instances"]) == ["leader", "standby"]
        names = [j["name"] for j in status["jobs"]]
        assert names == ["ml-performance-monitoring", "ml-degradation-detection",
                         "ml-auto-tuning", "ml-registry-cleanup"]
        for j in status["jobs"]:
            assert {"interval_s", "last_run_at", "last_success_at", "last_duration_s",
                    "consecutive_failures", "success_rate", "next_run_at"} <= set(j)
        assert "ML monitoring scheduler initialized (jobs_scheduled: 4, models_monitored: 3)" \
            in first.log() + second.log()
        health = mlops(server.url, "scheduler", "health", env=COMPRESSED, data_dir=tmp_path)
        assert health.returncode == 0, health.stdout + health.stderr

        # Kill the leader: the standby takes over within lock timeout + max interval.
        old = leader(client)
        (first if old in first.log() else second).kill()
        killed_at = time.monotonic()
        wait_for(lambda: leader(client) not in (None, old) or None, timeout=15,
                 interval=0.1, what="the standby to take over")
        takeover = time.monotonic() - killed_at
        assert takeover < 2 + 0.5 + 10  # lock timeout + max interval + heartbeat TTL slack
        before = runs(client, "ml-performance-monitoring")
        wait_for(lambda: runs(client, "ml-performance-monitoring") > before, timeout=10,
                 what="jobs after the takeover")
    finally:
        for p in procs:
            p.stop()
        server.stop()


@pytest.mark.slow
def test_a_failing_job_shows_up_in_scheduler_health(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    client = server.client()
    procs: list = []
    try:
        register_catalogue(Registry(client, Settings.from_env({})))
        client.delete(keys.MODELS)
        client.set(keys.MODELS, "not a set")  # every job now fails reading the registry
        procs.append(WorkerProcess(server.url, tmp_path, "--concurrency", "1",
                                   **COMPRESSED).start())
        procs.append(BeatProcess(server.url, tmp_path, **COMPRESSED).start())
        wait_for(lambda: facts(client, "ml-performance-monitoring")["consecutive_failures"] >= 3,
                 timeout=30, what="three failures in a row")
        health = mlops(server.url, "scheduler", "health", env=COMPRESSED, data_dir=tmp_path)
        assert health.returncode == 1
        assert "unhealthy: ml-performance-monitoring: failed" in health.stdout
        assert "times in a row (last error: ResponseError" in health.stdout
        doc = json.loads(mlops(server.url, "scheduler", "health", "--json", env=COMPRESSED,
                               data_dir=tmp_path).stdout)
        assert doc["healthy"] is False and doc["problems"]
    finally:
        for p in procs:
            p.stop()
        server.stop()


@pytest.mark.slow
def test_a_missed_slot_runs_once_on_recovery(tmp_path: Path) -> None:
    """Given beat and the workers down for several intervals, when they come back, then each
    job runs once, not once per missed slot."""
    server = RedisServer(tmp_path / "redis").start()
    client = server.client()
    procs: list = []
    try:
        register_catalogue(Registry(client, Settings.from_env({})))
        worker = WorkerProcess(server.url, tmp_path, "--concurrency", "1", **COMPRESSED).start()
        beat = BeatProcess(server.url, tmp_path, **COMPRESSED).start()
        procs += [worker, beat]
        wait_for(lambda: runs(client, "ml-performance-monitoring") >= 1, timeout=20,
                 what="a first run")
        beat.kill()
        worker.kill()
        time.sleep(8)  # four monitoring intervals missed
        before = runs(client, "ml-performance-monitoring")
        procs.append(WorkerProcess(server.url, tmp_path, "--concurrency", "1",
                                   **COMPRESSED).start())
        procs.append(BeatProcess(server.url, tmp_path, **COMPRESSED).start())
        wait_for(lambda: runs(client, "ml-performance-monitoring") > before, timeout=20,
                 what="the run on recovery")
        time.sleep(1.0)  # less than one interval: a burst of catch-up runs would show here
        assert runs(client, "ml-performance-monitoring") - before == 1
    finally:
        for p in procs:
            p.stop()
        server.stop()


def test_scheduler_health_says_when_beat_is_not_running(cli) -> None:
    result = cli("scheduler", "health", expect=1)
    assert "unhealthy: beat: no leader heartbeat" in result.stdout
    status = cli.json("scheduler", "status")
    assert status["beat"]["alive"] is False and len(status["jobs"]) == 4


def test_pools_have_their_queues_and_settings() -> None:
    events = POOLS["events"].argv(None)
    assert "--queues=mlops.events" in events and "--prefetch-multiplier=16" in events
    monitoring = POOLS["monitoring"].argv(3)
    assert "--queues=mlops.monitoring" in monitoring and "--concurrency=3" in monitoring
    assert "--prefetch-multiplier=1" in monitoring
    assert "--task-events" in POOLS["tuning"].argv(None)
    assert POOLS["all"].queues == ("mlops.events", "mlops.monitoring", "mlops.tuning")
    # time limits are the tasks' own (the job table), not a pool's command line
    assert not [a for p in POOLS.values() for a in p.argv(None) if "time-limit" in a]
