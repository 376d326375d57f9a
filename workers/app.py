"""The Celery application of the workers: ``celery -A mlops_tasks.workers.app worker``.

Importing this module reads nothing: the settings are read from the environment when Celery
first needs its configuration (:meth:`MlopsCelery.on_configure`), in the process that runs the
worker. That never starts the embedded Redis: it is used when it runs (`mlops` commands start
it), else the configuration fails with a message saying how to start it or set ``REDIS_URL``.

Each scheduled job of the table in mlops_tasks/jobs.py is a task here, registered from its entry.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from typing import Any

from celery import Celery, signals

from mlops_tasks.beat.schedule import beat_config
from mlops_tasks.celery_config import result_backend, worker_config
from mlops_tasks.connection import resolve_broker_url, resolve_redis_url
from mlops_tasks.ingest import codec
from mlops_tasks.jobs import JOBS, Job
from mlops_tasks.logs import configure_logging
from mlops_tasks.roles import WORKER
from mlops_tasks.settings import Settings

TASK_MODULES = [
    "mlops_tasks.workers.ingest_tasks",
    "mlops_tasks.workers.monitoring_tasks",
]


class MlopsCelery(Celery):  # type: ignore[misc]  # Celery is untyped (a subclass of Any)
    def on_configure(self) -> None:
        """The configuration, from the environment. A method rather than a receiver of the
        ``on_configure`` signal: Celery logs a receiver's exception and carries on with its
        defaults (a broker on localhost), where this error must stop the process."""
        settings = Settings.from_env()
        broker = resolve_broker_url(settings, start=False, role=WORKER)
        store = resolve_redis_url(settings, start=False, role=WORKER)
        conf = worker_config(settings, broker, result_backend(broker, store))
        conf.update(beat_config(settings, store))
        self.config_from_object(conf)


app = MlopsCelery("mlops_tasks", include=TASK_MODULES)


def job_task(job: Job) -> Callable[..., Any]:
    """The body of a job's task: run it in this process's runtime, recording its facts."""

    def run(*args: Any, **kwargs: Any) -> Any:
        from .runtime import run_job  # noqa: PLC0415 - worker-side imports, not for producers

        return run_job(job, *args, **kwargs)

    run.__name__ = run.__qualname__ = job.short.replace("-", "_")
    run.__doc__ = f"The scheduled job {job.name}: {job.function}."
    return run


for _job in JOBS:
    app.task(name=_job.task, acks_late=True, soft_time_limit=_job.soft_time_limit_s,
             time_limit=_job.time_limit_s, shared=False)(job_task(_job))


@signals.setup_logging.connect  # type: ignore[untyped-decorator]  # Celery is untyped
def _setup_logging(**_: Any) -> None:
    """Our structured logging instead of Celery's."""
    configure_logging(Settings.from_env())


@signals.worker_ready.connect  # type: ignore[untyped-decorator]  # Celery is untyped
def _auto_register(**_: Any) -> None:
    from .runtime import auto_register  # noqa: PLC0415 - needs the configured app

    auto_register()


@signals.worker_init.connect  # type: ignore[untyped-decorator]  # Celery is untyped
def _bounded_decoding(**_: Any) -> None:
    """Messages are decoded in the worker's main process: bound what one may cost there (see
    mlops_tasks/ingest/codec.py)."""
    codec.install()


@signals.worker_process_init.connect  # type: ignore[untyped-decorator]  # Celery is untyped
def _pool_child(**_: Any) -> None:
    """Each pool child gets an address-space ceiling: a batch that needs more fails alone with
    MemoryError (and is dead-lettered) instead of the kernel killing the child, which would
    deliver the message again, forever (task_reject_on_worker_lost)."""
    limit = Settings.from_env().worker_max_memory_mb * 1024 * 1024
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
