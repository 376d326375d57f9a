"""The wire format of event batches and the rule of every field: one module, used by the client
(which checks each call) and by the worker (which checks each message). Pure, no I/O.

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

    {"v": 1, "kind": "predictions", ..., "n": 3,    # the same batch with binary columns
     "score": {"f8": "<base64>"}, "actual": {"i1": "<base64>"}, "id_prefix": "p-",
     "id_seq": {"i8": "<base64>"}, "timestamp": {"f8": "<base64>"}}

    {"v": 1, "kind": "labels", "batch_id": "...", "model": "n1-detector", "n": 2,
     "prediction_id": ["a", "b"], "actual": [1, 0], "timestamp": [...]}

Every column may be absent (all null), a scalar (broadcast) or a list of ``n`` values. A bad value
rejects only its own event, with a reason naming the field; the rest of the batch is kept.

A numeric column may also travel *binary*: ``{"<code>": "<base64>"}``, the base64 of exactly ``n``
raw little-endian values of the field's type (``BINARY_CODES``: ``f8`` float64 for ``score``,
``latency_ms`` and ``timestamp``, where NaN means not given except for ``score``; ``i1`` int8 for
``predicted`` and ``actual``, -1 = unknown; ``i8`` int64 for ``id_seq``). Still JSON (never
pickle), but encoded and decoded at C speed, exact, and 8 bytes per float instead of ~18
characters. Each value is then checked by the field's rule like any other; a column of another
code or length, or that is not base64, rejects the batch (``unpack_column``).

A batch id of the form ``<producer>.<seq>`` (``SEQUENCED_ID``) tells the worker that the batch is
number ``seq`` of that producer for this model: duplicates are then detected by a per-producer
watermark instead of a marker per batch (see ``lua/dedup.lua``). Any other id is remembered by a
marker of its own for a while.

Limits (``LIMITS``) bound what one message may cost a worker; the client never exceeds them and
the worker dead-letters a message that does as one summary letter, without looking further.

Field rules
-----------
Each field has one rule, written once below, in up to two forms sharing its wording:

- a *scalar* form (``score(value)``) returns the value as it goes on the wire or raises
  ``ValidationError`` (a ``ValueError``) naming the field: ``score: expected a number in [0, 1],
  got 1.5``. The client checks every argument of every call with these.
- a *column* form (``score_column(values, n)``) returns the column as an array and the problems of
  its bad values by position, ``[(index, "expected ..., got ...")]``, leaving the field's name to
  the caller: the worker rejects event ``index`` with ``score: <problem>``; the client's
  ``record_batch`` raises ``scores[index]: <problem>``. A missing required value is ``required``.

Rules of the message as a whole (header, limits, time window) are the worker's and live in
``ingest/events.py``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np

from .errors import ValidationError
from .registry.config import validate_model_name
from .registry.semver import _SEMVER, MAX_VERSION_CHARS

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

ID_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
SEQUENCED_ID = re.compile(r"(?P<producer>[0-9a-f]{8,32})\.(?P<seq>[1-9][0-9]{0,14})")


class BatchError(ValidationError):
    """The batch as a whole is unusable (every event is dead-lettered with this reason)."""


class LimitError(BatchError):
    """The message exceeds a limit: dead-lettered as one summary letter, never looked into."""


def sequence(batch_id: str) -> tuple[str, int] | None:
    """(producer, seq) of a sequenced batch id, else None."""
    m = SEQUENCED_ID.fullmatch(batch_id)
    return (m["producer"], int(m["seq"])) if m else None


# --- helpers ----------------------------------------------------------------------------------

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


def short_repr(value: Any) -> str:
    """A value quoted in a reason: at most 40 characters, control characters escaped (repr),
    and never a walk through a large or deep container."""
    if isinstance(value, (list, dict)):
        return f"{type(value).__name__} of {len(value)}"
    if isinstance(value, (str, bytes)) and len(value) > 40:
        value = value[:40]
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def expected(what: str, value: Any) -> str:
    """The problem of a refused value, without the field: ``expected <what>, got <value>``."""
    return f"expected {what}, got {short_repr(value)}"


def _refuse(field: str, what: str, value: Any) -> NoReturn:
    raise ValidationError(f"{field}: {expected(what, value)}")


Problems = list[tuple[int, str]]  # (index in the column, problem without the field's name)

# --- field rules ------------------------------------------------------------------------------
# What each field expects, as quoted in every error and dead letter.
A_NUMBER = "a number"
A_SCORE = "a number in [0, 1]"
A_NON_NEGATIVE = "a number >= 0"
A_FLAG = "true/false or 1/0"
AN_ID = f"a string of 1-{MAX_ID_LENGTH} characters"
A_VERSION = f"a semantic version such as 1.0.0 (at most {MAX_VERSION_CHARS} characters)"
REQUIRED = "required"

_NUMBER_TYPES = (int, float, np.integer, np.floating)
_FLAG_TYPES = (int, float, np.integer, np.floating, np.bool_)
_FLOAT_MAX = sys.float_info.max


def _as_float(value: Any) -> float | None:
    """A number (Python's or numpy's, never a boolean) as a float; None for anything else."""
    if isinstance(value, _NUMBER_TYPES) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # an integer too large for a float
            return None
    return None


def _as_flag(value: Any) -> int | None:
    """1 or 0 from True/False or any number equal to 1/0; None for anything else."""
    if value is True or value is False:
        return int(value)
    if isinstance(value, _FLAG_TYPES) and value in (1, 0):
        return int(value)
    return None


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH


def _is_version(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_VERSION_CHARS and \
        _SEMVER.fullmatch(value) is not None


# model ---------------------------------------------------------------------------------------

def model_name(value: Any, field: str = "model") -> str:
    """The registry's rule for model names (a full match; see registry/config.py)."""
    return validate_model_name(value, field)


# numbers: score, latency_ms, timestamp ---------------------------------------------------------

def number(value: Any, field: str) -> float:
    if type(value) is float:
        return value
    f = _as_float(value)
    if f is None:
        _refuse(field, A_NUMBER, value)
    return f


def score(value: Any, field: str = "score") -> float:
    """A number in [0, 1] (NaN is not)."""
    f = value if type(value) is float else number(value, field)
    if 0.0 <= f <= 1.0:
        return f
    _refuse(field, A_SCORE, f)


def non_negative(value: Any, field: str) -> float:
    """A finite number >= 0: ``latency_ms``, and ``timestamp`` in epoch seconds (whose time
    window the worker checks against its clock and retention)."""
    f = value if type(value) is float else number(value, field)
    if 0.0 <= f <= _FLOAT_MAX:
        return f
    _refuse(field, A_NON_NEGATIVE, f)


def number_column(values: Sequence[Any] | np.ndarray, n: int, *,
                  required: bool = False) -> tuple[np.ndarray, Problems]:
    """float64 column of ``n`` values; None becomes NaN (a problem when ``required``)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        return values.astype(np.float64, copy=False), []
    if all(type(v) is float or type(v) is int for v in values):
        try:
            return np.asarray(values, dtype=np.float64), []
        except OverflowError:
            pass  # an integer too large for a float: found below
    arr = np.full(n, np.nan)
    problems: Problems = []
    for i, v in enumerate(values):
        if v is None:
            if required:
                problems.append((i, REQUIRED))
            continue
        f = _as_float(v)
        if f is None:
            problems.append((i, expected(A_NUMBER, v)))
        else:
            arr[i] = f
    return arr, problems


def _out_of_range(arr: np.ndarray, bad: np.ndarray, what: str, problems: Problems) -> Problems:
    """``problems`` plus one for each index of ``bad`` (a mask) that has none yet."""
    if problems:
        bad = bad.copy()
        bad[[i for i, _ in problems]] = False
    return problems + [(int(i), expected(what, float(arr[i]))) for i in np.flatnonzero(bad)]


def score_column(values: Sequence[Any] | np.ndarray, n: int) -> tuple[np.ndarray, Problems]:
    arr, problems = number_column(values, n, required=True)
    return arr, _out_of_range(arr, ~(arr >= 0) | (arr > 1), A_SCORE, problems)


def non_negative_column(values: Sequence[Any] | np.ndarray,
                        n: int) -> tuple[np.ndarray, Problems]:
    """NaN (or None) is a value not given; anything else must be finite and >= 0."""
    arr, problems = number_column(values, n)
    return arr, _out_of_range(arr, np.isfinite(arr) & (arr < 0) | np.isinf(arr),
                              A_NON_NEGATIVE, problems)


# flags: predicted, actual ----------------------------------------------------------------------

def flag(value: Any, field: str) -> int:
    """1 or 0 from True/False or 1/0 (numpy's too)."""
    if value is True:
        return 1
    if value is False:
        return 0
    f = _as_flag(value)
    if f is None:
        _refuse(field, A_FLAG, value)
    return f


def flag_column(values: Sequence[Any] | np.ndarray, n: int, *,
                minus_one_is_unknown: bool) -> tuple[np.ndarray, Problems]:
    """int8 column of 1 / 0 / UNKNOWN; None is unknown, and on the wire -1 too (a caller's -1
    is refused: it is a label in some datasets, not "unknown")."""
    lo = UNKNOWN if minus_one_is_unknown else 0
    arr: np.ndarray | None = None
    if isinstance(values, np.ndarray) and values.dtype.kind in "biu":
        arr = values.astype(np.int64)
    elif all(type(v) is int or type(v) is bool for v in values):
        try:
            arr = np.asarray(values, dtype=np.int64)
        except OverflowError:
            arr = None
    if arr is not None and bool(np.all((arr >= lo) & (arr <= 1))):
        return arr.astype(np.int8), []
    out = np.full(n, UNKNOWN, dtype=np.int8)
    problems: Problems = []
    for i, v in enumerate(values.tolist() if isinstance(values, np.ndarray) else values):
        if v is None or (minus_one_is_unknown and type(v) is int and v == UNKNOWN):
            continue
        f = _as_flag(v)
        if f is None:
            problems.append((i, expected(A_FLAG, v)))
        else:
            out[i] = f
    return out, problems


# prediction_id -------------------------------------------------------------------------------

def prediction_id(value: Any, field: str = "prediction_id") -> str:
    if _is_id(value):
        return str(value)
    _refuse(field, AN_ID, value)


def id_column(values: Sequence[Any] | np.ndarray, *,
              required: bool) -> tuple[list[str | None], Problems]:
    out: list[str | None] = []
    problems: Problems = []
    for i, v in enumerate(values):
        if _is_id(v):
            out.append(v)
            continue
        if v is not None:
            problems.append((i, expected(AN_ID, v)))
        elif required:
            problems.append((i, REQUIRED))
        out.append(None)
    return out, problems


# version -------------------------------------------------------------------------------------

def version(value: Any, field: str = "version") -> str:
    """A semantic version, as the registry names them (see registry/semver.py)."""
    if _is_version(value):
        return str(value)
    _refuse(field, A_VERSION, value)


def version_problems(values: Sequence[Any]) -> Problems:
    """The problems of a version column (None: not given); each distinct version is matched
    once, so a scalar broadcast to 10,000 events costs one match."""
    good: set[str] = set()
    problems: Problems = []
    for i, v in enumerate(values):
        if v is None or (type(v) is str and v in good):
            continue
        if _is_version(v):
            good.add(v)
        else:
            problems.append((i, expected(A_VERSION, v)))
    return problems


# metadata ------------------------------------------------------------------------------------

def encode_metadata(metadata: Any) -> str:
    """One event's metadata as compact JSON; ValidationError naming the rule it breaks
    (an object, at most METADATA_MAX_DEPTH levels, JSON values, METADATA_MAX_BYTES)."""
    if not isinstance(metadata, dict):
        raise ValidationError(f"metadata: {metadata_type_problem(metadata)}")
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


def metadata_type_problem(value: Any) -> str:
    """Metadata that is not an object, named by its type (never by its content)."""
    return f"expected an object, got {type(value).__name__}"


def metadata_problem(metadata: Any) -> str | None:
    """Why one event's metadata is not allowed (see encode_metadata), or None."""
    try:
        encode_metadata(metadata)
    except ValidationError as exc:
        return str(exc)
    return None


def metadata_containers(text: str) -> int:
    """Objects and lists in one event's metadata JSON, as the worker's decoder counts them
    (every opening bracket, those inside strings too)."""
    return text.count("{") + text.count("[")


# --- binary columns --------------------------------------------------------------------------

BINARY_CODES: dict[str, np.dtype[Any]] = {"f8": np.dtype("<f8"), "i1": np.dtype("i1"),
                                         "i8": np.dtype("<i8")}
_BINARY_NAMES = {"f8": "little-endian float64", "i1": "int8", "i8": "little-endian int64"}


def pack_column(values: Any, code: str) -> dict[str, str]:
    """A numeric column as ``{code: base64 of its raw values}`` (see the module's docstring)."""
    dtype = BINARY_CODES[code]
    arr = np.ascontiguousarray(values, dtype=dtype) if isinstance(values, np.ndarray) else \
        np.array(values, dtype=dtype)  # from a tuple or list: 3x faster than ascontiguousarray
    return {code: base64.b64encode(arr.data).decode("ascii")}


def is_binary(value: Any) -> bool:
    """Whether a column was sent binary (an object where a list or a scalar would be)."""
    return type(value) is dict


def unpack_column(value: Any, n: int, field: str, code: str) -> np.ndarray:
    """The ``n`` values of a binary column of type ``code`` (a read-only array); BatchError
    naming the field when the column is of another type or length, or not base64. The length
    is checked before anything is decoded."""
    dtype = BINARY_CODES[code]
    what = f"{{{code!r}: base64 of {n} {_BINARY_NAMES[code]} values}}"
    text = value.get(code) if type(value) is dict and len(value) == 1 else None
    if type(text) is not str:
        raise BatchError(f"{field}: expected {what}, got {short_repr(value)}")
    size = n * dtype.itemsize
    if len(text) != 4 * -(-size // 3):
        raise BatchError(f"{field}: expected {what}, got {len(text)} characters of base64")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BatchError(f"{field}: expected {what}, got characters that are not "
                         f"base64") from None
    if len(raw) != size:
        raise BatchError(f"{field}: expected {what}, got {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dtype)


# --- the client's side: building messages -----------------------------------------------------

def batch_body(kind: str, model: str, n: int) -> dict[str, Any]:
    """The header of a batch as the client builds it; its id is given when it is sent."""
    return {"v": WIRE_VERSION, "kind": kind, "batch_id": None, "model": model, "n": n}


def timestamp_columns(stamps: Sequence[float]) -> dict[str, Any]:
    """Timestamps as a base and millisecond offsets: a few bytes per event instead of 18."""
    base = min(stamps)
    return {"timestamp_base": base,
            "timestamp_ms": [round((t - base) * 1000) for t in stamps]}


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


def minute(timestamp: float) -> int:
    """The minute a timestamp falls in, as ``time_buckets`` counts them."""
    return math.floor(timestamp / 60.0)
