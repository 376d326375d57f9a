"""One webhook delivery attempt, recorded in the notification log (run by a Celery task)."""

from __future__ import annotations

import logging
from typing import Any

from ..settings import Settings
from .channels import DeliveryError, post, receiver_name
from .store import AlertStore

log = logging.getLogger("mlops.alerts")


def backoff_s(base_s: float, retries: int) -> float:
    """base, 2 x base, 4 x base, ... seconds, at most 5 minutes."""
    return float(min(300.0, base_s * 2 ** retries))


def deliver(settings: Settings, store: AlertStore, delivery: dict[str, Any],
            attempt: int) -> dict[str, Any]:
    """Post once. Raise DeliveryError when it failed and another attempt is due."""
    urls = settings.webhooks
    index = int(delivery["receiver"])
    entry = {k: delivery.get(k) for k in ("alert_id", "model", "version", "kind", "severity",
                                          "status", "reason")}
    if index >= len(urls):
        store.log_notification({**entry, "channel": "webhook", "receiver": f"#{index}",
                                "result": "dropped", "error": "receiver no longer configured",
                                "attempt": attempt + 1})
        return {"result": "dropped"}
    url = urls[index]
    who = receiver_name(url)
    try:
        status = post(url, delivery["body"].encode(), settings.webhook_secret,
                      settings.webhook_timeout_s)
    except DeliveryError as exc:
        final = attempt >= settings.webhook_max_retries
        store.log_notification({**entry, "channel": "webhook", "receiver": who,
                                "result": "failed" if final else "retrying", "error": str(exc),
                                "attempt": attempt + 1})
        if final:
            log.error("webhook delivery failed", extra={"receiver": who, "error": str(exc),
                                                        "attempts": attempt + 1, **entry})
            return {"result": "failed", "error": str(exc)}
        raise
    store.log_notification({**entry, "channel": "webhook", "receiver": who, "result": "sent",
                            "http_status": status, "attempt": attempt + 1})
    return {"result": "sent", "http_status": status}
