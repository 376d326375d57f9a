"""The client package: one set of field rules with the worker, no Redis started behind the
caller's back, a cheap public import."""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

import mlops_tasks
from mlops_tasks.client import MonitoringClient
from mlops_tasks.client.buffer import CLIENT_CONTAINERS, CLIENT_TIME_BUCKETS, message_slices
from mlops_tasks.embedded import EmbeddedRedis
from mlops_tasks.errors import ValidationError
from mlops_tasks.ingest import events
from mlops_tasks.queues import EVENTS_QUEUE
from mlops_tasks.settings import Settings

MODEL = "waf-behavioral"
NOW = 1_800_000_000.0


# ----------------------------------------------------------------------------- one set of rules

@pytest.mark.parametrize(("field", "bad", "reason"), [
    ("score", 1.5, "score: expected a number in [0, 1], got 1.5"),
    ("score", float("nan"), "score: expected a number in [0, 1], got nan"),
    ("score", "0.5", "score: expected a number, got '0.5'"),
    ("score", True, "score: expected a number, got True"),
    ("predicted", 0.5, "predicted: expected true/false or 1/0, got 0.5"),
    ("actual", "yes", "actual: expected true/false or 1/0, got 'yes'"),
    ("actual", 2, "actual: expected true/false or 1/0, got 2"),
    ("latency_ms", -1, "latency_ms: expected a number >= 0, got -1.0"),
    ("latency_ms", "fast", "latency_ms: expected a number, got 'fast'"),
    ("timestamp", "now", "timestamp: expected a number, got 'now'"),
    ("prediction_id", "", "prediction_id: expected a string of 1-128 characters, got ''"),
    ("prediction_id", "x" * 129, "prediction_id: expected a string of 1-128 characters"),
    ("version", "v1", "version: expected a semantic version such as 1.0.0"),
    ("version", "1." * 40 + "0", "version: expected a semantic version such as 1.0.0"),
    ("metadata", "x", "metadata: expected an object, got str"),
])
def test_the_client_and_the_worker_refuse_a_value_with_the_same_words(
        field: str, bad: Any, reason: str) -> None:
    """Given a bad value of a field, when a detector records it and when a worker decodes a
    message carrying it, then both refuse it with the same reason (one rule, in wire.py): the
    client raises a ValidationError, the worker dead-letters that event and keeps the other."""
    # client: no Redis is needed to validate (nothing is sent)
    client = MonitoringClient(flush_interval_ms=60_000)
    try:
        args: dict[str, Any] = {"score": 0.5, field: bad}
        with pytest.raises(ValidationError) as raised:
            client.record_prediction(MODEL, args.pop("score"), **args)
        assert str(raised.value).startswith(reason), str(raised.value)
        assert client.stats()["recorded"] == 0
    finally:
        client.close(timeout=0.1)
    # worker
    column = [bad, 0.25] if field == "score" else [bad, None]
    msg = {"v": 1, "kind": "predictions", "batch_id": "b", "model": MODEL, "n": 2,
           "score": [0.5, 0.25], field: column}
    preds, rejects = events.decode_predictions(msg, now=NOW, max_age_s=86400)
    assert [r.index for r in rejects] == [0]
    assert rejects[0].reason.startswith(reason), rejects[0].reason
    assert len(preds) == 1


def test_client_options_are_checked() -> None:
    with pytest.raises(ValidationError, match="overflow: expected 'drop' or 'block', got 'x'"):
        MonitoringClient(overflow="x")
    with pytest.raises(ValidationError, match="batch_size: expected an integer >= 1"):
        MonitoringClient(batch_size=2.5)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- message limits

def test_messages_stay_within_the_workers_limits() -> None:
    """Given buffered events over 1,200 minutes, or with heavy metadata, when sliced into
    messages, then each holds at most half the worker's bucket limit and fewer containers than
    it allows, in order and without a gap."""
    stamps = [NOW - 60.0 * i for i in range(1200)]
    slices = message_slices(stamps, None)
    assert [hi - lo for lo, hi in slices] == [CLIENT_TIME_BUCKETS] * 9 + [48]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(slices)) and slices[-1][1] == 1200
    heavy = message_slices([NOW] * 500, ["1.0.0"] * 500, [602] * 500)
    assert len(heavy) == 2 and heavy[0][1] * 602 <= CLIENT_CONTAINERS
    assert message_slices([NOW] * 25_000, None) == [(0, 10_000), (10_000, 20_000),
                                                   (20_000, 25_000)]


# ----------------------------------------------------------------------------- no private Redis

def _redis_servers_in(data_dir: Path) -> list[int]:
    """Pids of processes whose command line names ``data_dir`` (the embedded server's does)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if str(data_dir) in cmdline and "redis" in cmdline:
                pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_a_client_never_starts_redis_and_says_how_to(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """Given no REDIS_URL and no embedded Redis running, when a client records and flushes,
    then no redis-server starts and no socket appears in the data directory: the events stay
    buffered, stats() and one warning say how to start Redis. When `mlops redis start` runs,
    the same client delivers them: it looks for the embedded Redis again at each retry."""
    data_dir = Path(os.environ["MLOPS_DATA_DIR"])  # a fresh folder under tmp_path (conftest)
    assert "REDIS_URL" not in os.environ
    server = EmbeddedRedis(data_dir)
    caplog.set_level(logging.WARNING, logger="mlops.client")
    client = MonitoringClient(flush_interval_ms=20)
    try:
        for i in range(5):
            client.record_prediction(MODEL, 0.5, actual=i % 2 == 0)
        assert client.flush(1) is False
        stats = client.stats()
        assert stats["buffered"] == 5 and stats["sent"] == 0 and stats["dropped"] == 0
        assert stats["broker_reachable"] is False
        assert "`mlops redis start`" in stats["last_error"] and "REDIS_URL" in stats["last_error"]
        assert str(data_dir) in stats["last_error"]
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert [r.getMessage() for r in warnings] == ["broker unreachable; buffering events"]
        assert not server.socket_path.exists() and not server.is_running()
        assert _redis_servers_in(data_dir) == []
        with pytest.raises(mlops_tasks.RedisUnavailableError, match="mlops redis start"):
            client.decision_threshold(MODEL)
        assert not server.socket_path.exists()

        # when the embedded Redis is started as the message says
        started = subprocess.run([sys.executable, "-m", "mlops_tasks.cli.main", "redis", "start"],
                                 env=dict(os.environ), capture_output=True, text=True, timeout=60)
        assert started.returncode == 0, started.stderr
        assert client.flush(20), client.stats()
        stats = client.stats()
        assert stats["sent"] == 5 and stats["buffered"] == 0
        assert stats["broker_reachable"] is True
        queue = redis.Redis(unix_socket_path=str(server.socket_path))
        assert queue.llen(EVENTS_QUEUE) == 1  # one message of 5 events, waiting for a worker
        queue.close()
    finally:
        client.close(timeout=1)
        server.stop()


# ----------------------------------------------------------------------------- public API

def test_the_package_exports_its_public_api_lazily() -> None:
    """`import mlops_tasks` loads neither Celery, numpy nor scipy (the CLI starts with it);
    every name of __all__ resolves on first use."""
    probe = ("import sys, mlops_tasks; "
             "print(sorted(m for m in ('celery', 'kombu', 'numpy', 'scipy', 'redis') "
             "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "[]"
    for name in mlops_tasks.__all__:
        assert getattr(mlops_tasks, name) is not None, name
    assert mlops_tasks.MonitoringClient is MonitoringClient
    assert issubclass(mlops_tasks.ValidationError, ValueError)
    assert issubclass(mlops_tasks.ValidationError, mlops_tasks.MlopsError)
    assert set(mlops_tasks.__all__) <= set(dir(mlops_tasks))
    with pytest.raises(AttributeError):
        mlops_tasks.Nothing  # noqa: B018 - the attribute access is the test
    import mlops_tasks.client as client_package

    assert client_package.__all__ == ["MonitoringClient", "ValidationError"]


def test_a_full_blocking_buffer_is_sent_at_once_whoever_waits(tmp_path: Path) -> None:
    """Given a blocking client with a long flush interval whose buffer another thread keeps full
    with single predictions, when a detector's record_batch waits for room too, then every call
    returns with every event sent: a caller waiting for room wakes the sender, and record_batch,
    which holds the drain lock while it waits, moves the rows recorded meanwhile itself."""
    import threading

    from .redis_server import RedisServer

    # a Redis of its own: the session broker's queue is consumed by the session worker, and
    # events left there would be counted in later tests
    server = RedisServer(tmp_path / "redis").start()
    client = MonitoringClient(server.url, redis_url=server.url, max_buffer=10, overflow="block",
                              flush_interval_ms=60_000, batch_size=100_000,
                              settings=Settings.from_env({}))
    try:
        for _ in range(20):
            singles = threading.Thread(
                target=lambda: [client.record_prediction("n1-detector", 0.5) for _ in range(30)])
            batch = threading.Thread(
                target=lambda: client.record_batch("n1-detector", [0.4] * 8))
            singles.start()
            batch.start()
            singles.join(20)
            batch.join(20)
            assert not singles.is_alive() and not batch.is_alive(), client.stats()
        assert client.flush(30)
        stats = client.stats()
        assert stats["sent"] == 20 * 38 and stats["dropped"] == 0
    finally:
        client.close()
        server.stop()


# ----------------------------------------------------------------------------- one round trip

def test_a_batch_goes_with_its_journal_entry_as_the_message_send_task_would_push(
        tmp_path: Path) -> None:
    """Given a client whose broker is its journal's Redis, when it sends a batch, then the
    queue holds the message Celery's send_task would have pushed (the same envelope, headers
    and body but for the ids) and the journal its entry, written in one transaction. Given a
    broker on another Redis, the client sends through Celery and journals on its own Redis."""
    import base64
    import json

    from celery import Celery

    from mlops_tasks import keys
    from mlops_tasks.celery_config import producer_config
    from mlops_tasks.client.publish import DirectPublisher, same_redis
    from mlops_tasks.ingest import journal
    from mlops_tasks.queues import TASK_INGEST_PREDICTIONS

    from .redis_server import RedisServer

    store = RedisServer(tmp_path / "store").start()
    other = RedisServer(tmp_path / "broker").start()
    try:
        settings = Settings.from_env({})
        app = Celery("compare", set_as_current=False)
        app.config_from_object(producer_config(settings, store.url))
        body = {"v": 1, "kind": "predictions", "batch_id": "p.1", "model": MODEL, "n": 1,
                "score": {"f8": "AAAAAAAA4D8="}}
        app.send_task(TASK_INGEST_PREDICTIONS, args=[body], queue=EVENTS_QUEUE, retry=False,
                      serializer="json", argsrepr="", kwargsrepr="")
        queue = redis.Redis.from_url(store.url)
        celerys = json.loads(queue.rpop(EVENTS_QUEUE))
        ours = json.loads(DirectPublisher(app, EVENTS_QUEUE).message(TASK_INGEST_PREDICTIONS,
                                                                     body))
        ids = {"id", "root_id", "correlation_id", "delivery_tag"}
        for part in ("headers", "properties"):
            assert {k: v for k, v in ours[part].items() if k not in ids} == \
                {k: v for k, v in celerys[part].items() if k not in ids}, part
        assert ours["headers"]["id"] == ours["headers"]["root_id"] == \
            ours["properties"]["correlation_id"]
        assert {k: v for k, v in ours.items() if k not in ("headers", "properties")} == \
            {k: v for k, v in celerys.items() if k not in ("headers", "properties")}
        assert json.loads(base64.b64decode(ours["body"]))[0] == [body]

        # when: the client, broker and journal on one Redis
        assert same_redis(store.url, store.url, {})
        assert not same_redis(other.url, store.url, {})
        assert not same_redis(store.url, store.url, {"global_keyprefix": "x"})
        with MonitoringClient(store.url, redis_url=store.url, settings=settings,
                              flush_interval_ms=10) as client:
            client.record_prediction(MODEL, 0.5, actual=True)
            assert client.flush(20)
            assert client._sending._direct is not None  # one transaction
        (sent,) = [json.loads(m) for m in queue.lrange(EVENTS_QUEUE, 0, -1)]
        batch = json.loads(base64.b64decode(sent["body"]))[0][0]
        assert sent["headers"]["task"] == TASK_INGEST_PREDICTIONS
        assert journal.decode(queue.get(keys.journal_entry(MODEL, batch["batch_id"]))) == \
            (TASK_INGEST_PREDICTIONS, batch)

        # when: the broker on another Redis
        with MonitoringClient(other.url, redis_url=store.url, settings=settings,
                              flush_interval_ms=10) as client:
            client.record_prediction(MODEL, 0.5, actual=True)
            assert client.flush(20)
            assert client._sending._direct is None  # the fallback: send_task
        broker = redis.Redis.from_url(other.url)
        (sent,) = [json.loads(m) for m in broker.lrange(EVENTS_QUEUE, 0, -1)]
        batch = json.loads(base64.b64decode(sent["body"]))[0][0]
        assert journal.decode(queue.get(keys.journal_entry(MODEL, batch["batch_id"]))) == \
            (TASK_INGEST_PREDICTIONS, batch)
    finally:
        store.stop()
        other.stop()


def test_rows_recorded_by_many_threads_while_the_sender_drains_are_all_sent_once(
        tmp_path: Path) -> None:
    """Given four threads recording predictions as fast as they can while the sender drains
    every 500 rows (rows are appended without the lock), when all have flushed, then every
    event was sent exactly once: the messages on the queue hold each id once, and the counts
    agree."""
    import base64
    import json
    import threading

    import numpy as np

    from .redis_server import RedisServer

    server = RedisServer(tmp_path / "redis").start()
    client = MonitoringClient(server.url, redis_url=server.url, flush_interval_ms=5,
                              settings=Settings.from_env({}))
    try:
        per_thread = 20_000
        returned: list[list[str]] = []

        def record() -> None:
            returned.append([client.record_prediction(MODEL, 0.5, actual=True)
                             for _ in range(per_thread)])

        threads = [threading.Thread(target=record) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert client.flush(30)
        stats = client.stats()
        assert stats["recorded"] == stats["sent"] == 4 * per_thread
        assert stats["dropped"] == 0 and stats["buffered"] == 0
        sent: list[str] = []
        queue = redis.Redis.from_url(server.url)
        for raw in queue.lrange(EVENTS_QUEUE, 0, -1):
            batch = json.loads(base64.b64decode(json.loads(raw)["body"]))[0][0]
            preds, rejects = events.decode_predictions(batch, now=batch_time(batch),
                                                       max_age_s=86400)
            assert rejects == []
            sent.extend(preds.prediction_id)
        assert len(sent) == len(set(sent)) == 4 * per_thread
        assert set(sent) == {pid for ids in returned for pid in ids}
        assert all(np.isfinite(preds.score))
    finally:
        client.close(timeout=1)
        server.stop()


def batch_time(batch: dict[str, Any]) -> float:
    """A clock for decoding a batch: the time of its first event."""
    from mlops_tasks.wire import unpack_column

    return float(unpack_column(batch["timestamp"], batch["n"], "timestamp", "f8")[0])
