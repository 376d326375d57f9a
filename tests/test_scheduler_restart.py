"""`mlops scheduler restart` with a real prefork worker, a real solo worker and real beats."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import redis

from mlops_tasks import keys
from mlops_tasks.client import MonitoringClient
from mlops_tasks.registry import Registry
from mlops_tasks.settings import Settings

from .conftest import wait_for
from .processes import BeatProcess, WorkerProcess
from .redis_server import RedisServer
from .test_pipeline import MODEL, _stream, totals
from .test_registry import register_catalogue
from .test_scheduler import COMPRESSED, leader, mlops


def beat_pids(client: redis.Redis) -> dict[str, int]:
    found = [json.loads(v) for k in client.scan_iter(keys.beat_instance("*"))
             if (v := client.get(k))]
    return {d["id"]: d["pid"] for d in found}


@pytest.mark.slow
def test_restart_replaces_pool_children_and_beats_while_events_keep_flowing(
        tmp_path: Path) -> None:
    """Given a prefork worker, two beats and a detector streaming events, when `scheduler
    restart` runs mid-stream, then every pool child is new, both beats re-executed themselves
    (same pid, new instance), a leader is back, and every event is counted exactly once."""
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    client = server.client()
    procs: list = []
    try:
        register_catalogue(Registry(client, Settings.from_env({})))
        procs.append(WorkerProcess(server.url, tmp_path, "--concurrency", "2",
                                   **COMPRESSED).start())
        procs += [BeatProcess(server.url, tmp_path, **COMPRESSED).start() for _ in range(2)]
        wait_for(lambda: len(beat_pids(client)) == 2 and leader(client), timeout=30,
                 what="two beats, one leading")
        before = beat_pids(client)
        detector = MonitoringClient(server.url, redis_url=server.url, flush_interval_ms=20,
                                    settings=Settings.from_env({}))
        done = threading.Event()
        sent = [0]

        def keep_sending() -> None:  # until the restart is over, 100 events every 20 ms
            while not done.wait(0.02):
                _stream(detector, 100, sent[0])
                sent[0] += 100

        sender = threading.Thread(target=keep_sending)
        sender.start()
        try:
            result = mlops(server.url, "scheduler", "restart", "--json", "--timeout", "45")
        finally:
            done.set()
            sender.join()
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)
        (worker,) = report["workers"]
        assert worker["restarted"] is True
        assert worker["children_after"] and \
            not set(worker["children_before"]) & set(worker["children_after"])
        assert sorted(b["pid"] for b in report["beats"]) == sorted(before.values())
        assert all(b["restarted"] and b["new_instance"] not in before for b in report["beats"])
        wait_for(lambda: leader(client) and leader(client) not in before, timeout=30,
                 what="a leader among the new beat instances")
        assert sorted(beat_pids(client).values()) == sorted(before.values())
        assert all(p.proc.poll() is None for p in procs)
        assert detector.flush(30)
        detector.close()
        assert sent[0] > 0
        wait_for(lambda: totals(server.url, MODEL).get("n") == sent[0], timeout=60,
                 what=f"all {sent[0]} events")
        assert "scheduler restarting on request" in procs[1].log() + procs[2].log()
    finally:
        for p in procs:
            p.stop()
        server.stop()


@pytest.mark.slow
def test_a_solo_pool_is_reported_as_not_restarted(tmp_path: Path) -> None:
    """A solo pool has no children to replace: the report says so and the command exits 1
    rather than claim a restart that did not happen."""
    server = RedisServer(tmp_path / "redis").start()
    worker = None
    try:
        worker = WorkerProcess(server.url, tmp_path, "--concurrency", "1", "--",
                               "--pool=solo").start()
        result = mlops(server.url, "scheduler", "restart", "--json", "--timeout", "10")
        assert result.returncode == 1, result.stdout + result.stderr
        (only,) = json.loads(result.stdout)["workers"]
        assert only["restarted"] is False and "solo" in only["detail"]
        human = mlops(server.url, "scheduler", "restart", "--timeout", "10")
        assert human.returncode == 1 and "not restarted" in human.stdout
        assert "Traceback" not in human.stderr
    finally:
        if worker:
            worker.stop()
        server.stop()


def test_restart_with_nothing_running_says_so(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()  # the session's broker has a worker
    try:
        result = mlops(server.url, "scheduler", "restart", "--timeout", "2")
        assert result.returncode == 1 and "nothing to restart" in result.stdout
    finally:
        server.stop()
