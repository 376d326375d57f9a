"""The worker's side of the wire format: decode a batch into the columns of its valid events and
the reasons of the others. Pure functions, no I/O.

The format, its limits and the rule of every field are in ``mlops_tasks/wire.py``, which the
client validates with too (they are re-exported here). What only the worker decides lives here:
the header of a message as a whole, a column's length, the time window of timestamps (its clock
and retention), the limits of a message, and how a rejected event is kept in its dead letter.

The work per event is numpy's: a binary column (``wire.unpack_column``) is checked by its rule
as an array, a scalar (``version``, ``timestamp`` of ``record_batch``) once, and generated
prediction ids are formatted only for the events that need them (``Ids``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..queues import TASK_INGEST_LABELS, TASK_INGEST_PREDICTIONS
from ..registry.config import validate_model_name
from ..wire import (
    A_FLAG,
    FUTURE_SKEW_S,
    ID_PREFIX,
    LIMITS,
    MAX_EVENTS,
    MAX_ID_LENGTH,
    MAX_MESSAGE_BYTES,
    MAX_MESSAGE_CONTAINERS,
    MAX_MESSAGE_DEPTH,
    MAX_TIME_BUCKETS,
    METADATA_MAX_BYTES,
    METADATA_MAX_DEPTH,
    REJECTED_KEY,
    REQUIRED,
    SEQUENCED_ID,
    UNKNOWN,
    WIRE_VERSION,
    BatchError,
    LimitError,
    Problems,
    depth_exceeds,
    encode_metadata,
    expected,
    flag_column,
    id_column,
    is_binary,
    metadata_problem,
    metadata_type_problem,
    non_negative_column,
    number_column,
    printable,
    score_column,
    sequence,
    short_repr,
    time_buckets,
    unpack_column,
    version_problems,
)

__all__ = [
    "FUTURE_SKEW_S", "LIMITS", "MAX_EVENTS", "MAX_ID_LENGTH", "MAX_MESSAGE_BYTES",
    "MAX_MESSAGE_CONTAINERS", "MAX_MESSAGE_DEPTH", "MAX_TIME_BUCKETS", "METADATA_MAX_BYTES",
    "METADATA_MAX_DEPTH", "REJECTED_KEY", "SEQUENCED_ID", "TASK_KINDS", "UNKNOWN",
    "WIRE_VERSION", "BatchError", "Ids", "Labels", "LimitError", "Predictions", "Reject",
    "batch_header", "check_message", "decode_labels", "decode_predictions", "depth_exceeds",
    "encode_metadata", "metadata_problem", "original_event", "printable", "sequence",
    "short_repr", "time_buckets", "validate_model_name",
]


@dataclass
class Reject:
    index: int
    reason: str


class Ids:
    """The prediction ids of a batch's events: given (a list, None where absent), or generated
    (a prefix and a counter per event, formatted only for the events ``take`` asks for: a
    labeled event never needs its id)."""

    __slots__ = ("_counters", "_given", "_prefix")

    def __init__(self, given: list[str | None] | None = None, prefix: str = "",
                 counters: np.ndarray | None = None) -> None:
        self._given = given
        self._prefix = prefix
        self._counters = counters

    def __len__(self) -> int:
        if self._given is not None:
            return len(self._given)
        return 0 if self._counters is None else int(self._counters.size)

    def take(self, idx: np.ndarray) -> list[str | None]:
        if self._given is not None:
            given = self._given
            return [given[i] for i in idx.tolist()]
        assert self._counters is not None  # noqa: S101 - one of the two, by construction
        prefix = self._prefix
        return [f"{prefix}{c:x}" for c in self._counters[idx].tolist()]

    def subset(self, keep: np.ndarray) -> Ids:
        """The ids of the events where ``keep`` (a mask) is true."""
        if self._given is not None:
            return Ids(given=self.take(np.flatnonzero(keep)))
        assert self._counters is not None  # noqa: S101 - see take
        return Ids(prefix=self._prefix, counters=self._counters[keep])

    def tolist(self) -> list[str | None]:
        return self.take(np.arange(len(self)))


@dataclass
class Predictions:
    """The valid events of a predictions batch, as columns."""

    score: np.ndarray
    predicted: np.ndarray  # int8: 1, 0 or UNKNOWN
    actual: np.ndarray  # int8: 1, 0 or UNKNOWN
    timestamp: np.ndarray  # float64 epoch seconds
    latency_ms: np.ndarray  # float64, NaN when not given
    version: list[str | None]
    ids: Ids
    index: np.ndarray  # position of each event in the original batch

    def __len__(self) -> int:
        return int(self.score.shape[0])

    @property
    def prediction_id(self) -> list[str | None]:
        return self.ids.tolist()


@dataclass
class Labels:
    prediction_id: list[str]
    actual: np.ndarray
    timestamp: np.ndarray
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.prediction_id)


@dataclass
class _Checker:
    n: int
    reasons: dict[int, str] = field(default_factory=dict)

    def reject(self, i: int, reason: str) -> None:
        self.reasons.setdefault(i, reason)

    def problems(self, name: str, problems: Problems) -> None:
        """Reject each event a field rule found a problem with, naming the field."""
        for i, problem in problems:
            self.reject(i, f"{name}: {problem}")

    def rejects(self) -> list[Reject]:
        return [Reject(i, self.reasons[i]) for i in sorted(self.reasons)]

    def valid_mask(self) -> np.ndarray:
        keep = np.ones(self.n, dtype=bool)
        if self.reasons:
            keep[list(self.reasons)] = False
        return keep


def _broadcast(msg: dict[str, Any], key: str, n: int) -> list[Any] | None:
    raw = msg.get(key)
    if raw is None:
        return None
    if isinstance(raw, list):
        if len(raw) != n:
            raise BatchError(f"{key}: expected {n} values, got {len(raw)}")
        return raw
    return [raw] * n


Rule = Callable[[Any, int], tuple[np.ndarray, Problems]]


def _column(msg: dict[str, Any], key: str, n: int, check: _Checker, rule: Rule,
            code: str) -> np.ndarray | None:
    """A column checked by its field rule (None when absent); bad values reject their events.
    A binary column (``code``) is checked as an array, a scalar once for every event."""
    raw = msg.get(key)
    if raw is None:
        return None
    if is_binary(raw):
        arr, problems = rule(unpack_column(raw, n, key, code), n)
    elif isinstance(raw, list):
        if len(raw) != n:
            raise BatchError(f"{key}: expected {n} values, got {len(raw)}")
        arr, problems = rule(raw, n)
    else:
        one, problems = rule([raw], 1)
        arr = np.repeat(one, n)
        problems = [(i, problem) for _, problem in problems for i in range(n)]
    check.problems(key, problems)
    return arr


def _flag_rule(values: Any, n: int) -> tuple[np.ndarray, Problems]:
    return flag_column(values, n, minus_one_is_unknown=True)


def _flags(msg: dict[str, Any], key: str, n: int, check: _Checker) -> np.ndarray:
    """int8 column of 1 / 0 / UNKNOWN from true/false/1/0/-1/null."""
    arr = _column(msg, key, n, check, _flag_rule, "i1")
    return np.full(n, UNKNOWN, dtype=np.int8) if arr is None else arr


def _generated_ids(msg: dict[str, Any], n: int) -> Ids | None:
    prefix = msg.get("id_prefix")
    if prefix is None:
        return None
    if not isinstance(prefix, str) or not ID_PREFIX.fullmatch(prefix):
        raise BatchError(f"id_prefix: {expected('1-64 letters, digits or _.:-', prefix)}")
    seq = msg.get("id_seq")
    if seq is not None:
        if is_binary(seq):
            counters = unpack_column(seq, n, "id_seq", "i8")
            if counters.size and int(counters.min()) < 0:
                raise BatchError(f"id_seq: expected {n} counters >= 0")
            return Ids(prefix=prefix, counters=counters)
        if not isinstance(seq, list) or len(seq) != n or \
                not all(type(x) is int and 0 <= x < 2**63 for x in seq):
            raise BatchError(f"id_seq: expected {n} counters >= 0")
        return Ids(prefix=prefix, counters=np.asarray(seq, dtype=np.int64))
    start = msg.get("id_start")
    if not isinstance(start, int) or isinstance(start, bool) or not 0 <= start < 2**63 - n:
        raise BatchError("id_start: expected a counter >= 0")
    return Ids(prefix=prefix, counters=np.arange(start, start + n, dtype=np.int64))


def _ids(msg: dict[str, Any], n: int, check: _Checker, *, required: bool) -> Ids:
    generated = _generated_ids(msg, n)
    if generated is not None:
        return generated
    values = _broadcast(msg, "prediction_id", n) if "prediction_id" in msg else None
    if values is None:
        if required:
            check.problems("prediction_id", [(i, REQUIRED) for i in range(n)])
        return Ids(given=[None] * n)
    ids, problems = id_column(values, required=required)
    check.problems("prediction_id", problems)
    return Ids(given=ids)


def _timestamps(msg: dict[str, Any], n: int, check: _Checker, now: float,
                max_age_s: float) -> np.ndarray:
    if "timestamp_ms" in msg:
        base = msg.get("timestamp_base")
        offsets = msg["timestamp_ms"]
        if isinstance(base, bool) or not isinstance(base, (int, float)) or \
                not isinstance(offsets, list) or len(offsets) != n or \
                not all(type(x) is int for x in offsets):
            raise BatchError(f"timestamp_base/timestamp_ms: expected a number and {n} "
                             f"integer offsets")
        try:
            ts = float(base) + np.asarray(offsets, dtype=np.float64) / 1000.0
        except OverflowError:
            raise BatchError("timestamp_ms: an offset is out of range") from None
    else:
        given = _column(msg, "timestamp", n, check, number_column, "f8")
        ts = np.full(n, np.nan) if given is None else given
    ts = np.where(np.isnan(ts), now, ts)
    bad = ~((ts >= now - max_age_s) & (ts <= now + FUTURE_SKEW_S))
    for i in np.flatnonzero(bad):
        check.reject(int(i), f"timestamp: expected epoch seconds within the retention period "
                             f"and at most {FUTURE_SKEW_S:g}s ahead, got {float(ts[i])!r}")
    return ts


def batch_header(msg: Any, kind: str) -> tuple[str, str, int]:
    """(batch_id, model, n), or BatchError / ValidationError."""
    if not isinstance(msg, dict):
        raise BatchError(f"batch: expected an object, got {type(msg).__name__}")
    if REJECTED_KEY in msg:
        raise LimitError(printable(str(msg[REJECTED_KEY])))
    if msg.get("v") != WIRE_VERSION:
        raise BatchError(f"v: expected wire version {WIRE_VERSION}, got {short_repr(msg.get('v'))}")
    if msg.get("kind", kind) != kind:
        raise BatchError(f"kind: expected {kind!r}, got {short_repr(msg.get('kind'))}")
    batch_id = msg.get("batch_id")
    if not isinstance(batch_id, str) or not 1 <= len(batch_id) <= 128:
        raise BatchError(f"batch_id: {expected('a string of 1-128 characters', batch_id)}")
    model = validate_model_name(msg.get("model"), "model")
    n = msg.get("n")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise BatchError(f"n: expected the number of events, got {short_repr(n)}")
    if n > MAX_EVENTS:
        raise LimitError(f"n: expected at most {MAX_EVENTS} events per message, got {n}")
    return batch_id, model, n


def _check_time_buckets(timestamps: np.ndarray, versions: list[Any] | None) -> None:
    if timestamps.size > MAX_TIME_BUCKETS:  # fewer events cannot exceed the limit
        count = time_buckets(timestamps, versions)
        if count > MAX_TIME_BUCKETS:
            raise LimitError(f"timestamp: expected events in at most {MAX_TIME_BUCKETS} distinct "
                             f"(version, minute) buckets per message, got {count}")


TASK_KINDS = {TASK_INGEST_PREDICTIONS: "predictions", TASK_INGEST_LABELS: "labels"}


def check_message(task: Any, msg: Any) -> str:
    """What a batch must satisfy before it is sent again from the journal: a known ingest task,
    a valid header and every limit. Returns the kind; raises BatchError or LimitError."""
    kind = TASK_KINDS.get(task) if isinstance(task, str) else None
    if kind is None:
        raise BatchError(f"task: expected one of {sorted(TASK_KINDS)}, got {short_repr(task)}")
    if depth_exceeds(msg, MAX_MESSAGE_DEPTH - 3):  # the batch sits 3 levels into a message
        raise LimitError(f"message: nested deeper than {MAX_MESSAGE_DEPTH} levels")
    batch_header(msg, kind)
    metadata = msg.get("metadata")
    for m in metadata if isinstance(metadata, list) else [metadata]:
        if m is not None and (problem := metadata_problem(m)) is not None:
            raise LimitError(problem)
    return kind


def decode_predictions(msg: dict[str, Any], *, now: float,
                       max_age_s: float) -> tuple[Predictions, list[Reject]]:
    _, _, n = batch_header(msg, "predictions")
    check = _Checker(n)
    score = _column(msg, "score", n, check, score_column, "f8")
    if score is None:
        check.problems("score", [(i, REQUIRED) for i in range(n)])
        score = np.full(n, np.nan)
    predicted = _flags(msg, "predicted", n, check)
    actual = _flags(msg, "actual", n, check)
    latency = _column(msg, "latency_ms", n, check, non_negative_column, "f8")
    if latency is None:
        latency = np.full(n, np.nan)
    timestamp = _timestamps(msg, n, check, now, max_age_s)
    ids = _ids(msg, n, check, required=False)
    version = msg.get("version")
    if isinstance(version, list):
        versions = _broadcast(msg, "version", n) or []
        check.problems("version", version_problems(versions))
    else:  # one version for every event (or none): matched once
        versions = [version] * n
        check.problems("version", [(i, problem) for _, problem in version_problems([version])
                                   for i in range(n)])
    metadata = _broadcast(msg, "metadata", n)
    if metadata is not None:
        # nesting only: the whole message's size is bounded by the decoder, and metadata is
        # kept nowhere but in dead letters, which bound each value; the client also bounds
        # each event's metadata to METADATA_MAX_BYTES
        if depth_exceeds(metadata, METADATA_MAX_DEPTH + 1):
            raise LimitError(f"metadata: expected at most {METADATA_MAX_DEPTH} levels of "
                             f"nesting")
        for i, m in enumerate(metadata):
            if m is not None and type(m) is not dict:
                check.reject(i, f"metadata: {metadata_type_problem(m)}")
    keep = check.valid_mask()
    idx = np.flatnonzero(keep)
    all_kept = bool(idx.size == n)
    _check_time_buckets(timestamp[keep], versions if all_kept else [versions[i] for i in idx])
    return Predictions(
        score=score[keep], predicted=predicted[keep], actual=actual[keep],
        timestamp=timestamp[keep],
        latency_ms=np.where(np.isfinite(latency), latency, np.nan)[keep],
        version=versions if all_kept else [versions[i] for i in idx],
        ids=ids if all_kept else ids.subset(keep),
        index=idx,
    ), check.rejects()


def decode_labels(msg: dict[str, Any], *, now: float,
                  max_age_s: float) -> tuple[Labels, list[Reject]]:
    _, _, n = batch_header(msg, "labels")
    check = _Checker(n)
    ids = _ids(msg, n, check, required=True)
    actual = _flags(msg, "actual", n, check)
    check.problems("actual", [(int(i), f"{REQUIRED} ({A_FLAG})")
                              for i in np.flatnonzero(actual == UNKNOWN)])
    timestamp = _timestamps(msg, n, check, now, max_age_s)
    keep = check.valid_mask()
    _check_time_buckets(timestamp[keep], None)
    idx = np.flatnonzero(keep)
    # a row without an id has a problem, so no kept row lacks one: nothing is dropped here
    return Labels(prediction_id=[pid for pid in ids.take(idx) if pid is not None],
                  actual=actual[keep],
                  timestamp=timestamp[keep], index=idx), check.rejects()


_LETTER_VALUE_CHARS = 200


def _bounded(value: Any) -> Any:
    """A value as kept in a dead letter: short strings and small objects as they are, anything
    larger summarised, so a letter never costs more than a few KB whatever the message held."""
    if isinstance(value, str):
        return value if len(value) <= _LETTER_VALUE_CHARS else \
            value[:_LETTER_VALUE_CHARS] + f"... ({len(value)} characters)"
    if isinstance(value, (list, dict)):
        if depth_exceeds(value, METADATA_MAX_DEPTH):
            return f"<{type(value).__name__} nested too deeply>"
        try:
            size = len(json.dumps(value, separators=(",", ":"), default=str))
        except (TypeError, ValueError, RecursionError):
            return f"<{type(value).__name__}>"
        return value if size <= METADATA_MAX_BYTES else \
            f"<{type(value).__name__} of {size} bytes>"
    return value


_BINARY_FIELDS = {"score": "f8", "latency_ms": "f8", "timestamp": "f8", "predicted": "i1",
                  "actual": "i1"}


def _binary_value(raw: Any, n: Any, key: str, code: str, index: int) -> Any:
    """Value ``index`` of a binary column, as a Python number (None for a NaN float: not given),
    or a short note when the column itself is unusable."""
    text = raw.get(code) if len(raw) == 1 else None
    if type(n) is not int or not 0 <= index < n <= MAX_EVENTS or type(text) is not str:
        return "<binary column>"
    column = _unpacked(text, n, key, code)
    if column is None:
        return "<unreadable binary column>"
    value = column[index].item()
    return None if isinstance(value, float) and math.isnan(value) else value


@functools.lru_cache(maxsize=8)
def _unpacked(text: str, n: int, key: str, code: str) -> np.ndarray | None:
    """A binary column decoded once for all the letters of its batch."""
    try:
        return unpack_column({code: text}, n, key, code)
    except BatchError:
        return None


def original_event(msg: object, index: int) -> dict[str, Any]:
    """Rebuild event ``index`` of a batch as the producer sent it (for dead letters), each value
    bounded in size."""
    n = msg.get("n") if isinstance(msg, dict) else None
    event: dict[str, Any] = {}
    if not isinstance(msg, dict):
        return {"raw": short_repr(msg)}
    for key in ("prediction_id", "score", "predicted", "actual", "version", "latency_ms",
                "timestamp", "metadata"):
        raw = msg.get(key)
        if key in _BINARY_FIELDS and is_binary(raw):
            event[key] = _binary_value(raw, n, key, _BINARY_FIELDS[key], index)
        elif isinstance(raw, list):
            value = raw[index] if isinstance(n, int) and index < len(raw) else None
            event[key] = _bounded(value)
        elif raw is not None:
            event[key] = _bounded(raw)
    prefix, seq, start = msg.get("id_prefix"), msg.get("id_seq"), msg.get("id_start")
    if isinstance(prefix, str) and ID_PREFIX.fullmatch(prefix):
        counter = None
        if is_binary(seq):
            counter = _binary_value(seq, n, "id_seq", "i8", index)
        elif isinstance(seq, list) and index < len(seq):
            counter = seq[index]
        elif type(start) is int:
            counter = start + index
        if type(counter) is int:
            event["prediction_id"] = f"{prefix}{counter:x}"
    if isinstance(msg.get("timestamp_ms"), list) and index < len(msg["timestamp_ms"]):
        base = msg.get("timestamp_base")
        if isinstance(base, (int, float)) and isinstance(msg["timestamp_ms"][index], int):
            with contextlib.suppress(OverflowError):
                event["timestamp"] = base + msg["timestamp_ms"][index] / 1000.0
    return event
