"""The naive design, for comparison: one Celery task per prediction event.

Each task does what a per-event ingest would do with Redis: one pipeline of HINCRBY /
HINCRBYFLOAT into the since-deployment totals and the minute, hour and day buckets of its model
(one round trip per event). The Celery configuration is the project's own worker configuration
(JSON, late acks, prefetch 4, task events), so the difference to the batched path is the design,
not the settings.

Run by bench/ingest_throughput.py as ``celery -A _naive_app worker -Q bench.naive`` with
REDIS_URL set; the benchmark sends the tasks by name.
"""

from __future__ import annotations

import os
from typing import Any

import redis
from celery import Celery

from mlops_tasks.celery_config import worker_config
from mlops_tasks.settings import Settings

QUEUE = "bench.naive"
TASK = "bench.naive.record_event"
CONFUSION = ("tn", "fp", "fn", "tp")  # 2 * actual + predicted


def total_key(model: str) -> str:
    return f"bench:naive:{{{model}}}:total"


app = Celery("bench_naive")


@app.on_configure.connect
def _configure(sender: Celery, **_: Any) -> None:
    url = os.environ["REDIS_URL"]
    config = worker_config(Settings.from_env(), url, url)
    if os.environ.get("BENCH_NO_TASK_EVENTS"):
        config.update(worker_send_task_events=False, task_send_sent_event=False)
    sender.config_from_object(config)


_client: tuple[int, redis.Redis] | None = None


def _redis() -> redis.Redis:
    """One connection per (forked) worker process."""
    global _client  # noqa: PLW0603 - one per process, rebuilt in a forked child
    if _client is None or _client[0] != os.getpid():
        _client = (os.getpid(), redis.Redis.from_url(os.environ["REDIS_URL"]))
    return _client[1]


@app.task(name=TASK, ignore_result=True, acks_late=True)
def record_event(model: str, score: float, actual: int | None = None,
                 timestamp: float = 0.0, threshold: float = 0.6) -> None:
    predicted = int(score >= threshold)
    pipe = _redis().pipeline(transaction=False)
    minute, hour, day = (int(timestamp // s) * s for s in (60, 3600, 86400))
    for key in (total_key(model), f"bench:naive:{{{model}}}:agg:m:{minute}",
                f"bench:naive:{{{model}}}:agg:h:{hour}", f"bench:naive:{{{model}}}:agg:d:{day}"):
        pipe.hincrby(key, "n", 1)
        pipe.hincrbyfloat(key, "score_sum_all", score)
        if actual is not None:
            pipe.hincrby(key, "labeled", 1)
            pipe.hincrby(key, CONFUSION[2 * int(actual) + predicted], 1)
    pipe.execute()
