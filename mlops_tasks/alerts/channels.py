"""Where alerts go: the log (logger ``mlops.alerts``) and webhooks.

Webhook bodies follow Alertmanager's webhook format (version 4), or Slack's incoming-webhook
format with ``MLOPS_WEBHOOK_FORMAT=slack``. With ``MLOPS_WEBHOOK_SECRET`` set, each delivery
carries ``X-Mlops-Signature-256: sha256=<hex>``, the HMAC-SHA256 of the exact body with that key,
and ``X-Mlops-Timestamp``, which is also inside the body, so a receiver can reject replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

from .model import Alert

log = logging.getLogger("mlops.alerts")

SIGNATURE_HEADER = "X-Mlops-Signature-256"
TIMESTAMP_HEADER = "X-Mlops-Timestamp"
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


def signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str) -> bool:
    """What a receiver does: compare in constant time."""
    return hmac.compare_digest(signature(body, secret), header)


class DeliveryError(Exception):
    """A receiver did not take the delivery (network error or non-2xx status)."""


def post(url: str, body: bytes, secret: str | None, timeout_s: float,
         now: float | None = None) -> int:
    """POST ``body``; return the HTTP status, or raise DeliveryError."""
    headers = {"Content-Type": "application/json", "User-Agent": "mlops-tasks",
               TIMESTAMP_HEADER: str(int(now if now is not None else time.time()))}
    if secret:
        headers[SIGNATURE_HEADER] = signature(body, secret)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"{type(exc).__name__}: {reason}") from exc


def receiver_name(url: str) -> str:
    """A webhook URL without its path (which often is the token), for logs."""
    from urllib.parse import urlsplit  # noqa: PLC0415

    parts = urlsplit(url)
    host = parts.hostname or "?"
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}"
