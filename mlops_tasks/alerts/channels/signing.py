"""Signed webhook deliveries, both sides: the headers a delivery carries and how a receiver checks
them.

With ``MLOPS_WEBHOOK_SECRET`` set, each delivery attempt carries ``X-Mlops-Timestamp: <unix
seconds>`` and ``X-Mlops-Signature-256: sha256=<hex>``, the HMAC-SHA256 with that key of
``f"{timestamp}.".encode() + body`` (the exact bytes received). A receiver recomputes it, compares
in constant time and rejects a timestamp more than a few minutes away from its clock
(:func:`verify`), so a captured delivery cannot be replayed later and neither header can be
changed alone. Every retry signs again with a fresh timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

SIGNATURE_HEADER = "X-Mlops-Signature-256"
TIMESTAMP_HEADER = "X-Mlops-Timestamp"
DEFAULT_TOLERANCE_S = 300.0  # how far a receiver lets a timestamp be from its own clock


def signature(body: bytes, secret: str, timestamp: int) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``f"{timestamp}.".encode() + body`` with ``secret``."""
    signed = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, signature_header: str | None,
           timestamp_header: str | None, tolerance_s: float = DEFAULT_TOLERANCE_S,
           now: float | None = None) -> bool:
    """What a receiver does with the two headers and the raw body: True only if the timestamp is
    an integer within ``tolerance_s`` of ``now`` (default: the clock) and the signature over
    timestamp and body matches, compared in constant time."""
    if not signature_header or not timestamp_header or \
            not re.fullmatch(r"[0-9]{1,15}", timestamp_header):
        return False
    timestamp = int(timestamp_header)
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(signature(body, secret, timestamp).encode(),
                               signature_header.encode())


def signed_headers(body: bytes, secret: str | None, now: float) -> dict[str, str]:
    """The headers of one JSON delivery attempt at ``now``; signed when there is a secret."""
    timestamp = int(now)
    headers = {"Content-Type": "application/json", "User-Agent": "mlops-tasks",
               TIMESTAMP_HEADER: str(timestamp)}
    if secret:
        headers[SIGNATURE_HEADER] = signature(body, secret, timestamp)
    return headers
