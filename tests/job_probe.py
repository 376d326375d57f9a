"""A scheduled job that exists only in tests: one function and one entry in the job table.

``python -m tests.job_probe COMMAND ARGS...`` adds the entry to the table first thing, before
anything reads the table (as if it were written in mlops_tasks/jobs.py), then runs COMMAND:

    worker ARGS   a plain Celery worker of the workers' app (`celery worker ARGS`, no -Q)
    mlops ARGS    the `mlops` command line
    describe      what the app, beat and `mlops run` made of the entry, as JSON on stdout
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from mlops_tasks import jobs
from mlops_tasks.jobs import Job
from mlops_tasks.queues import MONITORING_QUEUE
from mlops_tasks.services import Services

PROBE = Job(name="ml-probe", short="probe", task="mlops.monitoring.probe",
            queue=MONITORING_QUEUE, interval_setting="degradation_interval_s",
            function="tests.job_probe:probe", soft_time_limit_s=2, time_limit_s=20)


def probe(svc: Services, summary: dict[str, Any], model: str | None = None,
          sleep_s: float = 0.0) -> dict[str, Any]:
    """Counts the registered models; sleeps first when asked (to overrun its soft limit)."""
    time.sleep(sleep_s)
    summary["models"] = len(svc.registry.model_names())
    return {"job": "probe", "model": model, "pid": os.getpid()}


def add_to_table() -> None:
    jobs.JOBS = (*jobs.JOBS, PROBE)


def describe() -> dict[str, Any]:
    from mlops_tasks.beat.schedule import beat_schedule
    from mlops_tasks.cli import run_cmds
    from mlops_tasks.settings import Settings
    from mlops_tasks.workers.app import app

    app.finalize()
    task = app.tasks.get(PROBE.task)
    return {
        "task": None if task is None else {"time_limit": task.time_limit,
                                           "soft_time_limit": task.soft_time_limit},
        "route": app.amqp.router.route({}, PROBE.task).get("queue").name,
        "schedule": beat_schedule(Settings.from_env()).get(PROBE.name),
        "run_choices": sorted(run_cmds.JOBS),
    }


def main(argv: list[str]) -> None:
    add_to_table()
    command, *args = argv
    if command == "worker":
        from mlops_tasks.workers.app import app

        app.worker_main(["worker", *args])
    elif command == "mlops":
        from mlops_tasks.cli.main import cli

        cli.main(args, prog_name="mlops")
    elif command == "describe":
        print(json.dumps(describe()))  # noqa: T201 - the output the test reads
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
