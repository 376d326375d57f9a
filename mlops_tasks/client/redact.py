"""Redacting metadata fields at the client, before an event leaves the detector.

``MLOPS_REDACT_FIELDS`` names metadata fields, separated by commas: ``email`` is the top-level
field ``email``; a dotted path such as ``request.client_ip`` reaches into nested objects (a key
that itself holds a dot cannot be named; lists are not searched). The value of each field found
(whatever its type, a whole object too) becomes ``hmac-sha256:<hex>``: HMAC-SHA256 under
``MLOPS_PSEUDONYM_KEY`` of the value's canonical JSON. Equal values give equal pseudonyms, so
counting and grouping still work, but the raw value never reaches the buffer, the journal, the
broker or a dead letter. Without ``MLOPS_PSEUDONYM_KEY`` the key is random, drawn once per
process: pseudonyms are then stable within that process only. The caller's dict is never
changed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from functools import lru_cache
from typing import Any

from ..settings import Settings

PREFIX = "hmac-sha256:"


@lru_cache(maxsize=1)
def _process_key() -> bytes:
    return secrets.token_bytes(32)


def pseudonym(value: Any, key: bytes) -> str:
    """``hmac-sha256:<hex>`` of ``value``'s canonical JSON (sorted keys, compact) under ``key``."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return PREFIX + hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


class Redactor:
    """Replaces the configured fields of one event's metadata by their pseudonyms."""

    def __init__(self, fields: list[str], key: bytes) -> None:
        self.paths = [tuple(f.split(".")) for f in fields]
        self.key = key

    @classmethod
    def from_settings(cls, settings: Settings) -> Redactor | None:
        """The redactor ``MLOPS_REDACT_FIELDS`` asks for, or None when it names no field."""
        if not settings.redact_fields:
            return None
        key = settings.pseudonym_key.encode() if settings.pseudonym_key else _process_key()
        return cls(settings.redact_fields.split(","), key)

    def __call__(self, metadata: dict[str, Any]) -> dict[str, Any]:
        out = metadata
        for path in self.paths:
            out = self._redact(out, path)
        return out

    def _redact(self, obj: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        """``obj`` with the field at ``path`` replaced (copied along the path), or ``obj``
        itself when there is no such field."""
        head, rest = path[0], path[1:]
        if head not in obj:
            return obj
        value = obj[head]
        if rest:
            if not isinstance(value, dict):
                return obj
            replaced: Any = self._redact(value, rest)
            if replaced is value:
                return obj
        else:
            replaced = pseudonym(value, self.key)
        return {**obj, head: replaced}
