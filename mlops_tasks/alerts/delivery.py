"""One webhook delivery attempt, recorded in the notification log (run by a Celery task).

The task's message is ``{"alert_id": str, "status": "firing" | "resolved", "receiver": int}``
and nothing else is read from it: the body is built here from the alert as stored and signed
with a timestamp of this attempt (see channels.py). A message naming no stored alert, or an
unknown receiver, is logged and recorded as dropped, and never posted.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ..settings import Settings
from .channels import DeliveryError, payload, post, receiver_name
from .store import AlertStore

log = logging.getLogger("mlops.alerts")

STATUSES = ("firing", "resolved")


def backoff_s(base_s: float, retries: int) -> float:
    """base, 2 x base, 4 x base, ... seconds, at most 5 minutes."""
    return float(min(300.0, base_s * 2 ** retries))


def delivery_message(alert_id: str, status: str, receiver: int) -> dict[str, Any]:
    """The task message of one delivery: which alert, in which state, to which receiver."""
    return {"alert_id": alert_id, "status": status, "receiver": receiver}


def deliver(settings: Settings, store: AlertStore, delivery: Any,
            attempt: int) -> dict[str, Any]:
    """Post once. Raise DeliveryError when it failed and another attempt is due."""
    message = delivery if isinstance(delivery, dict) else {}
    alert_id, status, index = (message.get(k) for k in ("alert_id", "status", "receiver"))
    entry: dict[str, Any] = {
        "alert_id": alert_id[:64] if isinstance(alert_id, str) else None,
        "status": status if status in STATUSES else None,
        "channel": "webhook", "attempt": attempt + 1}
    urls = settings.webhooks
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(urls):
        shown = f"#{index}" if isinstance(index, int) else "#?"
        return _drop(store, {**entry, "receiver": shown}, "receiver no longer configured")
    url = urls[index]
    entry["receiver"] = receiver_name(url)
    if entry["alert_id"] is None or entry["status"] is None or len(alert_id) > 64:
        return _drop(store, entry, "malformed delivery message")
    alert = store.find(alert_id, status)
    if alert is None:
        return _drop(store, entry, "no such alert" if status == "resolved" else
                     "no such firing alert (unknown, or resolved since)")
    entry.update(model=alert.model, version=alert.version, kind=alert.kind,
                 severity=alert.severity)
    now = store.clock()
    body = json.dumps(payload(alert, settings.webhook_format, entry["receiver"], now),
                      default=str).encode()
    try:
        http_status = post(url, body, settings.webhook_secret, settings.webhook_timeout_s,
                           now=now)
    except DeliveryError as exc:
        final = not exc.retryable or attempt >= settings.webhook_max_retries
        store.log_notification({**entry, "result": "failed" if final else "retrying",
                                "error": str(exc)})
        if final:
            log.error("webhook delivery failed", extra={**entry, "error": str(exc)})
            return {"result": "failed", "error": str(exc)}
        log.warning("webhook delivery attempt failed, retrying",
                    extra={**entry, "error": str(exc)})
        raise
    store.log_notification({**entry, "result": "sent", "http_status": http_status})
    return {"result": "sent", "http_status": http_status}


def _drop(store: AlertStore, entry: dict[str, Any], reason: str) -> dict[str, Any]:
    log.warning(f"webhook delivery dropped: {reason}", extra=entry)
    store.log_notification({**entry, "result": "dropped", "error": reason})
    return {"result": "dropped", "error": reason}
