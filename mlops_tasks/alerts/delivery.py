"""Delivering an alert to one receiver, recorded in the notification log, for every channel.

:func:`deliver` is one attempt of a queued delivery (the worker's task ``deliver_webhook``
calls it). The task's message is ``{"alert_id": str, "status": "firing" | "resolved" | "event",
"receiver": int}`` and nothing else is read from it: the receiver is looked up by its number
in the settings (channels.configured), the body is built from the alert as stored, by the
receiver's channel, at this attempt. A message naming no stored alert, or an unknown receiver,
is logged and recorded as dropped, and never sent. :func:`send_now` is the same for a channel
that is not queued (the log), in the job that raised the alert.
"""

from __future__ import annotations

import logging
from typing import Any

from ..settings import Settings
from .channels import Channel, DeliveryError, Receiver, configured
from .model import FIRING, STATUSES, Alert
from .store import AlertStore

log = logging.getLogger("mlops.alerts")

# what the notification log and the log lines call a delivery whose receiver is unknown: the
# queued path began with webhooks, and the task keeps its name
QUEUED = "webhook"


def backoff_s(base_s: float, retries: int) -> float:
    """base, 2 x base, 4 x base, ... seconds, at most 5 minutes."""
    return float(min(300.0, base_s * 2 ** retries))


def delivery_message(alert_id: str, status: str, receiver: int) -> dict[str, Any]:
    """The task message of one delivery: which alert, in which state, to which receiver."""
    return {"alert_id": alert_id, "status": status, "receiver": receiver}


def deliver(settings: Settings, store: AlertStore, delivery: Any,
            attempt: int) -> dict[str, Any]:
    """Send once. Raise DeliveryError when it failed and another attempt is due."""
    message = delivery if isinstance(delivery, dict) else {}
    alert_id, status, index = (message.get(k) for k in ("alert_id", "status", "receiver"))
    entry: dict[str, Any] = {
        "alert_id": alert_id[:64] if isinstance(alert_id, str) else None,
        "status": status if status in STATUSES else None,
        "channel": QUEUED, "attempt": attempt + 1}
    receivers = configured(settings)
    if not isinstance(index, int) or isinstance(index, bool) or \
            not 0 <= index < len(receivers):
        shown = f"#{index}" if isinstance(index, int) else "#?"
        return _drop(store, {**entry, "receiver": shown}, "receiver no longer configured")
    receiver = receivers[index]
    entry["receiver"] = receiver.name
    try:
        channel = receiver.channel
    except Exception as exc:  # noqa: BLE001 - a channel that cannot load is a final failure
        return _fail(store, entry, _final(exc, receiver))
    entry["channel"] = channel.name
    if not isinstance(alert_id, str) or len(alert_id) > 64 or \
            not isinstance(status, str) or status not in STATUSES:
        return _drop(store, entry, "malformed delivery message")
    alert = store.find(alert_id, status)
    if alert is None:
        return _drop(store, entry, "no such alert" if status != FIRING else
                     "no such firing alert (unknown, or resolved since)")
    entry.update(model=alert.model, version=alert.version, kind=alert.kind,
                 severity=alert.severity)
    return _attempt(settings, store, receiver, channel, alert, entry, attempt)


def _attempt(settings: Settings, store: AlertStore, receiver: Receiver, channel: Channel,
             alert: Alert, entry: dict[str, Any], attempt: int) -> dict[str, Any]:
    """Send a delivery that :func:`deliver` resolved; raise DeliveryError to be retried."""
    try:
        sent = channel.send(alert, receiver.target, settings, store.clock())
    except DeliveryError as exc:
        if not exc.retryable or attempt >= settings.webhook_max_retries:
            return _fail(store, entry, exc)
        store.log_notification({**entry, "result": "retrying", "error": str(exc),
                                **_status(exc)})
        log.warning("%s delivery attempt failed, retrying", entry["channel"],
                    extra={**entry, "error": str(exc)})
        raise
    except Exception as exc:  # noqa: BLE001 - a channel's bug fails this delivery, not the worker
        return _fail(store, entry, _final(exc, receiver))
    return _sent(store, entry, sent)


def send_now(settings: Settings, store: AlertStore, receiver: Receiver, alert: Alert,
             reason: str) -> dict[str, Any]:
    """Send ``alert`` to a receiver whose channel is not queued, in this process, once."""
    entry: dict[str, Any] = {
        "alert_id": alert.id, "model": alert.model, "version": alert.version,
        "kind": alert.kind, "severity": alert.severity, "status": alert.status,
        "channel": receiver.channel_name, "receiver": receiver.name}
    try:
        channel = receiver.channel
        entry["channel"] = channel.name
        sent = channel.send(alert, receiver.target, settings, store.clock())
    except DeliveryError as exc:
        return _fail(store, {**entry, "reason": reason}, exc)
    except Exception as exc:  # noqa: BLE001 - one receiver's failure never stops monitoring
        return _fail(store, {**entry, "reason": reason}, _final(exc, receiver))
    return _sent(store, {**entry, "result": "sent", "reason": reason}, sent)


def _final(exc: Exception, receiver: Receiver) -> DeliveryError:
    """An exception that is not a DeliveryError, as one: named by its type only (its message
    may quote the target, which may be a secret), never retried."""
    return DeliveryError(f"{type(exc).__name__} in alert channel {receiver.channel_name}",
                         retryable=False)


def _sent(store: AlertStore, entry: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    store.log_notification({**entry, "result": "sent", **sent})
    return {"result": "sent", **sent}


def _status(exc: DeliveryError) -> dict[str, Any]:
    """The receiver's HTTP answer, when there was one, as the notification log records it."""
    return {} if exc.http_status is None else {"http_status": exc.http_status}


def _fail(store: AlertStore, entry: dict[str, Any], exc: DeliveryError) -> dict[str, Any]:
    """No more attempts. The notification log's ``final`` is true when the failure itself
    was final (a 4xx answer, a redirect, an unusable URL), false when retries ran out."""
    failed = {"result": "failed", "error": str(exc), **_status(exc)}
    logged = {**entry, **failed, "final": not exc.retryable}
    store.log_notification(logged)
    log.error("%s delivery failed", entry["channel"], extra=logged)
    return failed


def _drop(store: AlertStore, entry: dict[str, Any], reason: str) -> dict[str, Any]:
    log.warning("%s delivery dropped: %s", entry["channel"], reason, extra=entry)
    store.log_notification({**entry, "result": "dropped", "error": reason})
    return {"result": "dropped", "error": reason}
