"""The thin client detectors embed: record predictions and labels without slowing down.

    from mlops_tasks.client import MonitoringClient

    with MonitoringClient() as client:
        pid = client.record_prediction("n1-detector", 0.83, latency_ms=4.2)
        ...
        client.record_ground_truth("n1-detector", pid, True)

Calls only validate (with the wire format's field rules, ``mlops_tasks/wire.py``, the same the
workers apply; a bad argument raises ``ValidationError``, a ``ValueError``, naming it) and append
to a bounded in-memory buffer; a background thread sends columnar batches to the ``mlops.events``
queue by size or age, by task name, so no worker code is imported (``buffer.py``, ``producer.py``).
Pending events are flushed on ``close()``, on leaving the context manager and at interpreter exit.
Metadata fields named in ``MLOPS_REDACT_FIELDS`` are replaced by keyed hashes in the call, before
the event is buffered (``redact.py``).

A client never starts Redis: with neither ``REDIS_URL`` nor a broker URL it uses the embedded
Redis when it runs, else it buffers and reports the broker unreachable, with how to start it, in
``stats()["last_error"]``, and starts sending once it runs (``endpoints.py``).
"""

from __future__ import annotations

import atexit
import itertools
import logging
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from ..errors import ValidationError
from ..settings import Settings
from ..wire import MAX_EVENTS, Problems, encode_metadata, flag_column, id_column
from ..wire import flag as check_flag
from ..wire import model_name as check_model
from ..wire import non_negative as check_non_negative
from ..wire import non_negative_column as check_non_negative_column
from ..wire import prediction_id as check_id
from ..wire import score as check_score
from ..wire import score_column as check_score_column
from ..wire import version as check_version
from .buffer import Buffer, Sender, batch_messages, restart_in_child
from .config_cache import ConfigCache
from .endpoints import Endpoints
from .producer import Producer
from .redact import Redactor

log = logging.getLogger("mlops.client")

_FLOAT_MAX = sys.float_info.max
_now = time.time

OVERFLOW_POLICIES = ("drop", "block")


def _first_problem(field: str, problems: Problems) -> ValidationError:
    i, problem = min(problems)
    return ValidationError(f"{field}[{i}]: {problem}")


def _column(values: Any, n: int, field: str) -> Sequence[Any] | np.ndarray:
    """An argument that must hold one value per event: a sequence or a 1-D array of ``n``."""
    if isinstance(values, np.ndarray):
        if values.shape != (n,):
            raise ValidationError(f"{field}: expected {n} values, got {values.size}")
        return values
    try:
        col = list(values)
    except TypeError:
        raise ValidationError(f"{field}: expected {n} values, got "
                              f"{type(values).__name__}") from None
    if len(col) != n:
        raise ValidationError(f"{field}: expected {n} values, got {len(col)}")
    return col


class MonitoringClient:
    """Buffers prediction events and labels and ships them to the workers in batches.

    ``broker_url`` defaults to CELERY_BROKER_URL, then ``redis_url``, then REDIS_URL, then the
    embedded Redis if it runs; ``redis_url`` (journal and registry) to REDIS_URL, then the
    embedded Redis if it runs, then the broker. The other arguments default to the
    ``MLOPS_CLIENT_*`` settings."""

    def __init__(self, broker_url: str | None = None, *, redis_url: str | None = None,
                 settings: Settings | None = None, batch_size: int | None = None,
                 flush_interval_ms: int | None = None, max_buffer: int | None = None,
                 overflow: str | None = None, config_ttl_s: float | None = None) -> None:
        self.settings = settings or Settings.from_env()
        s = self.settings
        self.batch_size = batch_size or s.client_batch_size
        self.flush_interval_s = (flush_interval_ms or s.client_flush_ms) / 1000.0
        self.max_buffer = max_buffer or s.client_max_buffer
        self.overflow = overflow or s.client_overflow
        if self.overflow not in OVERFLOW_POLICIES:
            raise ValidationError(f"overflow: expected 'drop' or 'block', got {self.overflow!r}")
        for name, value in (("batch_size", self.batch_size), ("max_buffer", self.max_buffer)):
            if not isinstance(value, int) or value < 1:
                raise ValidationError(f"{name}: expected an integer >= 1, got {value!r}")
        self.config_ttl_s = s.client_config_ttl_s if config_ttl_s is None else config_ttl_s
        self._endpoints = Endpoints(s, broker_url, redis_url)
        self._config = ConfigCache(s, self._endpoints, self.config_ttl_s)
        self._redact = Redactor.from_settings(s)  # MLOPS_REDACT_FIELDS, see redact.py
        self._models: set[str] = set()  # names and versions already checked
        self._versions: set[str] = set()
        self._start(closed=False)
        ref = weakref.ref(self)
        def close_at_exit() -> None:
            client = ref()
            if client is not None:
                client.close()
        atexit.register(close_at_exit)
        restart_in_child(self)

    def _start(self, closed: bool) -> None:
        """Everything a process needs of its own: producer id, ids, buffer, sender thread."""
        self._sending = Producer(self.settings, self._endpoints)  # `_producer` is its id
        self._prefix = self._sending.id + "-"
        self._counter = itertools.count()
        self._batches = itertools.count()
        self._buffer = Buffer(max_buffer=self.max_buffer, batch_size=self.batch_size,
                              overflow=self.overflow, id_prefix=self._prefix, closed=closed)
        self._add_row = self._buffer.add_row
        self._sender = Sender(self._buffer, self._sending, self.flush_interval_s)
        if not closed:
            self._sender.start()

    def _after_fork(self) -> None:
        """In a forked child: the parent's buffer, sender and ids stay the parent's; the child
        gets its own (fresh id prefix, so ids never collide across processes)."""
        self._config.after_fork()
        self._start(closed=self._buffer.closed)

    @property
    def _producer(self) -> str:
        """This process's producer id (the ``<producer>`` of its batch ids)."""
        return self._sending.id

    @property
    def _thread(self) -> threading.Thread:
        """The sender thread (benchmarks check it stopped on close)."""
        return self._sender.thread

    # ------------------------------------------------------------------ recording
    def _known_model(self, model: Any) -> None:
        try:
            known = model in self._models
        except TypeError:  # unhashable: certainly not a name
            known = False
        if not known:
            self._models.add(check_model(model))

    def _known_version(self, value: Any) -> None:
        try:
            known = value in self._versions
        except TypeError:
            known = False
        if not known:
            self._versions.add(check_version(value))

    def record_prediction(self, model: str, score: float, *, predicted: Any = None,
                          actual: Any = None, prediction_id: str | None = None,
                          version: str | None = None, latency_ms: float | None = None,
                          timestamp: float | None = None,
                          metadata: dict[str, Any] | None = None) -> str:
        """Record one prediction; returns its id (generated unless given)."""
        try:
            known = model in self._models
        except TypeError:  # unhashable: certainly not a name
            known = False
        if not known:
            self._models.add(check_model(model))
        # The common values are accepted inline (a float in range, True/False); anything else
        # goes through the field's rule, which converts it or raises. This call is on the
        # detector's hot path: every step here was measured (bench/profile_ingest.py).
        if type(score) is not float or not 0.0 <= score <= 1.0:
            score = check_score(score)
        if predicted is not None:
            predicted = 1 if predicted is True else 0 if predicted is False else \
                check_flag(predicted, "predicted")
        if actual is not None:
            actual = 1 if actual is True else 0 if actual is False else \
                check_flag(actual, "actual")
        if prediction_id is None:
            seq = next(self._counter)
            prediction_id = f"{self._prefix}{seq:x}"
        else:
            prediction_id = check_id(prediction_id)
            seq = None
        if version is not None:
            self._known_version(version)
        if latency_ms is not None and (type(latency_ms) is not float or
                                       not 0.0 <= latency_ms <= _FLOAT_MAX):
            latency_ms = check_non_negative(latency_ms, "latency_ms")
        if timestamp is None:
            timestamp = _now()
        elif type(timestamp) is not float or not 0.0 <= timestamp <= _FLOAT_MAX:
            timestamp = check_non_negative(timestamp, "timestamp")
        if self._redact is not None and isinstance(metadata, dict):
            metadata = self._redact(metadata)  # before anything keeps or sends it
        meta_json = None if metadata is None else encode_metadata(metadata)
        self._add_row((model, score, predicted, actual, prediction_id, seq, version, latency_ms,
                       timestamp, meta_json))
        return prediction_id

    def record_ground_truth(self, model: str, prediction_id: str, actual: Any, *,
                            timestamp: float | None = None) -> None:
        """Record the true label of an earlier prediction (minutes or days later)."""
        self._known_model(model)
        check_id(prediction_id)
        label = check_flag(actual, "actual")
        ts = time.time() if timestamp is None else check_non_negative(timestamp, "timestamp")
        self._buffer.add_label((model, prediction_id, label, ts))

    def record_batch(self, model: str, scores: Sequence[float] | np.ndarray, *,
                     predicted: Any = None, actual: Any = None,
                     prediction_ids: Sequence[str] | None = None, version: str | None = None,
                     latency_ms: Any = None, timestamp: float | None = None) -> list[str]:
        """Record many predictions of one model at once; returns their ids."""
        self._known_model(model)
        if isinstance(scores, np.ndarray) and scores.ndim != 1:
            raise ValidationError(f"scores: expected a one-dimensional sequence, got shape "
                                  f"{scores.shape}")
        try:
            values = scores if isinstance(scores, np.ndarray) else list(scores)
        except TypeError:
            raise ValidationError("scores: expected a sequence of numbers in [0, 1], got "
                                  f"{type(scores).__name__}") from None
        n = len(values)
        score_col, problems = check_score_column(values, n)
        if problems:
            raise _first_problem("scores", problems)
        # float64 and int8 arrays: sent as binary columns (see buffer.batch_messages)
        columns: dict[str, Any] = {"score": score_col.astype(np.float64, copy=False)}
        for field, given in (("predicted", predicted), ("actual", actual)):
            if given is not None:
                flags, problems = flag_column(_column(given, n, field), n,
                                              minus_one_is_unknown=False)
                if problems:
                    raise _first_problem(field, problems)
                columns[field] = flags
        if latency_ms is not None:
            lat, problems = check_non_negative_column(_column(latency_ms, n, "latency_ms"), n)
            if problems:
                raise _first_problem("latency_ms", problems)
            columns["latency_ms"] = lat.astype(np.float64, copy=False)  # NaN: not given
        if version is not None:
            self._known_version(version)
            columns["version"] = version
        columns["timestamp"] = time.time() if timestamp is None else \
            check_non_negative(timestamp, "timestamp")

        if prediction_ids is not None:
            given_ids, problems = id_column(_column(prediction_ids, n, "prediction_ids"),
                                            required=True)
            if problems:
                raise _first_problem("prediction_ids", problems)
            ids = [str(x) for x in given_ids]
            id_prefix = ""
        else:
            id_prefix = f"{self._prefix}b{next(self._batches):x}-"
            ids = list(map(f"{id_prefix}%x".__mod__, range(n)))
        messages = batch_messages(model, n, columns, ids=None if prediction_ids is None else ids,
                                  id_prefix=id_prefix, chunk=min(MAX_EVENTS, self.max_buffer))
        self._buffer.add_messages(messages)
        return ids

    # ------------------------------------------------------------------ configuration
    def current_config(self, model: str) -> dict[str, Any]:
        """The configuration in force (production's, else the latest version's), cached for
        ``config_ttl_s`` seconds so auto-tuned thresholds arrive without a restart.
        RedisUnavailableError when Redis cannot be reached (it is never started from here)."""
        check_model(model)
        return self._config.get(model)

    def decision_threshold(self, model: str) -> float:
        return float(self.current_config(model)["config"]["decision_threshold"])

    # ------------------------------------------------------------------ lifecycle
    def flush(self, timeout: float | None = 10.0) -> bool:
        """Send everything recorded so far; True when it all left within ``timeout``."""
        return self._buffer.flush(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Flush (within ``timeout`` seconds in all) and stop the sender thread."""
        if self._buffer.closed:
            return
        deadline = time.monotonic() + timeout
        self._buffer.flush(timeout)
        unsent = self._buffer.close()
        self._sender.join(max(0.0, deadline - time.monotonic()))
        if unsent:
            log.warning("client closed with unsent events", extra={
                "unsent": unsent, "last_error": self._buffer.last_error})

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> dict[str, Any]:
        """recorded, labels_recorded, sent, batches_sent, dropped, unsendable, send_failures,
        buffered, max_buffer, overflow, broker_reachable, last_error."""
        return self._buffer.stats()
