"""`mlops worker` and `mlops beat`: thin wrappers over `celery worker` and `celery beat`."""

from __future__ import annotations

import click

from mlops_tasks.errors import ValidationError
from mlops_tasks.queues import ALL_QUEUES
from mlops_tasks.workers.pools import POOLS

from .context import App, pass_app

_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}
LOGLEVEL = click.Choice(["debug", "info", "warning", "error"])


@click.command("worker", context_settings=_PASS_THROUGH)
@click.option("--pool", "pool_name", type=click.Choice(sorted(POOLS)), default="all",
              show_default=True, help="Named pool: its queues, processes and prefetch.")
@click.option("--queues", "-Q", metavar="Q,...",
              help=f"Narrow the queues (any of {', '.join(ALL_QUEUES)}).")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), metavar="N",
              help="Worker processes (default: per pool, from the number of cores).")
@click.option("--loglevel", "-l", default="info", show_default=True, type=LOGLEVEL)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def worker(app: App, pool_name: str, queues: str | None, concurrency: int | None,
           loglevel: str, celery_args: tuple[str, ...]) -> None:
    """Start a Celery worker for mlops-tasks.

    Any other `celery worker` option can follow, e.g. `mlops worker -- --max-tasks-per-child=100`;
    options given there win over the pool's.
    """
    pool = POOLS[pool_name]
    argv = ["worker", *pool.argv(concurrency), f"--loglevel={loglevel.upper()}"]
    if queues is not None:
        selected = [q.strip() for q in queues.split(",") if q.strip()]
        unknown = [q for q in selected if q not in ALL_QUEUES]
        if unknown or not selected:
            raise ValidationError(f"--queues: unknown queue {', '.join(unknown) or '(none)'!r} "
                                  f"(allowed: {', '.join(ALL_QUEUES)})")
        argv[1] = f"--queues={','.join(selected)}"
    # A bad setting stops here with one line, not in Celery; without REDIS_URL the embedded
    # Redis is started here (the Celery app only uses one that runs).
    app.redis_url  # noqa: B018 - read for that side effect
    from mlops_tasks.workers.app import app as celery_app  # noqa: PLC0415 - heavy import

    celery_app.worker_main([*argv, *celery_args])


@click.command("beat", context_settings=_PASS_THROUGH)
@click.option("--loglevel", "-l", default="info", show_default=True, type=LOGLEVEL)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def beat(app: App, loglevel: str, celery_args: tuple[str, ...]) -> None:
    """Start the scheduler (celery beat with the project's schedule and leader lock).

    Run two for high availability: one leads, the other takes over within
    MLOPS_BEAT_LOCK_TIMEOUT_S + MLOPS_BEAT_MAX_INTERVAL_S of the leader's death.
    """
    app.redis_url  # noqa: B018 - as for `mlops worker`
    from mlops_tasks.beat.schedule import SCHEDULER  # noqa: PLC0415 - heavy import
    from mlops_tasks.workers.app import app as celery_app  # noqa: PLC0415 - heavy import

    celery_app.start(["beat", f"--scheduler={SCHEDULER}", f"--loglevel={loglevel.upper()}",
                      *celery_args])


def register(group: click.Group) -> None:
    group.add_command(worker)
    group.add_command(beat)
