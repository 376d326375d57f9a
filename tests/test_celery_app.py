"""The workers' Celery app as Celery users run it: `celery -A mlops_tasks.workers.app worker`
with no option consumes every queue and enforces the tasks' time limits, and importing or
configuring the app never starts a Redis of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from mlops_tasks.celery_config import worker_config
from mlops_tasks.embedded import EmbeddedRedis
from mlops_tasks.jobs import JOBS
from mlops_tasks.queues import ALL_QUEUES, EVENTS_QUEUE, TASK_INGEST_PREDICTIONS
from mlops_tasks.registry import Registry
from mlops_tasks.settings import ENV_PREFIX, Settings, known_variables

from .conftest import wait_for
from .processes import WorkerProcess
from .redis_server import RedisServer
from .test_pipeline import MODEL, totals
from .test_registry import register_catalogue

JOB = {j.short: j for j in JOBS}


class CeleryWorker(WorkerProcess):
    """`celery -A mlops_tasks.workers.app worker ARGS`, as a Celery user starts it."""

    def spawn(self) -> None:
        with self.log_path.open("wb") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "mlops_tasks.workers.app", "worker",
                 *self.args], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)


@pytest.mark.slow
def test_a_plain_celery_worker_consumes_every_queue(tmp_path: Path) -> None:
    """Given `celery -A mlops_tasks.workers.app worker` started without -Q, when a task is sent
    to each of the three queues, then each runs, and the worker knows every task's time
    limit."""
    server = RedisServer(tmp_path / "redis").start()
    worker = None
    sender = Celery("sender", set_as_current=False)
    sender.config_from_object(worker_config(Settings.from_env({}), server.url, server.url))
    try:
        register_catalogue(Registry(server.client(), Settings.from_env({})))
        worker = CeleryWorker(server.url, tmp_path, "--concurrency=1", "--loglevel=INFO",
                              "--hostname=plain@%h", MLOPS_DATA_DIR=str(tmp_path)).start()

        # when
        batch = {"v": 1, "kind": "predictions", "batch_id": "plain-1", "model": MODEL, "n": 3,
                 "score": [0.9, 0.2, 0.8], "actual": [1, 0, 1]}
        sender.send_task(TASK_INGEST_PREDICTIONS, args=[batch], queue=EVENTS_QUEUE)
        monitoring = sender.send_task(JOB["monitoring"].task, kwargs={"model": None},
                                      queue=JOB["monitoring"].queue)
        tuning = sender.send_task(JOB["tuning"].task, kwargs={"model": None, "dry_run": True},
                                  queue=JOB["tuning"].queue)

        # then
        assert monitoring.get(timeout=60)["job"] == "monitoring"
        assert tuning.get(timeout=60)["job"] == "tuning"
        wait_for(lambda: totals(server.url).get("n") == 3, timeout=30, what="the ingested batch")
        inspect = sender.control.inspect(timeout=5)
        (queues,) = inspect.active_queues().values()
        assert sorted(q["name"] for q in queues) == sorted(ALL_QUEUES)
        (registered,) = inspect.registered("time_limit", "soft_time_limit").values()
        for job in JOBS:
            assert (f"{job.task} [time_limit={job.time_limit_s} "
                    f"soft_time_limit={job.soft_time_limit_s}]") in registered
        assert f"{TASK_INGEST_PREDICTIONS} [time_limit=300]" in registered
    finally:
        sender.close()
        if worker:
            worker.stop()
        server.stop()


def redis_servers_of(folder: Path) -> list[int]:
    """Pids of the redis-server processes whose command line names ``folder``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and b"redis-server" in argv[0] and any(os.fsencode(folder) in a for a in argv):
            found.append(int(entry.name))
    return found


@pytest.fixture
def short_data_dir() -> Iterator[Path]:
    """A data directory short enough for the embedded Redis's socket; stopped afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="mlops-")) / "data"
    yield folder
    EmbeddedRedis(folder).stop()
    shutil.rmtree(folder.parent)


def run(data_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``python ARGV`` with no setting but MLOPS_DATA_DIR."""
    env = {k: v for k, v in os.environ.items()
           if k not in known_variables() and not k.startswith(ENV_PREFIX)}
    env["MLOPS_DATA_DIR"] = str(data_dir)
    return subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True,
                          timeout=60)


def test_the_app_never_starts_a_redis_of_its_own(short_data_dir: Path) -> None:
    """Given no REDIS_URL and no embedded Redis running, when the app is imported and then
    configured, then no redis-server starts and nothing is created in MLOPS_DATA_DIR, and the
    error says how to start one or set REDIS_URL. Once an `mlops` command started the embedded
    Redis, the app uses it."""
    # when
    imported = run(short_data_dir, "-c", "import mlops_tasks.workers.app")
    configured = run(short_data_dir, "-c",
                     "from mlops_tasks.workers.app import app; app.conf.broker_url")

    # then
    assert imported.returncode == 0, imported.stderr
    assert configured.returncode == 1
    last = configured.stderr.strip().splitlines()[-1]
    assert last == ("mlops_tasks.errors.RedisUnavailableError: no Redis: REDIS_URL is not set "
                    f"and the embedded Redis of {short_data_dir} is not running; start it with "
                    "`mlops redis start` (with the same MLOPS_DATA_DIR), or set REDIS_URL")
    assert not short_data_dir.exists()
    assert redis_servers_of(short_data_dir) == []

    # when: an `mlops` command starts the embedded Redis
    started = run(short_data_dir, "-m", "mlops_tasks.cli.main", "redis", "start")
    assert started.returncode == 0, started.stderr
    configured = run(short_data_dir, "-c",
                     "from mlops_tasks.workers.app import app; print(app.conf.broker_url)")

    # then: the app uses it
    assert configured.returncode == 0, configured.stderr
    socket = EmbeddedRedis(short_data_dir).socket_path
    assert configured.stdout.strip() == f"redis+socket://{socket}"
    assert len(redis_servers_of(short_data_dir)) == 1
