"""The thin client detectors embed: record predictions and labels without slowing down.

    from mlops_tasks.client import MonitoringClient

    with MonitoringClient() as client:
        pid = client.record_prediction("n1-detector", 0.83, latency_ms=4.2)
        ...
        client.record_ground_truth("n1-detector", pid, True)

Calls only validate and append to an in-memory buffer; a background thread sends columnar
batches to the ``mlops.events`` queue (by size or age), by task name, so no worker code is
imported. While the broker is unreachable the buffer is bounded: a full buffer drops new events
(``overflow="drop"``, counted and logged) or makes the caller wait (``overflow="block"``).
Pending events are flushed on ``close()``, on leaving the context manager and at interpreter exit.
"""

from __future__ import annotations

import atexit
import itertools
import json
import logging
import math
import os
import re
import secrets
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis
from celery import Celery
from kombu.exceptions import EncodeError
from redis.backoff import NoBackoff
from redis.retry import Retry

from .celery_config import producer_config
from .connection import connect, resolve_broker_url, resolve_redis_url
from .errors import NotFoundError
from .ingest import journal
from .errors import ValidationError
from .ingest.events import (
    MAX_EVENTS,
    MAX_ID_LENGTH,
    MAX_MESSAGE_CONTAINERS,
    MAX_TIME_BUCKETS,
    WIRE_VERSION,
    encode_metadata,
    time_buckets,
)
from .queues import EVENTS_QUEUE, TASK_INGEST_LABELS, TASK_INGEST_PREDICTIONS
from .registry import Registry
from .settings import Settings

log = logging.getLogger("mlops.client")

_MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_RETRY_MAX_S = 5.0
_DROP_LOG_INTERVAL_S = 10.0


def _check_model(model: Any) -> str:
    if not isinstance(model, str) or not _MODEL_NAME.fullmatch(model):
        raise ValueError(f"model: expected a model name such as 'n1-detector', got {model!r}")
    return model


def _check_score(score: Any, field: str = "score") -> float:
    if isinstance(score, bool) or not isinstance(score, (int, float, np.floating, np.integer)):
        raise ValueError(f"{field}: expected a number in [0, 1], got {score!r}")
    value = float(score)
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"{field}: expected a number in [0, 1], got {score!r}")
    return value


def _check_flag(value: Any, field: str) -> int:
    if value is True or value is False:
        return int(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value in (0, 1):
        return int(value)
    if isinstance(value, np.bool_):
        return int(value)
    raise ValueError(f"{field}: expected a boolean or 0/1, got {value!r}")


def _check_id(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        raise ValueError(f"prediction_id: expected a string of 1-{MAX_ID_LENGTH} characters, "
                         f"got {value!r}")
    return value


def _metadata_json(metadata: Any) -> str:
    """The metadata as compact JSON, checked against the worker's rules (nesting, size, JSON
    values). The text is what is sent: the caller may change its dict afterwards."""
    if not isinstance(metadata, dict):
        raise ValidationError(f"metadata: expected a dict, got {type(metadata).__name__}")
    return encode_metadata(metadata)


def _check_optional_number(value: Any, field: str, lo: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(float(value)) or float(value) < lo:
        raise ValueError(f"{field}: expected a number >= {lo:g}, got {value!r}")
    return float(value)


def _flag_column(values: Any, n: int, field: str) -> list[int] | None:
    """1/0/-1 list from an array of booleans, 0/1 or None (unknown)."""
    if values is None:
        return None
    if isinstance(values, np.ndarray) and values.dtype.kind in "biu":
        arr = values.astype(np.int64)
        if arr.shape != (n,):
            raise ValueError(f"{field}: expected {n} values, got {arr.size}")
        bad = np.flatnonzero((arr != 0) & (arr != 1))
        if bad.size:
            raise ValueError(f"{field}[{bad[0]}]: expected a boolean or 0/1, got {values[bad[0]]!r}")
        return arr.tolist()
    seq = list(values)
    if len(seq) != n:
        raise ValueError(f"{field}: expected {n} values, got {len(seq)}")
    out = []
    for i, v in enumerate(seq):
        if v is None:
            out.append(-1)
        else:
            try:
                out.append(_check_flag(v, f"{field}[{i}]"))
            except ValueError:
                raise ValueError(f"{field}[{i}]: expected a boolean, 0/1 or None, "
                                 f"got {v!r}") from None
    return out


def _timestamp_columns(stamps: Sequence[float]) -> dict[str, Any]:
    """Timestamps as a base and millisecond offsets: a few bytes per event instead of 18."""
    base = min(stamps)
    return {"timestamp_base": base,
            "timestamp_ms": [round((t - base) * 1000) for t in stamps]}


# The worker counts time buckets on the timestamps it rebuilds from base + milliseconds, which
# can fall a millisecond earlier, into the previous minute: the client splits at half the limit.
_CLIENT_TIME_BUCKETS = MAX_TIME_BUCKETS // 2
_CLIENT_CONTAINERS = MAX_MESSAGE_CONTAINERS - 1000  # room for the columns and the envelope


def _message_slices(stamps: Sequence[float], versions: Sequence[Any] | None,
                    containers: Sequence[int] | None = None) -> list[tuple[int, int]]:
    """[lo, hi) slices of a model's buffered events, in order, each within the worker's limits:
    at most MAX_EVENTS events, in a bounded number of distinct (version, minute) buckets, with a
    bounded number of objects and lists in their metadata (``containers`` per event)."""
    n = len(stamps)
    out: list[tuple[int, int]] = []
    lo = 0
    while lo < n:
        hi = min(n, lo + MAX_EVENTS)
        if containers is not None:
            total, i = 0, lo
            while i < hi and total + containers[i] <= _CLIENT_CONTAINERS:
                total += containers[i]
                i += 1
            hi = max(i, lo + 1)
        if hi - lo > _CLIENT_TIME_BUCKETS and time_buckets(
                np.asarray(stamps[lo:hi], dtype=np.float64),
                None if versions is None else list(versions[lo:hi])) > _CLIENT_TIME_BUCKETS:
            seen: set[tuple[Any, float]] = set()
            i = lo
            while i < hi:
                key = (None if versions is None else versions[i], math.floor(stamps[i] / 60.0))
                if key not in seen:
                    if len(seen) == _CLIENT_TIME_BUCKETS:
                        break
                    seen.add(key)
                i += 1
            hi = i
        out.append((lo, hi))
        lo = hi
    return out


_CLIENTS: weakref.WeakSet[MonitoringClient] = weakref.WeakSet()
_fork_hook_installed = False


def _track(client: MonitoringClient) -> None:
    """Give every client a fresh start in a forked child (gunicorn --preload, prefork pools)."""
    global _fork_hook_installed
    _CLIENTS.add(client)
    if not _fork_hook_installed:
        os.register_at_fork(after_in_child=lambda: [c._after_fork() for c in list(_CLIENTS)])
        _fork_hook_installed = True


@dataclass
class _Outbound:
    task: str
    body: dict[str, Any]
    events: int


class MonitoringClient:
    """Buffers prediction events and labels and ships them to the workers in batches."""

    def __init__(self, broker_url: str | None = None, *, redis_url: str | None = None,
                 settings: Settings | None = None, batch_size: int | None = None,
                 flush_interval_ms: int | None = None, max_buffer: int | None = None,
                 overflow: str | None = None, config_ttl_s: float | None = None) -> None:
        self.settings = settings or Settings.from_env()
        s = self.settings
        self._broker_url = broker_url or resolve_broker_url(s)
        self._redis_url = redis_url
        self.batch_size = batch_size or s.client_batch_size
        self.flush_interval_s = (flush_interval_ms or s.client_flush_ms) / 1000.0
        self.max_buffer = max_buffer or s.client_max_buffer
        self.overflow = overflow or s.client_overflow
        if self.overflow not in ("drop", "block"):
            raise ValueError(f"overflow: expected 'drop' or 'block', got {self.overflow!r}")
        for name, value in (("batch_size", self.batch_size), ("max_buffer", self.max_buffer)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        self.config_ttl_s = s.client_config_ttl_s if config_ttl_s is None else config_ttl_s

        self._closed = False
        self._config_cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._models: set[str] = set()
        self._start()
        ref = weakref.ref(self)
        atexit.register(lambda: (c := ref()) is not None and c.close())
        _track(self)

    def _start(self) -> None:
        """Everything a process needs of its own: producer, ids, buffers, locks, sender."""
        self._app = Celery("mlops-client", set_as_current=False)
        conf = producer_config(self.settings, self._broker_url)
        # Fail fast when the broker is down: the sender keeps the batch and retries itself,
        # instead of kombu blocking the sender for seconds on each attempt.
        conf["broker_transport_options"] = {**conf["broker_transport_options"],
                                            "max_retries": 0, "socket_connect_timeout": 2}
        self._app.config_from_object(conf)
        self._producer = secrets.token_hex(6)
        self._prefix = self._producer + "-"
        self._seqs: dict[str, itertools.count[int]] = {}
        self._counter = itertools.count()
        self._batches = itertools.count()
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()  # keeps messages in the order events were accepted
        self._space = threading.Condition(self._lock)
        self._done = threading.Condition(self._lock)
        self._rows: list[tuple[Any, ...]] = []
        self._labels: list[tuple[str, str, int, float]] = []
        self._outbox: deque[_Outbound] = deque()
        self._buffered = 0
        self._accepted = 0  # events accepted into the buffer, ever
        self._finished = 0  # events sent or given up, ever (FIFO: flush waits on this)
        self._stats = {"recorded": 0, "labels_recorded": 0, "sent": 0, "batches_sent": 0,
                       "dropped": 0, "unsendable": 0, "send_failures": 0}
        self._last_error: str | None = None
        self._broker_ok = True
        self._last_drop_log = 0.0
        self._drops_since_log = 0
        self._wake = threading.Event()
        self._registry: Registry | None = None
        self._journal: redis.Redis | None = None
        self._thread = threading.Thread(target=self._run, name="mlops-client-sender",
                                        daemon=True)
        if not self._closed:
            self._thread.start()

    def _after_fork(self) -> None:
        """In a forked child: the parent's buffer, sender and ids stay the parent's; the child
        gets its own (fresh id prefix, so ids never collide across processes)."""
        self._start()

    # ------------------------------------------------------------------ recording
    def record_prediction(self, model: str, score: float, *, predicted: Any = None,
                          actual: Any = None, prediction_id: str | None = None,
                          version: str | None = None, latency_ms: float | None = None,
                          timestamp: float | None = None,
                          metadata: dict[str, Any] | None = None) -> str:
        """Record one prediction; returns its id (generated unless given)."""
        if model not in self._models:
            self._models.add(_check_model(model))
        if type(score) is not float or not 0.0 <= score <= 1.0:
            score = _check_score(score)
        if predicted is not None:
            predicted = _check_flag(predicted, "predicted")
        if actual is not None:
            actual = _check_flag(actual, "actual")
        if prediction_id is None:
            seq = next(self._counter)
            prediction_id = f"{self._prefix}{seq:x}"
        else:
            _check_id(prediction_id)
            seq = None
        if latency_ms is not None:
            latency_ms = _check_optional_number(latency_ms, "latency_ms")
        if timestamp is not None:
            timestamp = _check_optional_number(timestamp, "timestamp")
        meta_json = None if metadata is None else _metadata_json(metadata)
        if version is not None and not isinstance(version, str):
            raise ValueError(f"version: expected a string such as '1.0.0', got {version!r}")
        row = (model, score, predicted, actual, prediction_id, seq, version, latency_ms,
               timestamp or time.time(), meta_json)
        with self._lock:
            if (self._closed or self._buffered >= self.max_buffer) and not self._make_room(1):
                return prediction_id
            self._rows.append(row)
            self._buffered += 1
            self._accepted += 1
            self._stats["recorded"] += 1
            if len(self._rows) == self.batch_size:
                self._wake.set()
        return prediction_id

    def record_ground_truth(self, model: str, prediction_id: str, actual: Any, *,
                            timestamp: float | None = None) -> None:
        """Record the true label of an earlier prediction (minutes or days later)."""
        if model not in self._models:
            self._models.add(_check_model(model))
        _check_id(prediction_id)
        flag = _check_flag(actual, "actual")
        ts = time.time() if timestamp is None else _check_optional_number(timestamp, "timestamp")
        with self._lock:
            if (self._closed or self._buffered >= self.max_buffer) and not self._make_room(1):
                return
            self._labels.append((model, prediction_id, flag, ts))
            self._buffered += 1
            self._accepted += 1
            self._stats["labels_recorded"] += 1
            if len(self._labels) == self.batch_size:
                self._wake.set()

    def record_batch(self, model: str, scores: Sequence[float] | np.ndarray, *,
                     predicted: Any = None, actual: Any = None,
                     prediction_ids: Sequence[str] | None = None, version: str | None = None,
                     latency_ms: Any = None, timestamp: float | None = None) -> list[str]:
        """Record many predictions of one model at once; returns their ids."""
        _check_model(model)
        try:
            s = np.asarray(scores, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("scores: expected a sequence of numbers in [0, 1]") from None
        if s.ndim != 1:
            raise ValueError(f"scores: expected a one-dimensional sequence, got shape {s.shape}")
        n = int(s.size)
        bad = np.flatnonzero(~np.isfinite(s) | (s < 0) | (s > 1))
        if bad.size:
            raise ValueError(f"scores[{bad[0]}]: expected a number in [0, 1], got {s[bad[0]]!r}")
        pred_col = _flag_column(predicted, n, "predicted")
        act_col = _flag_column(actual, n, "actual")
        lat_col = None
        if latency_ms is not None:
            lat = np.asarray(latency_ms, dtype=np.float64)
            if lat.shape != (n,):
                raise ValueError(f"latency_ms: expected {n} values, got {lat.size}")
            bad = np.flatnonzero(np.isfinite(lat) & (lat < 0) | np.isinf(lat))
            if bad.size:
                raise ValueError(f"latency_ms[{bad[0]}]: expected a number >= 0")
            lat_col = [None if math.isnan(x) else x for x in lat.tolist()]
        if version is not None and not isinstance(version, str):
            raise ValueError(f"version: expected a string such as '1.0.0', got {version!r}")
        ts = time.time() if timestamp is None else _check_optional_number(timestamp, "timestamp")

        if prediction_ids is not None:
            ids = [_check_id(x) for x in prediction_ids]
            if len(ids) != n:
                raise ValueError(f"prediction_ids: expected {n} values, got {len(ids)}")
        else:
            id_prefix = f"{self._prefix}b{next(self._batches):x}-"
            ids = [f"{id_prefix}{i:x}" for i in range(n)]

        scores_list = s.tolist()
        out: list[_Outbound] = []
        chunk = min(MAX_EVENTS, self.max_buffer)
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            body: dict[str, Any] = {"v": WIRE_VERSION, "kind": "predictions",
                                    "batch_id": None, "model": model, "n": hi - lo,
                                    "score": scores_list[lo:hi], "timestamp": ts}
            if prediction_ids is None:
                body["id_prefix"], body["id_start"] = id_prefix, lo
            else:
                body["prediction_id"] = ids[lo:hi]
            if pred_col is not None:
                body["predicted"] = pred_col[lo:hi]
            if act_col is not None:
                body["actual"] = act_col[lo:hi]
            if lat_col is not None:
                body["latency_ms"] = lat_col[lo:hi]
            if version is not None:
                body["version"] = version
            out.append(_Outbound(TASK_INGEST_PREDICTIONS, body, hi - lo))
        with self._drain_lock:
            self._drain_rows_locked()  # rows recorded before this batch go out before it
            with self._lock:
                for msg in out:
                    full = self._buffered + msg.events > self.max_buffer
                    if (self._closed or full) and not self._make_room(msg.events):
                        continue
                    self._outbox.append(msg)
                    self._buffered += msg.events
                    self._accepted += msg.events
                    self._stats["recorded"] += msg.events
        self._wake.set()
        return ids

    def _make_room(self, events: int) -> bool:
        """Called with the lock held when the buffer is full (or the client closed). False:
        the events are dropped, counted and logged."""
        if self.overflow == "block" and not self._closed:
            while self._buffered + events > self.max_buffer and not self._closed:
                self._space.wait(0.5)
            if not self._closed:
                return True
        self._stats["dropped"] += events
        self._drops_since_log += events
        now = time.monotonic()
        if now - self._last_drop_log >= _DROP_LOG_INTERVAL_S:
            log.warning("client buffer full or closed: events dropped", extra={
                "dropped": self._drops_since_log, "dropped_total": self._stats["dropped"],
                "max_buffer": self.max_buffer, "last_error": self._last_error})
            self._last_drop_log = now
            self._drops_since_log = 0
        return False

    # ------------------------------------------------------------------ configuration
    def current_config(self, model: str) -> dict[str, Any]:
        """The configuration in force (production's, else the latest version's), cached for
        ``config_ttl_s`` seconds so auto-tuned thresholds arrive without a restart."""
        _check_model(model)
        now = time.monotonic()
        hit = self._config_cache.get(model)
        if hit is not None and hit[0] > now:
            return hit[1]
        if self._registry is None:
            url = self._redis_url or resolve_redis_url(self.settings)
            self._registry = Registry(connect(url), self.settings)
        try:
            resolved = self._registry.resolved(model, "production")
        except NotFoundError:
            resolved = self._registry.resolved(model, "latest")
        self._config_cache[model] = (now + self.config_ttl_s, resolved)
        return resolved

    def decision_threshold(self, model: str) -> float:
        return float(self.current_config(model)["config"]["decision_threshold"])

    # ------------------------------------------------------------------ sending
    def _run(self) -> None:
        backoff = 0.0
        while True:
            self._wake.wait(backoff or self.flush_interval_s)
            self._wake.clear()
            try:
                ok = self._send_pending()
            except Exception:  # noqa: BLE001 - the sender must survive anything
                log.exception("client sender error; retrying")
                ok = False
            if self._closed:
                return
            backoff = 0.0 if ok else min(_RETRY_MAX_S, max(0.1, backoff * 2))

    def _drain_rows(self) -> None:
        """Move buffered rows to the outbox, unless record_batch is doing it right now (it
        may be waiting for room, which only the sender can make)."""
        if self._drain_lock.acquire(blocking=False):
            try:
                self._drain_rows_locked()
            finally:
                self._drain_lock.release()

    def _drain_rows_locked(self) -> None:
        """Turn buffered rows into columnar messages, one per model (drain lock held). The
        lists are swapped under the buffer lock; the messages are built outside it."""
        with self._lock:
            rows, self._rows = self._rows, []
            labels, self._labels = self._labels, []
        out: list[_Outbound] = []
        by_model: dict[str, list[tuple[Any, ...]]] = {}
        for row in rows:
            by_model.setdefault(row[0], []).append(row)
        for model, group in by_model.items():
            weights = None
            if any(r[9] is not None for r in group):
                weights = [0 if r[9] is None else r[9].count("{") + r[9].count("[")
                           for r in group]
            for lo, hi in _message_slices([r[8] for r in group], [r[6] for r in group],
                                          weights):
                out.append(self._predictions_message(model, group[lo:hi]))
        by_model_l: dict[str, list[tuple[str, str, int, float]]] = {}
        for label in labels:
            by_model_l.setdefault(label[0], []).append(label)
        for model, lgroup in by_model_l.items():
            for lo, hi in _message_slices([r[3] for r in lgroup], None):
                part = lgroup[lo:hi]
                body = {"v": WIRE_VERSION, "kind": "labels", "batch_id": None,
                        "model": model, "n": len(part), "prediction_id": [r[1] for r in part],
                        "actual": [r[2] for r in part]}
                body.update(_timestamp_columns([r[3] for r in part]))
                out.append(_Outbound(TASK_INGEST_LABELS, body, len(part)))
        if out:
            with self._lock:
                self._outbox.extend(out)

    def _predictions_message(self, model: str, group: list[tuple[Any, ...]]) -> _Outbound:
        (_, scores, predicted, actual, ids, seqs, versions, latency, stamps,
         metadata) = zip(*group, strict=True)
        body: dict[str, Any] = {"v": WIRE_VERSION, "kind": "predictions",
                                "batch_id": None, "model": model, "n": len(group),
                                "score": list(scores)}
        if None in seqs:
            body["prediction_id"] = list(ids)
        else:  # generated ids: the prefix once and the counters
            body["id_prefix"], body["id_seq"] = self._prefix, list(seqs)
        body.update(_timestamp_columns(stamps))
        for key, col in (("predicted", predicted), ("actual", actual)):
            if any(v is not None for v in col):
                body[key] = [-1 if v is None else v for v in col]
        for key, col in (("version", versions), ("latency_ms", latency)):
            if any(v is not None for v in col):
                body[key] = list(col)
        if any(m is not None for m in metadata):
            body["metadata"] = [None if m is None else json.loads(m) for m in metadata]
        return _Outbound(TASK_INGEST_PREDICTIONS, body, len(group))

    def _send_pending(self) -> bool:
        """Send every queued message in order; False if the broker refused one."""
        self._drain_rows()
        while True:
            with self._lock:
                if not self._outbox:
                    return True
                msg = self._outbox[0]
            if msg.body["batch_id"] is None:  # numbered in sending order, once
                msg.body["batch_id"] = self._next_batch_id(msg.body["model"])
            try:
                # journal first: a batch lost on its way is sent again (see ingest/journal.py)
                journal.record(self._journal_client(), msg.body["model"], msg.body["batch_id"],
                               msg.task, msg.body)
                # argsrepr/kwargsrepr: Celery would otherwise render the whole batch as text
                self._app.send_task(msg.task, args=[msg.body], queue=EVENTS_QUEUE,
                                    retry=False, serializer="json", argsrepr="",
                                    kwargsrepr="")
            except EncodeError as exc:
                # Cannot be serialized: it would block every later event. Count and skip it.
                with self._lock:
                    self._outbox.popleft()
                    self._finish(msg.events, sent=False)
                    self._stats["unsendable"] += msg.events
                log.error("client batch could not be encoded; dropped", extra={
                    "events": msg.events, "error": str(exc)[:200]})
                continue
            except Exception as exc:  # noqa: BLE001 - any broker failure: keep and retry
                with self._lock:
                    self._stats["send_failures"] += 1
                    self._last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
                    if self._broker_ok:
                        log.warning("broker unreachable; buffering events", extra={
                            "error": self._last_error, "buffered": self._buffered})
                    self._broker_ok = False
                return False
            with self._lock:
                self._outbox.popleft()
                self._finish(msg.events, sent=True)
                self._stats["batches_sent"] += 1
                if not self._broker_ok:
                    log.info("broker reachable again", extra={"buffered": self._buffered})
                    self._broker_ok = True

    def _next_batch_id(self, model: str) -> str:
        """``<producer>.<seq>``: this process's messages to a model, numbered from 1 (sender
        thread only). The worker remembers which it applied by a watermark per producer, so
        duplicate detection costs memory per producer, not per message (lua/dedup.lua)."""
        counter = self._seqs.get(model)
        if counter is None:
            counter = self._seqs[model] = itertools.count(1)
        return f"{self._producer}.{next(counter)}"

    def _journal_client(self) -> redis.Redis:
        if self._journal is None:
            url = self._redis_url or resolve_redis_url(self.settings)
            self._journal = redis.Redis.from_url(
                url.replace("redis+socket://", "unix://"), socket_connect_timeout=2,
                socket_timeout=10, retry=Retry(NoBackoff(), 0))  # the sender retries
        return self._journal

    def _finish(self, events: int, sent: bool) -> None:
        """Events left the buffer (lock held)."""
        self._buffered -= events
        self._finished += events
        if sent:
            self._stats["sent"] += events
        self._space.notify_all()
        self._done.notify_all()

    # ------------------------------------------------------------------ lifecycle
    def flush(self, timeout: float | None = 10.0) -> bool:
        """Send everything recorded so far; True when it all left within ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._accepted
        self._wake.set()
        with self._lock:
            while self._finished < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._done.wait(0.1 if remaining is None else min(0.1, remaining))
                self._wake.set()
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Flush (within ``timeout`` seconds in all) and stop the sender thread."""
        if self._closed:
            return
        deadline = time.monotonic() + timeout
        self.flush(timeout)
        with self._lock:
            self._closed = True
            unsent = self._buffered
            self._space.notify_all()
        self._wake.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if unsent:
            log.warning("client closed with unsent events", extra={"unsent": unsent,
                                                                   "last_error": self._last_error})

    def __enter__(self) -> MonitoringClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {**self._stats, "buffered": self._buffered, "max_buffer": self.max_buffer,
                    "overflow": self.overflow, "broker_reachable": self._broker_ok,
                    "last_error": self._last_error}
