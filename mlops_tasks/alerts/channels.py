"""Where alerts go: the log (logger ``mlops.alerts``) and webhooks.

Webhook bodies follow Alertmanager's webhook format (version 4), or Slack's incoming-webhook
format with ``MLOPS_WEBHOOK_FORMAT=slack``. With ``MLOPS_WEBHOOK_SECRET`` set, each delivery
attempt carries ``X-Mlops-Timestamp: <unix seconds>`` and ``X-Mlops-Signature-256: sha256=<hex>``,
the HMAC-SHA256 with that key of ``f"{timestamp}.".encode() + body`` (the exact bytes received).
A receiver recomputes it, compares in constant time and rejects a timestamp more than a few
minutes away from its clock (:func:`verify`), so a captured delivery cannot be replayed later
and neither header can be changed alone. Every retry signs again with a fresh timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ..settings import url_origin
from .model import Alert

log = logging.getLogger("mlops.alerts")

SIGNATURE_HEADER = "X-Mlops-Signature-256"
TIMESTAMP_HEADER = "X-Mlops-Timestamp"
DEFAULT_TOLERANCE_S = 300.0  # how far a receiver lets a timestamp be from its own clock
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}


def log_alert(alert: Alert, resolved: bool = False) -> None:
    if resolved:
        log.info(f"{alert.message} (resolved)", extra={
            "alert_id": alert.id, "model": alert.model, "version": alert.version,
            "kind": alert.kind, "status": "resolved"})
        return
    log.log(_LEVELS.get(alert.severity, logging.WARNING), alert.message, extra={
        "alert_id": alert.id, "model": alert.model, "version": alert.version,
        "kind": alert.kind, "severity": alert.severity, "values": alert.values})


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def alertmanager_payload(alert: Alert, receiver: str, now: float) -> dict[str, Any]:
    status = alert.status
    labels = {"alertname": alert.kind, "model": alert.model, "version": alert.version,
              "severity": alert.severity}
    return {
        "version": "4",
        "groupKey": f"{{}}:{{model=\"{alert.model}\",alertname=\"{alert.kind}\"}}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": {"model": alert.model, "alertname": alert.kind},
        "commonLabels": labels,
        "commonAnnotations": {"summary": alert.message},
        "externalURL": "",
        "sentAt": _iso(now),
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": {"summary": alert.message,
                            "description": json.dumps(alert.values, sort_keys=True,
                                                      default=str)},
            "startsAt": alert.fired_at,
            "endsAt": alert.resolved_at or "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": alert.fingerprint,
            "values": alert.values,
        }],
    }


def slack_payload(alert: Alert, now: float) -> dict[str, Any]:
    icon = {"critical": ":rotating_light:", "warning": ":warning:"}.get(alert.severity,
                                                                        ":information_source:")
    if alert.status == "resolved":
        icon = ":white_check_mark:"
    title = f"{icon} [{alert.status.upper()}] {alert.message}"
    fields = [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in sorted(alert.values.items())
              if not isinstance(v, (dict, list))][:10]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn",
                                                                  "text": title}}]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    return {"text": title, "blocks": blocks, "sent_at": _iso(now)}


def payload(alert: Alert, fmt: str, receiver: str, now: float) -> dict[str, Any]:
    return slack_payload(alert, now) if fmt == "slack" else \
        alertmanager_payload(alert, receiver, now)


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


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a failed delivery (HTTP 3xx): the signed request never goes elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


class DeliveryError(Exception):
    """A receiver did not take the delivery. ``retryable`` is False when another attempt cannot
    help (the URL cannot be parsed). The message never holds the URL's path, query or
    credentials."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def signed_headers(body: bytes, secret: str | None, now: float) -> dict[str, str]:
    timestamp = int(now)
    headers = {"Content-Type": "application/json", "User-Agent": "mlops-tasks",
               TIMESTAMP_HEADER: str(timestamp)}
    if secret:
        headers[SIGNATURE_HEADER] = signature(body, secret, timestamp)
    return headers


def post(url: str, body: bytes, secret: str | None, timeout_s: float,
         now: float | None = None) -> int:
    """POST ``body``, signed at ``now`` (default: the clock); return the HTTP status, or raise
    DeliveryError for any failure, with a message safe to log."""
    _check_url(url)
    headers = signed_headers(body, secret, time.time() if now is None else now)
    try:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        with _OPENER.open(request, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        # a text reason is urllib's own verdict on the URL (unknown scheme, no host): final
        retry = isinstance(exc.reason, OSError)
        raise DeliveryError(_scrub(f"URLError: {exc.reason}", url), retryable=retry) from None
    except (ValueError, http.client.InvalidURL):  # their messages quote pieces of the URL
        raise DeliveryError(_UNPARSABLE, retryable=False) from None
    except Exception as exc:  # every failure of an attempt is a recorded failure
        raise DeliveryError(_scrub(f"{type(exc).__name__}: {exc}", url)) from None


_UNPARSABLE = "invalid URL: it cannot be parsed (check the port; percent-encode special characters)"


def _check_url(url: str) -> None:
    """Raise a final DeliveryError for a URL that no attempt can use; its message never quotes
    the URL."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - ValueError on a port that is not a number
    except ValueError:
        raise DeliveryError(_UNPARSABLE, retryable=False) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError("invalid URL: expected http(s)://host/path", retryable=False)
    if "@" in parts.netloc:  # urllib would look the whole userinfo up as a host name (DNS)
        raise DeliveryError("invalid URL: credentials in a webhook URL are not supported (put "
                            "the token in the path)", retryable=False)


def _scrub(message: str, url: str) -> str:
    """``message`` without the URL or any piece of it that may be secret (a path segment, the
    query, the userinfo), on one line."""
    pieces = {url}
    scheme_less = url.partition("://")[2]
    userinfo, at, rest = scheme_less.rpartition("@")
    if at:
        pieces.add(userinfo)
    else:
        rest = scheme_less
    cut = min([i for i in (rest.find(c) for c in "/?#") if i >= 0] or [len(rest)])
    tail = rest[cut:]
    pieces.add(tail)
    pieces.update(p for p in re.split(r"[/?#&=;]", tail) if len(p) >= 3)
    for piece in sorted((p for p in pieces if p), key=len, reverse=True):
        message = message.replace(piece, "***")
    return " ".join(message.split())


def receiver_name(url: str) -> str:
    """A webhook URL without its credentials, path (which often is the token) and query, for
    logs and the notification log: ``https://hooks.example.com:8443``. Never raises."""
    return url_origin(url)
