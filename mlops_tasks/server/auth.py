"""HTTP basic authentication against ``MLOPS_SERVE_BASIC_AUTH`` (user:password pairs)."""

from __future__ import annotations

import base64
import binascii
import hmac


def parse_pairs(setting: str) -> list[tuple[bytes, bytes]]:
    """``user:password,user2:password2`` -> [(user, password), ...]; a password may hold ':'."""
    pairs = []
    for entry in setting.split(","):
        user, _, password = entry.strip().partition(":")
        pairs.append((user.encode(), password.encode()))
    return pairs


def authorized(header: str | None, pairs: list[tuple[bytes, bytes]]) -> bool:
    """Whether an ``Authorization`` header names one of ``pairs``. Every pair is compared in
    constant time, and all of them are, so the answer's timing tells nothing."""
    if not header or not header.startswith("Basic "):
        return False
    try:
        decoded = base64.b64decode(header[len("Basic "):].strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    user, sep, password = decoded.partition(b":")
    ok = False
    for want_user, want_password in pairs:
        same = hmac.compare_digest(user, want_user) & hmac.compare_digest(password, want_password)
        ok |= bool(sep) and same
    return ok
