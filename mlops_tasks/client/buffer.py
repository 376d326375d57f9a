"""The client's bounded buffer and its sender thread.

A call appends to the buffer: a row per prediction, a label, or for ``record_batch`` whole
messages. The sender thread wakes when ``batch_size`` rows are buffered or every flush interval,
turns the rows into columnar messages, one per model, each within the worker's limits
(``message_slices``), and hands them to the producer in the order their events were accepted.
While the broker is unreachable the buffer holds at most ``max_buffer`` events: past that a new
event is dropped (``overflow="drop"``: counted, logged at most every 10 s) or its caller waits
(``overflow="block"``); the sender retries with a backoff of up to 5 s. A prediction's row is
appended without taking the lock while the buffer has room (``Buffer.add_row``).

Fork: ``restart_in_child`` gives an object a fresh start in every forked child (gunicorn
``--preload``, prefork pools): the parent's buffer, sender thread and producer stay the parent's.
"""

from __future__ import annotations

import functools
import json
import logging
import operator
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import MlopsError
from ..queues import TASK_INGEST_LABELS, TASK_INGEST_PREDICTIONS
from ..wire import (
    MAX_EVENTS,
    MAX_MESSAGE_CONTAINERS,
    MAX_TIME_BUCKETS,
    batch_body,
    metadata_containers,
    minute,
    pack_column,
    time_buckets,
)
from .producer import Producer, UnsendableError

log = logging.getLogger("mlops.client")

_RETRY_MAX_S = 5.0
_DROP_LOG_INTERVAL_S = 10.0

# A buffered prediction: model, score, predicted, actual, prediction_id, its counter when the id
# was generated (else None), version, latency_ms, timestamp, metadata as JSON text (or None).
Row = tuple[str, float, int | None, int | None, str, int | None, str | None, float | None,
            float, str | None]
Label = tuple[str, str, int, float]  # model, prediction_id, actual, timestamp


@dataclass
class Outbound:
    task: str
    body: dict[str, Any]
    events: int


# --- messages within the worker's limits ------------------------------------------------------

# Half the worker's limit: room for a worker that counts buckets a little differently (one that
# rebuilt timestamps from base + milliseconds, as the client once sent them, could see a
# timestamp a millisecond earlier, in the previous minute).
CLIENT_TIME_BUCKETS = MAX_TIME_BUCKETS // 2
CLIENT_CONTAINERS = MAX_MESSAGE_CONTAINERS - 1000  # room for the columns and the envelope


def _few_minutes(stamps: Sequence[float], versions: Sequence[Any] | None, lo: int,
                 hi: int) -> bool:
    """Whether events ``lo:hi`` of one version (or none) span too few minutes to reach the
    bucket limit: the usual case, decided without counting buckets."""
    if versions is not None and versions.count(versions[lo]) != len(versions):
        return False
    part = stamps[lo:hi]
    return (max(part) - min(part)) / 60.0 + 2 <= CLIENT_TIME_BUCKETS


def message_slices(stamps: Sequence[float], versions: Sequence[Any] | None,
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
            while i < hi and total + containers[i] <= CLIENT_CONTAINERS:
                total += containers[i]
                i += 1
            hi = max(i, lo + 1)
        if hi - lo > CLIENT_TIME_BUCKETS and not _few_minutes(stamps, versions, lo, hi) and \
                time_buckets(np.asarray(stamps[lo:hi], dtype=np.float64),
                None if versions is None else list(versions[lo:hi])) > CLIENT_TIME_BUCKETS:
            seen: set[tuple[Any, int]] = set()
            i = lo
            while i < hi:
                key = (None if versions is None else versions[i], minute(stamps[i]))
                if key not in seen:
                    if len(seen) == CLIENT_TIME_BUCKETS:
                        break
                    seen.add(key)
                i += 1
            hi = i
        out.append((lo, hi))
        lo = hi
    return out


def _flags(col: tuple[int | None, ...]) -> dict[str, str]:
    """A flag column, binary: -1 where not given."""
    return pack_column(col if None not in col else [-1 if v is None else v for v in col], "i1")


def predictions_message(model: str, group: Sequence[Row], id_prefix: str) -> Outbound:
    """One columnar message from buffered rows of one model."""
    return _predictions_message(model, tuple(zip(*group, strict=True)), id_prefix)


def _predictions_message(model: str, columns: tuple[tuple[Any, ...], ...],
                         id_prefix: str) -> Outbound:
    """One message from the columns of buffered rows (the rows transposed by ``zip``), its
    numbers as binary columns (``wire.pack_column``) converted by numpy: no work per event in
    Python. Metadata goes as it was recorded (its JSON text, kept at the call)."""
    (_, scores, predicted, actual, ids, seqs, versions, latency, stamps, metadata) = columns
    n = len(scores)
    body = batch_body("predictions", model, n)
    body["score"] = pack_column(scores, "f8")
    if None in seqs:
        body["prediction_id"] = list(ids)
    elif seqs[-1] - seqs[0] == n - 1 and seqs == tuple(range(seqs[0], seqs[0] + n)):
        body["id_prefix"], body["id_start"] = id_prefix, seqs[0]  # consecutive: the first
    else:  # generated ids: the prefix once and the counters
        body["id_prefix"], body["id_seq"] = id_prefix, pack_column(seqs, "i8")
    body["timestamp"] = pack_column(stamps, "f8")
    for key, col in (("predicted", predicted), ("actual", actual)):
        if col.count(None) < n:
            body[key] = _flags(col)
    if versions.count(None) < n:
        body["version"] = versions[0] if versions.count(versions[0]) == n else list(versions)
    if latency.count(None) < n:
        body["latency_ms"] = pack_column(np.array(latency, dtype=np.float64), "f8")  # None: NaN
    if metadata.count(None) < n:
        body["metadata"] = [None if m is None else json.loads(m) for m in metadata]
    return Outbound(TASK_INGEST_PREDICTIONS, body, n)


def labels_message(model: str, group: Sequence[Label]) -> Outbound:
    _, ids, actual, stamps = zip(*group, strict=True)
    body = batch_body("labels", model, len(group))
    body["prediction_id"] = list(ids)
    body["actual"] = pack_column(actual, "i1")
    body["timestamp"] = pack_column(stamps, "f8")
    return Outbound(TASK_INGEST_LABELS, body, len(group))


_CODES = {np.dtype(np.float64): "f8", np.dtype(np.int8): "i1"}


def batch_messages(model: str, n: int, columns: dict[str, Any], *, ids: list[str] | None,
                   id_prefix: str, chunk: int) -> list[Outbound]:
    """``record_batch``'s events as messages of at most ``chunk`` events: array columns (float64
    or int8) are sliced and sent binary, scalars apply to every event; generated ids go as
    ``id_prefix`` + ``id_start``."""
    out = []
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        body = batch_body("predictions", model, hi - lo)
        for key, value in columns.items():
            body[key] = pack_column(value[lo:hi], _CODES[value.dtype]) \
                if isinstance(value, np.ndarray) else value
        if ids is None:
            body["id_prefix"], body["id_start"] = id_prefix, lo
        else:
            body["prediction_id"] = ids[lo:hi]
        out.append(Outbound(TASK_INGEST_PREDICTIONS, body, hi - lo))
    return out


def _by_model(items: list[Any]) -> list[tuple[str, list[Any]]]:
    """Rows or labels grouped by their model (first field), in order; one model (the usual
    case) is found at C speed."""
    if not items:
        return []
    if len(set(map(_FIRST, items))) == 1:
        return [(items[0][0], items)]
    groups: dict[str, list[Any]] = {}
    for item in items:
        groups.setdefault(item[0], []).append(item)
    return list(groups.items())


_FIRST = operator.itemgetter(0)


def _messages(rows: list[Row], labels: list[Label], id_prefix: str) -> list[Outbound]:
    out: list[Outbound] = []
    for model, group in _by_model(rows):
        columns = tuple(zip(*group, strict=True))  # transposed once
        metadata, n = columns[9], len(group)
        weights = None
        if metadata.count(None) < n:
            weights = [0 if m is None else metadata_containers(m) for m in metadata]
        for lo, hi in message_slices(columns[8], columns[6], weights):
            part = columns if (lo, hi) == (0, n) else tuple(c[lo:hi] for c in columns)
            out.append(_predictions_message(model, part, id_prefix))
    for model, lgroup in _by_model(labels):
        for lo, hi in message_slices([r[3] for r in lgroup], None):
            out.append(labels_message(model, lgroup[lo:hi]))
    return out


# --- the buffer -------------------------------------------------------------------------------

class Buffer:
    """Events accepted and not yet sent, bounded by ``max_buffer``; thread-safe."""

    def __init__(self, *, max_buffer: int, batch_size: int, overflow: str, id_prefix: str,
                 closed: bool = False) -> None:
        self.max_buffer = max_buffer
        self.batch_size = batch_size
        self.overflow = overflow
        self.id_prefix = id_prefix
        self.closed = closed
        self.wake = threading.Event()  # the sender's: something to send
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()  # keeps messages in the order events were accepted
        self._space = threading.Condition(self._lock)
        self._done = threading.Condition(self._lock)
        # Rows are appended without the lock while there is room (``add_row``): a deque, which
        # only the drain takes from (popleft), under the lock.
        self._rows: deque[Row] = deque()
        self._labels: list[Label] = []
        self._outbox: deque[Outbound] = deque()
        # Counters, ever. Buffered = accepted + rows not yet drained - finished; predictions
        # recorded = that accepted - labels recorded: a prediction's call updates no counter.
        self._accepted = 0  # events accepted into the buffer, less the rows not yet drained
        self._finished = 0  # events sent or given up (FIFO: flush waits on this)
        self._room = max_buffer  # rows ``add_row`` may hold without the lock (see _recount)
        self._stats = {"labels_recorded": 0, "sent": 0, "batches_sent": 0, "dropped": 0,
                       "unsendable": 0, "send_failures": 0}
        self._last_error: str | None = None
        self._broker_ok = True
        self._last_drop_log = 0.0
        self._drops_since_log = 0

    # ------------------------------------------------------------------ the callers' side
    def add_row(self, row: Row) -> None:
        """A prediction's row; lock-free while the buffer has room, the cost of every
        ``record_prediction``. The room is read without the lock, so threads recording at the
        same instant may each add one row past ``max_buffer``; a full buffer is decided under
        the lock (``_make_room``)."""
        rows = self._rows
        if len(rows) < self._room and not self.closed:
            rows.append(row)
            if len(rows) == self.batch_size:
                self.wake.set()
            return
        with self._lock:
            if (self.closed or self._buffered() >= self.max_buffer) and not self._make_room(1):
                return
            rows.append(row)
            if len(rows) >= self.batch_size:
                self.wake.set()

    def _buffered(self) -> int:
        """Events accepted and not yet sent or given up (lock held)."""
        return self._accepted + len(self._rows) - self._finished

    def _recount(self) -> None:
        """After ``_accepted`` or ``_finished`` changed (lock held): the rows ``add_row`` may
        hold without the lock."""
        self._room = self.max_buffer - (self._accepted - self._finished)

    def add_label(self, label: Label) -> None:
        with self._lock:
            if (self.closed or self._buffered() >= self.max_buffer) and not self._make_room(1):
                return
            self._labels.append(label)
            self._accepted += 1
            self._recount()
            self._stats["labels_recorded"] += 1
            if len(self._labels) == self.batch_size:
                self.wake.set()

    def add_messages(self, messages: list[Outbound]) -> None:
        """Whole messages (``record_batch``), after the rows recorded before them. While it
        waits for room (``overflow="block"``) it holds the drain lock, so it moves the rows other
        threads record meanwhile to the outbox itself: the sender, which cannot drain them now,
        sends them and makes the room."""
        with self._drain_lock:
            self._drain_locked()
            for msg in messages:
                while True:
                    with self._lock:
                        full = self._buffered() + msg.events > self.max_buffer
                        if not (self.closed or full):
                            self._outbox.append(msg)
                            self._accepted += msg.events
                            self._recount()
                            break
                        if self.closed or self.overflow != "block":
                            self._make_room(msg.events)  # counts and logs the drop
                            break
                        self.wake.set()
                        self._space.wait(0.1)
                    self._drain_locked()
        self.wake.set()

    def _make_room(self, events: int) -> bool:
        """Called with the lock held when the buffer is full (or closed). False: the events are
        dropped, counted and logged."""
        if self.overflow == "block" and not self.closed:
            while self._buffered() + events > self.max_buffer and \
                    not self.closed:
                self.wake.set()  # a full buffer is a reason to send now, not at the next tick
                self._space.wait(0.5)
            if not self.closed:
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

    def flush(self, timeout: float | None) -> bool:
        """Wait until every event accepted so far was sent or given up."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._accepted + len(self._rows)
        self.wake.set()
        with self._lock:
            while self._finished < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._done.wait(0.1 if remaining is None else min(0.1, remaining))
                self.wake.set()
        return True

    def close(self) -> int:
        """Accept nothing more (callers waiting for room give up); returns the unsent count."""
        with self._lock:
            self.closed = True
            self._space.notify_all()
            unsent = self._buffered()
        self.wake.set()
        return unsent

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"recorded": self._accepted + len(self._rows) - self._stats["labels_recorded"],
                    **self._stats,
                    "buffered": self._buffered(), "max_buffer": self.max_buffer,
                    "overflow": self.overflow, "broker_reachable": self._broker_ok,
                    "last_error": self._last_error}

    @property
    def last_error(self) -> str | None:
        return self._last_error

    # ------------------------------------------------------------------ the sender's side
    def drain(self) -> None:
        """Move buffered rows to the outbox, unless ``add_messages`` is doing it right now (it
        may be waiting for room, which only the sender can make)."""
        if self._drain_lock.acquire(blocking=False):
            try:
                self._drain_locked()
            finally:
                self._drain_lock.release()

    def _drain_locked(self) -> None:
        """Turn buffered rows into messages (drain lock held): the lists are swapped under the
        buffer lock, the messages built outside it."""
        with self._lock:
            queued = self._rows
            n = len(queued)
            self._accepted += n
            self._recount()  # first: a caller may look at the room while the rows are taken
            rows = [queued.popleft() for _ in range(n)]
            labels, self._labels = self._labels, []
        out = _messages(rows, labels, self.id_prefix)
        if out:
            with self._lock:
                self._outbox.extend(out)

    def next_message(self) -> Outbound | None:
        with self._lock:
            return self._outbox[0] if self._outbox else None

    def sent(self, msg: Outbound) -> None:
        with self._lock:
            self._outbox.popleft()
            self._finish(msg.events, sent=True)
            self._stats["batches_sent"] += 1
            if not self._broker_ok:
                log.info("broker reachable again",
                         extra={"buffered": self._buffered()})
                self._broker_ok = True

    def unsendable(self, msg: Outbound, error: str) -> None:
        """It would block every later event: counted and skipped."""
        with self._lock:
            self._outbox.popleft()
            self._finish(msg.events, sent=False)
            self._stats["unsendable"] += msg.events
        log.error("client batch could not be encoded; dropped", extra={
            "events": msg.events, "error": error})

    def failed(self, exc: Exception) -> None:
        """The broker (or the journal) refused: the message stays first in line."""
        error = str(exc) if isinstance(exc, MlopsError) else \
            f"{type(exc).__name__}: {str(exc)[:200]}"
        with self._lock:
            self._stats["send_failures"] += 1
            self._last_error = error
            if self._broker_ok:
                log.warning("broker unreachable; buffering events", extra={
                    "error": error, "buffered": self._buffered()})
            self._broker_ok = False

    def _finish(self, events: int, sent: bool) -> None:
        """Events left the buffer (lock held)."""
        self._finished += events
        self._recount()
        if sent:
            self._stats["sent"] += events
        self._space.notify_all()
        self._done.notify_all()


# --- the sender thread ------------------------------------------------------------------------

class Sender:
    """Sends what the buffer holds, by size or age, until the buffer is closed."""

    def __init__(self, buffer: Buffer, producer: Producer, flush_interval_s: float) -> None:
        self.buffer = buffer
        self.producer = producer
        self.flush_interval_s = flush_interval_s
        self.thread = threading.Thread(target=self._run, name="mlops-client-sender", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> None:
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _run(self) -> None:
        backoff = 0.0
        while True:
            self.buffer.wake.wait(backoff or self.flush_interval_s)
            self.buffer.wake.clear()
            try:
                ok = self.send_pending()
            except Exception:  # the sender must survive anything (logged with its traceback)
                log.exception("client sender error; retrying")
                ok = False
            if self.buffer.closed:
                return
            backoff = 0.0 if ok else min(_RETRY_MAX_S, max(0.1, backoff * 2))

    def send_pending(self) -> bool:
        """Send every queued message in order; False if one could not be sent."""
        buf = self.buffer
        buf.drain()
        while (msg := buf.next_message()) is not None:
            try:
                self.producer.send(msg.task, msg.body)
            except UnsendableError as exc:
                buf.unsendable(msg, str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - any broker failure: keep and retry
                buf.failed(exc)
                return False
            buf.sent(msg)
        return True


# --- fork -------------------------------------------------------------------------------------

class ForkAware(Protocol):
    def _after_fork(self) -> None: ...


_IN_CHILD: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def restart_in_child(obj: ForkAware) -> None:
    """Call ``obj._after_fork()`` in every forked child, as long as ``obj`` lives."""
    _IN_CHILD.add(obj)
    _install_fork_hook()


@functools.cache
def _install_fork_hook() -> None:
    """Register the hook once per process (a child inherits both the hook and this cache)."""
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _after_fork_in_child() -> None:
    for obj in list(_IN_CHILD):
        obj._after_fork()  # noqa: SLF001 - the ForkAware hook, private to its owner's API
