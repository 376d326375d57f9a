"""The job table: each scheduled job is declared once, and one entry is all a new job needs."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from mlops_tasks.beat.schedule import beat_schedule
from mlops_tasks.celery_config import worker_config
from mlops_tasks.cli import run_cmds
from mlops_tasks.jobs import JOBS, facts
from mlops_tasks.queues import ALL_QUEUES
from mlops_tasks.registry import Registry
from mlops_tasks.settings import Settings

from .conftest import wait_for
from .job_probe import PROBE
from .processes import WorkerProcess, project_env
from .redis_server import RedisServer
from .test_registry import register_catalogue

REPO = Path(__file__).resolve().parent.parent


def test_every_entry_is_complete_and_unique() -> None:
    """Names, short names and task names are unique; each queue exists, each interval setting
    is a setting, each function imports, and the soft limit comes before the hard one."""
    for field in ("name", "short", "task"):
        values = [getattr(j, field) for j in JOBS]
        assert len(set(values)) == len(values), f"duplicate {field}"
    settings_fields = {f.name for f in dataclasses.fields(Settings)}
    for job in JOBS:
        assert job.queue in ALL_QUEUES
        assert job.interval_setting in settings_fields
        assert callable(job.load())
        assert 0 < job.soft_time_limit_s < job.time_limit_s


def test_a_function_that_does_not_import_is_named() -> None:
    broken = dataclasses.replace(JOBS[0], function="mlops_tasks.jobs:no_such_function")
    with pytest.raises(ImportError, match=re.escape(
            "job ml-performance-monitoring: 'mlops_tasks.jobs:no_such_function' names no "
            "function")):
        broken.load()


def test_workers_beat_and_mlops_run_read_the_table(celery_session_app: Any) -> None:
    """Every entry is a task of the workers' app with the entry's time limits and route, a beat
    entry on its queue at its interval, and a choice of `mlops run`."""
    settings = Settings.from_env({})
    schedule = beat_schedule(settings)
    for job in JOBS:
        task = celery_session_app.tasks[job.task]
        assert (task.soft_time_limit, task.time_limit) == (job.soft_time_limit_s,
                                                           job.time_limit_s)
        assert task.acks_late is True
        assert celery_session_app.amqp.router.route({}, job.task)["queue"].name == job.queue
        assert schedule[job.name] == {"task": job.task, "schedule": float(job.interval_s(settings)),
                                      "options": {"queue": job.queue,
                                                  "expires": float(job.interval_s(settings))}}
    assert sorted(run_cmds.JOBS) == ["cleanup", "degradation", "monitoring", "tuning"]
    assert set(schedule) == {j.name for j in JOBS}


def test_the_table_is_cheap_to_import() -> None:
    """The CLI reads the table for every command: importing it loads no Celery, numpy or
    worker code (the functions are imported by the worker that runs them)."""
    code = ("import sys, mlops_tasks.jobs; print(sorted(m for m in ('celery', 'kombu', 'numpy', "
            "'scipy', 'mlops_tasks.workers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


class ProbeWorker(WorkerProcess):
    """A plain Celery worker (no -Q, no time-limit option) of a table holding the probe job."""

    def spawn(self) -> None:
        with self.log_path.open("wb") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.job_probe", "worker", *self.args], cwd=REPO,
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def probe_command(url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.job_probe", *args], cwd=REPO,
                          env=project_env(url, MLOPS_DATA_DIR=str(data_dir)),
                          capture_output=True, text=True, timeout=90)


@pytest.mark.slow
def test_a_new_job_needs_one_function_and_one_entry(tmp_path: Path) -> None:
    """Given a table with one more entry (tests/job_probe.py: a function and a Job, nothing
    else), then the workers' app registers its task with its limits and route, beat schedules
    it, `mlops run probe --wait` runs it through a real worker that records its facts, and the
    worker enforces its soft time limit."""
    server = RedisServer(tmp_path / "redis").start()
    client = server.client()
    worker = None
    try:
        register_catalogue(Registry(client, Settings.from_env({})))

        # when: what the app, beat and `mlops run` make of the table
        described = probe_command(server.url, tmp_path, "describe")
        assert described.returncode == 0, described.stderr
        doc = json.loads(described.stdout)

        # then
        assert doc["task"] == {"time_limit": 20, "soft_time_limit": 2}
        assert doc["route"] == PROBE.queue
        assert doc["schedule"] == {"task": PROBE.task, "schedule": 900.0,
                                   "options": {"queue": PROBE.queue, "expires": 900.0}}
        assert "probe" in doc["run_choices"]

        # when: `mlops run probe --wait`, with a plain worker running
        worker = ProbeWorker(server.url, tmp_path, "--concurrency=1", "--loglevel=INFO",
                             MLOPS_DATA_DIR=str(tmp_path)).start()
        run = probe_command(server.url, tmp_path, "mlops", "run", "probe", "--wait",
                            "--timeout", "30")

        # then: it ran in the worker and recorded its facts
        assert run.returncode == 0, run.stdout + run.stderr
        result = json.loads(run.stdout)
        assert result["job"] == "probe" and result["model"] is None
        assert worker.proc is not None and result["pid"] != worker.proc.pid  # a pool child
        ran = facts(client, PROBE.name)
        assert ran["runs"] == 1 and ran["success_rate"] == 1.0
        assert ran["last_summary"] == {"models": 3}

        # when: a run overruns the entry's soft limit (2 s)
        sender = Celery("sender", set_as_current=False)
        sender.config_from_object(worker_config(Settings.from_env({}), server.url, server.url))
        sender.send_task(PROBE.task, kwargs={"sleep_s": 6}, queue=PROBE.queue)

        # then: the worker interrupts it and the failure is recorded
        failed = wait_for(lambda: (f := facts(client, PROBE.name))["consecutive_failures"] and f,
                          timeout=30, what="the overrun to be recorded")
        assert failed["last_error"].startswith("SoftTimeLimitExceeded")
        assert failed["last_duration_s"] < 5
        sender.close()
    finally:
        if worker:
            worker.stop()
        server.stop()


def test_a_soft_time_limit_ends_the_whole_run_not_one_model(pipe: Any) -> None:
    """Given a per-model check that hits Celery's soft time limit, when a job runs it over the
    production models, then the limit ends the whole run (the job records a failure) instead of
    being reported as one model's failure while the run goes on; other errors stay per model."""
    import logging

    from billiard.exceptions import SoftTimeLimitExceeded

    from mlops_tasks import keys
    from mlops_tasks.monitoring.targets import check_each

    pipe.deploy("n1-detector")
    pipe.deploy("waf-behavioral")
    seen: list[str] = []

    def over_time(target: Any) -> Any:
        seen.append(target.name)
        raise SoftTimeLimitExceeded

    with pytest.raises(SoftTimeLimitExceeded):
        check_each(pipe.svc, None, "monitoring", over_time, keys.monitor_status,
                   logging.getLogger("test"), "failed", ())
    assert len(seen) == 1

    def broken(target: Any) -> Any:
        raise RuntimeError("one model")

    results = check_each(pipe.svc, None, "monitoring", broken, keys.monitor_status,
                         logging.getLogger("test"), "failed", ())
    assert [r.to_dict()["status"] for r in results] == ["failed", "failed"]
