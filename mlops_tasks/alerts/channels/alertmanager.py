"""The alertmanager channel: a webhook in Alertmanager's webhook format (version 4).

The default format of ``MLOPS_WEBHOOK_URLS``; also ``MLOPS_ALERT_CHANNELS=alertmanager=<url>``.

Alertmanager knows only ``firing`` and ``resolved``: an event (an info notification) is sent
as ``firing`` with ``endsAt`` at its own time, i.e. an alert that has already ended, so a
receiver shows it once and never waits for it to resolve.
"""

from __future__ import annotations

import json
from typing import Any

from ...timefmt import iso
from ..model import EVENT, FIRING, Alert
from .webhook import WebhookChannel


def payload(alert: Alert, receiver: str, now: float) -> dict[str, Any]:
    status = FIRING if alert.status == EVENT else alert.status
    labels = {"alertname": alert.kind, "model": alert.model, "version": alert.version,
              "severity": alert.severity}
    return {
        "version": "4",
        "groupKey": f'{{}}:{{model="{alert.model}",alertname="{alert.kind}"}}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": {"model": alert.model, "alertname": alert.kind},
        "commonLabels": labels,
        "commonAnnotations": {"summary": alert.message},
        "externalURL": "",
        "sentAt": iso(now),
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


class AlertmanagerChannel(WebhookChannel):
    def payload(self, alert: Alert, receiver: str, now: float) -> dict[str, Any]:
        return payload(alert, receiver, now)


CHANNEL = AlertmanagerChannel()
