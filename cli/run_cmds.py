"""`mlops run JOB`: send a job to its Celery queue, as beat does, and optionally wait for it."""

from __future__ import annotations

import time
from typing import Any

import click
import redis
from kombu.exceptions import OperationalError

from mlops_tasks.errors import MlopsError, RedisUnavailableError
from mlops_tasks.jobs import JOBS as SCHEDULED
from mlops_tasks.jobs import Job
from mlops_tasks.settings import mask_url

from .context import App, json_option, pass_app
from .output import emit, to_json

# `mlops run SHORT` -> the scheduled job, from the job table
JOBS: dict[str, Job] = {j.short: j for j in SCHEDULED}


def send_and_wait(job: str, kwargs: dict[str, Any], wait: bool, timeout: float) -> Any:
    """Send the job; with ``wait``, its result, or MlopsError naming the queue on timeout."""
    from celery.exceptions import TimeoutError as CeleryTimeout  # noqa: PLC0415 - heavy import

    from mlops_tasks.workers.app import app as celery_app  # noqa: PLC0415 - heavy import

    task, queue = JOBS[job].task, JOBS[job].queue
    broker = mask_url(celery_app.conf.broker_url or "")
    # A job nobody picked up within the wait must not run later by surprise.
    try:
        result = celery_app.send_task(task, kwargs=kwargs, queue=queue,
                                      expires=timeout if wait else None)
    except (OperationalError, redis.RedisError, RuntimeError) as exc:
        # RuntimeError: Celery gives up on an unreachable result store with one
        raise RedisUnavailableError(f"broker {broker} is unreachable: "
                                    f"{str(exc).strip().splitlines()[0]}") from None
    if not wait:
        return {"job": job, "task_id": result.id, "queue": queue, "state": "sent"}
    try:
        value = result.get(timeout=timeout, propagate=False, interval=0.1)
    except (OperationalError, redis.RedisError, RuntimeError) as exc:
        raise RedisUnavailableError(f"result store {broker} is unreachable: "
                                    f"{str(exc).strip().splitlines()[0]}") from None
    except CeleryTimeout:
        # Unsubscribe from the result now: left to the finalizer, it would run at interpreter
        # exit, when redis-py can no longer connect, and print a traceback.
        result.backend.remove_pending_result(result)
        result.backend = None
        raise MlopsError(f"no worker answered on queue {queue} within {timeout:g}s "
                         f"(start one with `mlops worker`)") from None
    if result.failed():
        raise MlopsError(f"{job} job failed: {type(value).__name__}: {value}")
    return value


@click.command("run")
@click.argument("job", type=click.Choice(sorted(JOBS)))
@click.option("--model", metavar="M", help="Only this model.")
@click.option("--wait", is_flag=True, help="Wait for the result and print it as JSON.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Seconds to wait for a worker.")
@click.option("--dry-run", is_flag=True, help="Tuning only: evaluate, do not apply.")
@json_option
@pass_app
def run(app: App, job: str, model: str | None, wait: bool, timeout: float, dry_run: bool,
        as_json: bool) -> None:
    """Run a scheduled job now, through its Celery queue."""
    app.plain_redis()  # a bad setting or an unreachable Redis stops here, in one line
    if model is not None:
        app.registry.meta(model)
    kwargs: dict[str, Any] = {"model": model}
    if dry_run:
        if job != "tuning":
            raise click.UsageError("--dry-run applies to `run tuning` only")
        kwargs["dry_run"] = True
    started = time.monotonic()
    value = send_and_wait(job, kwargs, wait, timeout)
    if wait:
        click.echo(to_json(value))
        return
    emit(as_json, value, f"{job} job sent to {value['queue']} (task {value['task_id']}); "
                         f"took {time.monotonic() - started:.2f}s to send")


def register(group: click.Group) -> None:
    group.add_command(run)
