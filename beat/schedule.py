"""The periodic schedule: every entry of the job table (mlops_tasks/jobs.py), on its queue, at
the interval its setting holds."""

from __future__ import annotations

from typing import Any

from mlops_tasks import keys
from mlops_tasks.jobs import JOBS
from mlops_tasks.settings import Settings, mask_url

SCHEDULER = "mlops_tasks.beat.scheduler:MlopsScheduler"


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Celery's ``beat_schedule``. A tick nobody picked up within one interval expires, so
    workers that were down run a job once on recovery, not once per missed tick."""
    out = {}
    for job in JOBS:
        interval = job.interval_s(settings)
        out[job.name] = {"task": job.task, "schedule": float(interval),
                         "options": {"queue": job.queue, "expires": float(interval)}}
    return out


def beat_config(settings: Settings, redis_url: str) -> dict[str, Any]:
    """Settings of beat and of its leader lock (celery-redbeat).

    This dict is merged into the app's conf, which ``celery inspect conf`` and Flower show to
    anyone with broker access, and Celery masks only the keys it knows. So redbeat's URL is
    there with its credentials masked: beat's scheduler connects redbeat itself, with the real
    URL from the settings (see :func:`mlops_tasks.beat.scheduler.connect_redbeat`)."""
    return {
        "beat_schedule": beat_schedule(settings),
        "beat_scheduler": SCHEDULER,
        "beat_max_loop_interval": settings.beat_max_interval_s,
        "redbeat_redis_url": mask_url(redis_url),
        "redbeat_key_prefix": keys.REDBEAT_PREFIX,
        "redbeat_lock_key": keys.REDBEAT_LOCK,
        "redbeat_lock_timeout": max(1, int(settings.beat_lock_timeout_s)),
    }
