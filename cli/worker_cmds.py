"""`mlops worker`: a thin wrapper over `celery worker` with the project's app and queues."""

from __future__ import annotations

import click

from mlops_tasks.errors import ValidationError
from mlops_tasks.queues import ALL_QUEUES

from .context import App, pass_app


@click.command("worker", context_settings={"ignore_unknown_options": True,
                                           "allow_extra_args": True})
@click.option("--queues", "-Q", metavar="Q,...",
              help=f"Queues to consume (default: all of {', '.join(ALL_QUEUES)}).")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), metavar="N",
              help="Worker processes (default: the number of cores).")
@click.option("--loglevel", "-l", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def worker(app: App, queues: str | None, concurrency: int | None, loglevel: str,
           celery_args: tuple[str, ...]) -> None:
    """Start a Celery worker for mlops-tasks.

    Any other `celery worker` option can follow, e.g. `mlops worker -- --hostname=w1@%h`.
    """
    selected = [q.strip() for q in (queues or ",".join(ALL_QUEUES)).split(",") if q.strip()]
    unknown = [q for q in selected if q not in ALL_QUEUES]
    if unknown or not selected:
        raise ValidationError(f"--queues: unknown queue {', '.join(unknown) or '(none)'!r} "
                              f"(allowed: {', '.join(ALL_QUEUES)})")
    app.settings  # noqa: B018 - a bad setting stops here with one line, not in Celery
    from mlops_tasks.workers.app import app as celery_app  # noqa: PLC0415 - heavy import

    argv = ["worker", f"--queues={','.join(selected)}", f"--loglevel={loglevel.upper()}",
            "--task-events"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    argv.extend(celery_args)
    celery_app.worker_main(argv)


def register(group: click.Group) -> None:
    group.add_command(worker)
