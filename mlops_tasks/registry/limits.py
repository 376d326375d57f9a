"""Size limits of registry input and records, and how error messages quote what they refuse.

Every worker re-reads the configuration in force every few seconds, so one oversized record
costs every process, not just the command that wrote it. The limits:

    MAX_RECORD_BYTES        64 KiB  the JSON of one registry record or of one field in it: a
                                    configuration, a revision, a version, a deployment, a
                                    model's display name or description, an actor, a reason
    MAX_CONFIG_FILE_BYTES    1 MiB  a ``--config`` file, read with a bound (``/dev/zero`` too)
    MAX_NESTING             32      levels of objects and lists in a file or a configuration
    MAX_QUOTED_CHARS        40      characters of a refused value an error message shows

A refused value is quoted in an error through ``quote``/``shorten``: at most
``MAX_QUOTED_CHARS`` characters, non-printable ones escaped, so an error stays one line however
hostile the input.
"""

from __future__ import annotations

import json
import reprlib
from typing import Any

from ..errors import ValidationError

MAX_RECORD_BYTES = 64 * 1024
MAX_CONFIG_FILE_BYTES = 1024 * 1024
MAX_NESTING = 32
MAX_QUOTED_CHARS = 40

_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = 4
_REPR.maxstring = _REPR.maxother = MAX_QUOTED_CHARS


def _escape(text: str, limit: int) -> tuple[str, bool]:
    """``text`` with non-printable characters escaped, cut at ``limit`` output characters;
    also whether anything was cut."""
    out: list[str] = []
    used = 0
    for ch in text:
        piece = ch if ch.isprintable() else repr(ch)[1:-1]
        if used + len(piece) > limit:
            return "".join(out), True
        out.append(piece)
        used += len(piece)
    return "".join(out), False


def shorten(text: Any, limit: int = MAX_QUOTED_CHARS) -> str:
    """Text for an error message, unquoted: escaped and cut to ``limit`` characters + '...'."""
    escaped, cut = _escape(str(text) if not isinstance(text, str) else text, limit)
    return escaped + "..." if cut else escaped


def quote(value: Any, limit: int = MAX_QUOTED_CHARS) -> str:
    """``repr(value)`` for an error message, at most about ``limit`` characters and one line,
    and cheap for a huge value (it is never rendered whole)."""
    if isinstance(value, str):
        if len(value) <= limit and value.isprintable():
            return repr(value)
        escaped, cut = _escape(value, limit)
        return "'" + escaped.replace("'", "\\'") + "'" + ("..." if cut else "")
    try:
        text = _REPR.repr(value)
    except ValueError:  # an integer too long to print
        text = f"<{type(value).__name__} too long to show>"
    escaped, cut = _escape(text, limit)
    return escaped + "..." if cut else escaped


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON, as the registry stores it."""
    return len(json.dumps(value, separators=(",", ":")).encode())


def _kib(n: int) -> str:
    return f"{n / 1024:.0f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


def check_size(field: str, value: Any) -> None:
    """Refuse ``value`` when its JSON is larger than ``MAX_RECORD_BYTES``."""
    size = json_size(value)
    if size > MAX_RECORD_BYTES:
        raise ValidationError(
            f"{field}: expected at most {_kib(MAX_RECORD_BYTES)} as JSON, got {_kib(size)}")


def encode_record(what: str, record: dict[str, Any]) -> str:
    """``record`` as the JSON the registry stores, refused (naming its largest field) when it
    is larger than ``MAX_RECORD_BYTES``."""
    text = json.dumps(record)
    if len(text.encode()) > MAX_RECORD_BYTES:
        largest = max(record, key=lambda k: json_size(record[k]))
        raise ValidationError(
            f"{largest}: the {what} would be {_kib(len(text.encode()))} as JSON, over the "
            f"{_kib(MAX_RECORD_BYTES)} limit of a registry record "
            f"({largest} is {_kib(json_size(record[largest]))})")
    return text


def nesting(value: Any) -> int:
    """Levels of objects and lists in ``value`` (a scalar is 0), counted without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > MAX_NESTING:
            return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def check_nesting(field: str, value: Any) -> None:
    if nesting(value) > MAX_NESTING:
        raise ValidationError(
            f"{field}: expected at most {MAX_NESTING} levels of nested objects and lists")
