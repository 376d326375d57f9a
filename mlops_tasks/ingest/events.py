"""The wire format of event batches, and their validation: pure functions, no I/O.

A batch is one JSON object per model, columnar::

    {"v": 1, "kind": "predictions", "batch_id": "...", "model": "n1-detector", "n": 3,
     "score": [0.91, 0.12, 0.55],          # required, each in [0, 1]
     "predicted": [1, 0, -1],              # optional; 1/0/true/false, -1 or null = unknown
     "actual": [1, -1, -1],                # optional ground truth, same encoding
     "prediction_id": ["a", "b", "c"],     # optional; or generated ids, sent compactly as
                                           # "id_prefix" + "id_start" (ids prefix + hex of
                                           # start, start+1, ...) or "id_prefix" + "id_seq"
     "version": "1.0.0",                   # optional; a scalar applies to every event
     "latency_ms": [3.1, null, 2.0],       # optional, >= 0
     "timestamp": 1764230400.0,            # optional epoch seconds; scalar or list, or
                                           # "timestamp_base" + "timestamp_ms" (offsets)
     "metadata": [null, {"route": "/"}, null]}

    {"v": 1, "kind": "labels", "batch_id": "...", "model": "n1-detector", "n": 2,
     "prediction_id": ["a", "b"], "actual": [1, 0], "timestamp": [...]}

Every column may be absent (all null), a scalar (broadcast) or a list of ``n`` values. A bad value
rejects only its own event, with a reason naming the field; the rest of the batch is kept.

A batch id of the form ``<producer>.<seq>`` (``SEQUENCED_ID``) tells the worker that the batch is
number ``seq`` of that producer for this model: duplicates are then detected by a per-producer
watermark instead of a marker per batch (see ``lua/dedup.lua``). Any other id is remembered by a
marker of its own for a while.

Limits (``LIMITS``) bound what one message may cost a worker; the client never exceeds them and
the worker dead-letters a message that does as one summary letter, without looking further.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ValidationError
from ..queues import TASK_INGEST_LABELS, TASK_INGEST_PREDICTIONS
from ..registry.config import validate_model_name
from ..registry.semver import _SEMVER

WIRE_VERSION = 1
MAX_ID_LENGTH = 128
FUTURE_SKEW_S = 300.0
UNKNOWN = -1

# --- limits of one message -------------------------------------------------------------------
MAX_EVENTS = 10_000  # events per message (the client splits larger batches)
MAX_TIME_BUCKETS = 256  # distinct (version, minute) pairs per message: bounds one Lua call
MAX_MESSAGE_BYTES = 32 * 1024 * 1024  # encoded message body
MAX_MESSAGE_DEPTH = 32  # nesting of the whole message body (Celery's envelope included)
MAX_MESSAGE_CONTAINERS = 250_000  # objects and lists in one message body
METADATA_MAX_DEPTH = 8  # nesting of one event's metadata (the object itself is level 1)
METADATA_MAX_BYTES = 2048  # one event's metadata, as compact JSON

LIMITS = {"events": MAX_EVENTS, "time_buckets": MAX_TIME_BUCKETS,
          "message_bytes": MAX_MESSAGE_BYTES, "message_depth": MAX_MESSAGE_DEPTH,
          "message_containers": MAX_MESSAGE_CONTAINERS,
          "metadata_depth": METADATA_MAX_DEPTH, "metadata_bytes": METADATA_MAX_BYTES}

# Set by the worker's message decoder on a message it refused to decode in full (too large or too
# deeply nested): the task then sees a small stand-in carrying the reason (see ingest/codec.py).
REJECTED_KEY = "_rejected"

_ID_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
SEQUENCED_ID = re.compile(r"(?P<producer>[0-9a-f]{8,32})\.(?P<seq>[1-9][0-9]{0,14})")


class BatchError(ValidationError):
    """The batch as a whole is unusable (every event is dead-lettered with this reason)."""


class LimitError(BatchError):
    """The message exceeds a limit: dead-lettered as one summary letter, never looked into."""


def sequence(batch_id: str) -> tuple[str, int] | None:
    """(producer, seq) of a sequenced batch id, else None."""
    m = SEQUENCED_ID.fullmatch(batch_id)
    return (m["producer"], int(m["seq"])) if m else None


_CONTAINERS = frozenset((list, dict))


def depth_exceeds(value: Any, limit: int) -> bool:
    """True when ``value`` nests lists/dicts deeper than ``limit`` (a scalar is depth 0).
    Level by level, and the children of each container are typed at C speed (``map(type)``),
    so containers of scalars cost almost nothing."""
    frontier = [value] if type(value) in _CONTAINERS else []
    level = 1
    while frontier:
        if level > limit:
            return True
        deeper: list[Any] = []
        for node in frontier:
            children = node.values() if type(node) is dict else node
            if not _CONTAINERS.isdisjoint(set(map(type, children))):
                deeper.extend(c for c in children if type(c) in _CONTAINERS)
        frontier = deeper
        level += 1
    return False


def printable(text: str, limit: int = 300) -> str:
    """At most ``limit`` characters, every non-printable one escaped (for logs and letters)."""
    text = text[:limit]
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def encode_metadata(metadata: Any) -> str:
    """One event's metadata as compact JSON; ValidationError naming the rule it breaks
    (an object, at most METADATA_MAX_DEPTH levels, JSON values, METADATA_MAX_BYTES)."""
    if not isinstance(metadata, dict):
        raise ValidationError(f"metadata: expected an object, got {type(metadata).__name__}")
    if depth_exceeds(metadata, METADATA_MAX_DEPTH):
        raise ValidationError(f"metadata: expected at most {METADATA_MAX_DEPTH} levels of "
                              f"nesting")
    try:
        text = json.dumps(metadata, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"metadata: expected JSON values ({str(exc)[:80]})") from None
    if len(text) > METADATA_MAX_BYTES:
        raise ValidationError(f"metadata: expected at most {METADATA_MAX_BYTES} bytes of JSON, "
                              f"got {len(text)}")
    return text


def metadata_problem(metadata: Any) -> str | None:
    """Why one event's metadata is not allowed (see encode_metadata), or None."""
    try:
        encode_metadata(metadata)
    except ValidationError as exc:
        return str(exc)
    return None


@dataclass
class Reject:
    index: int
    reason: str


@dataclass
class Predictions:
    """The valid events of a predictions batch, as columns."""

    score: np.ndarray
    predicted: np.ndarray  # int8: 1, 0 or UNKNOWN
    actual: np.ndarray  # int8: 1, 0 or UNKNOWN
    timestamp: np.ndarray  # float64 epoch seconds
    latency_ms: np.ndarray  # float64, NaN when not given
    version: list[str | None]
    prediction_id: list[str | None]
    index: np.ndarray  # position of each event in the original batch

    def __len__(self) -> int:
        return int(self.score.shape[0])


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
    reasons: list[str | None] = field(init=False)

    def __post_init__(self) -> None:
        self.reasons = [None] * self.n

    def reject(self, i: int, reason: str) -> None:
        if self.reasons[i] is None:
            self.reasons[i] = reason

    def rejects(self) -> list[Reject]:
        return [Reject(i, r) for i, r in enumerate(self.reasons) if r is not None]

    def valid_mask(self) -> np.ndarray:
        return np.array([r is None for r in self.reasons], dtype=bool)


def _broadcast(msg: dict[str, Any], key: str, n: int) -> list[Any] | None:
    raw = msg.get(key)
    if raw is None:
        return None
    if isinstance(raw, list):
        if len(raw) != n:
            raise BatchError(f"{key}: expected {n} values, got {len(raw)}")
        return raw
    return [raw] * n


def _numbers(values: list[Any] | None, n: int, name: str, check: _Checker, *,
             required: bool = False) -> np.ndarray:
    """float64 column; None -> NaN; a non-number rejects its event."""
    if values is None:
        if required:
            for i in range(n):
                check.reject(i, f"{name}: required")
        return np.full(n, np.nan)
    if all(type(v) is float or type(v) is int for v in values):
        try:
            return np.asarray(values, dtype=np.float64)
        except OverflowError:
            pass  # an integer too large for a float: find it below
    arr = np.full(n, np.nan)
    for i, v in enumerate(values):
        if v is None:
            if required:
                check.reject(i, f"{name}: required")
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            check.reject(i, f"{name}: expected a number, got {short_repr(v)}")
        else:
            try:
                arr[i] = float(v)
            except OverflowError:
                check.reject(i, f"{name}: expected a number, got {short_repr(v)}")
    return arr


def short_repr(value: Any) -> str:
    """A value quoted in a reason: at most 40 characters, control characters escaped (repr),
    and never a walk through a large or deep container."""
    if isinstance(value, (list, dict)):
        return f"{type(value).__name__} of {len(value)}"
    if isinstance(value, (str, bytes)) and len(value) > 40:
        value = value[:40]
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _flags(values: list[Any] | None, n: int, name: str, check: _Checker) -> np.ndarray:
    """int8 column of 1 / 0 / UNKNOWN from true/false/1/0/-1/null."""
    if values is None:
        return np.full(n, UNKNOWN, dtype=np.int8)
    if all(type(v) is int or type(v) is bool for v in values):
        try:
            arr = np.asarray(values, dtype=np.int64)
        except OverflowError:
            arr = None
        if arr is not None and np.all((arr >= -1) & (arr <= 1)):
            return arr.astype(np.int8)
    out = np.full(n, UNKNOWN, dtype=np.int8)
    for i, v in enumerate(values):
        if v is None or (type(v) is int and v == -1):
            continue
        if v is True or (type(v) in (int, float) and v == 1):
            out[i] = 1
        elif v is False or (type(v) in (int, float) and v == 0):
            out[i] = 0
        else:
            check.reject(i, f"{name}: expected true/false or 1/0, got {short_repr(v)}")
    return out


def _generated_ids(msg: dict[str, Any], n: int) -> list[str] | None:
    prefix = msg.get("id_prefix")
    if prefix is None:
        return None
    if not isinstance(prefix, str) or not _ID_PREFIX.fullmatch(prefix):
        raise BatchError(f"id_prefix: expected 1-64 letters, digits or _.:-, got {short_repr(prefix)}")
    seq = msg.get("id_seq")
    if seq is not None:
        if not isinstance(seq, list) or len(seq) != n or \
                not all(type(x) is int and 0 <= x < 2**63 for x in seq):
            raise BatchError(f"id_seq: expected {n} counters >= 0")
        return [f"{prefix}{x:x}" for x in seq]
    start = msg.get("id_start")
    if not isinstance(start, int) or isinstance(start, bool) or not 0 <= start < 2**63:
        raise BatchError("id_start: expected a counter >= 0")
    return [f"{prefix}{start + i:x}" for i in range(n)]


def _ids(msg: dict[str, Any], n: int, check: _Checker, *, required: bool) -> list[str | None]:
    generated = _generated_ids(msg, n)
    if generated is not None:
        return list(generated)
    values = _broadcast(msg, "prediction_id", n) if "prediction_id" in msg else None
    if values is None:
        if required:
            for i in range(n):
                check.reject(i, "prediction_id: required")
        return [None] * n
    out: list[str | None] = []
    for i, v in enumerate(values):
        if v is None:
            if required:
                check.reject(i, "prediction_id: required")
            out.append(None)
        elif not isinstance(v, str) or not v or len(v) > MAX_ID_LENGTH:
            check.reject(i, f"prediction_id: expected a string of 1-{MAX_ID_LENGTH} characters, "
                            f"got {short_repr(v)}")
            out.append(None)
        else:
            out.append(v)
    return out


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
        ts = _numbers(_broadcast(msg, "timestamp", n), n, "timestamp", check)
    ts = np.where(np.isnan(ts), now, ts)
    bad = (ts < now - max_age_s) | (ts > now + FUTURE_SKEW_S)
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
        raise BatchError(f"batch_id: expected a string of 1-128 characters, got {short_repr(batch_id)}")
    model = msg.get("model")
    validate_model_name(model, "model")
    n = msg.get("n")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise BatchError(f"n: expected the number of events, got {short_repr(n)}")
    if n > MAX_EVENTS:
        raise LimitError(f"n: expected at most {MAX_EVENTS} events per message, got {n}")
    return batch_id, model, n


def time_buckets(timestamps: np.ndarray, versions: list[Any] | None) -> int:
    """Distinct (version, minute) pairs: what one message costs the apply script."""
    if timestamps.size == 0:
        return 0
    minutes = np.floor(timestamps / 60.0)
    distinct = set(versions) if versions is not None else set()
    if len(distinct) <= 1:
        return int(np.unique(minutes).size)
    code = {v: i for i, v in enumerate(distinct)}
    keyed = minutes * len(code) + np.fromiter((code[v] for v in versions or ()), dtype=np.float64,
                                             count=timestamps.size)
    return int(np.unique(keyed).size)


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
    score = _numbers(_broadcast(msg, "score", n), n, "score", check, required=True)
    out_of_range = ~np.isfinite(score) | (score < 0) | (score > 1)
    for i in np.flatnonzero(out_of_range):
        check.reject(int(i), f"score: expected a number in [0, 1], got {float(score[i])!r}")
    predicted = _flags(_broadcast(msg, "predicted", n), n, "predicted", check)
    actual = _flags(_broadcast(msg, "actual", n), n, "actual", check)
    latency = _numbers(_broadcast(msg, "latency_ms", n), n, "latency_ms", check)
    bad_latency = np.isfinite(latency) & (latency < 0) | np.isinf(latency)
    for i in np.flatnonzero(bad_latency):
        check.reject(int(i), f"latency_ms: expected a number >= 0, got {float(latency[i])!r}")
    timestamp = _timestamps(msg, n, check, now, max_age_s)
    ids = _ids(msg, n, check, required=False)
    versions = _broadcast(msg, "version", n) or [None] * n
    for i, v in enumerate(versions):
        if v is not None and (not isinstance(v, str) or not _SEMVER.fullmatch(v)):
            check.reject(i, f"version: expected a semantic version such as 1.0.0, got {short_repr(v)}")
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
                check.reject(i, f"metadata: expected an object, got {type(m).__name__}")
    keep = check.valid_mask()
    _check_time_buckets(timestamp[keep], [v for v, k in zip(versions, keep, strict=True) if k])
    idx = np.flatnonzero(keep)
    all_kept = bool(keep.all())
    return Predictions(
        score=score[keep], predicted=predicted[keep], actual=actual[keep],
        timestamp=timestamp[keep],
        latency_ms=np.where(np.isfinite(latency), latency, np.nan)[keep],
        version=versions if all_kept else [versions[i] for i in idx],
        prediction_id=ids if all_kept else [ids[i] for i in idx],
        index=idx,
    ), check.rejects()


def decode_labels(msg: dict[str, Any], *, now: float,
                  max_age_s: float) -> tuple[Labels, list[Reject]]:
    _, _, n = batch_header(msg, "labels")
    check = _Checker(n)
    ids = _ids(msg, n, check, required=True)
    actual = _flags(_broadcast(msg, "actual", n), n, "actual", check)
    for i in np.flatnonzero(actual == UNKNOWN):
        check.reject(int(i), "actual: required (true/false or 1/0)")
    timestamp = _timestamps(msg, n, check, now, max_age_s)
    keep = check.valid_mask()
    _check_time_buckets(timestamp[keep], None)
    idx = np.flatnonzero(keep)
    return Labels(prediction_id=[ids[i] for i in idx], actual=actual[keep],
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


def original_event(msg: dict[str, Any], index: int) -> dict[str, Any]:
    """Rebuild event ``index`` of a batch as the producer sent it (for dead letters), each value
    bounded in size."""
    n = msg.get("n") if isinstance(msg, dict) else None
    event: dict[str, Any] = {}
    if not isinstance(msg, dict):
        return {"raw": short_repr(msg)}
    for key in ("prediction_id", "score", "predicted", "actual", "version", "latency_ms",
                "timestamp", "metadata"):
        raw = msg.get(key)
        if isinstance(raw, list):
            value = raw[index] if isinstance(n, int) and index < len(raw) else None
            event[key] = _bounded(value)
        elif raw is not None:
            event[key] = _bounded(raw)
    prefix, seq, start = msg.get("id_prefix"), msg.get("id_seq"), msg.get("id_start")
    if isinstance(prefix, str) and _ID_PREFIX.fullmatch(prefix):
        if isinstance(seq, list) and index < len(seq) and type(seq[index]) is int:
            event["prediction_id"] = f"{prefix}{seq[index]:x}"
        elif type(start) is int:
            event["prediction_id"] = f"{prefix}{start + index:x}"
    if isinstance(msg.get("timestamp_ms"), list) and index < len(msg["timestamp_ms"]):
        base = msg.get("timestamp_base")
        if isinstance(base, (int, float)) and isinstance(msg["timestamp_ms"][index], int):
            try:
                event["timestamp"] = base + msg["timestamp_ms"][index] / 1000.0
            except OverflowError:
                pass
    return event

