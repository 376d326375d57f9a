"""The alerting service: decide with the store, log at once, hand webhooks to Celery.

Monitoring never waits for a receiver: a webhook delivery is a task on the monitoring queue,
retried with exponential backoff, and each attempt lands in the notification log. The task's
message names the alert only (``{"alert_id", "status", "receiver"}``): the worker builds and
signs the body from the alert as stored, so whoever can publish to the broker cannot make it
sign a body of their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..settings import Settings
from .channels import log_alert
from .model import Alert
from .store import AlertStore, Decision

# (receiver index, {"alert_id", "status"}) -> None; the worker sends a Celery task, tests may
# deliver directly.
Dispatch = Callable[[int, dict[str, Any]], None]


class AlertService:
    def __init__(self, store: AlertStore, settings: Settings, dispatch: Dispatch | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings
        self.dispatch = dispatch
        self.clock = clock

    def raise_alert(self, candidate: Alert) -> Decision:
        decision = self.store.fire(candidate)
        if decision.notify:
            self._notify(decision.alert, resolved=False, reason=decision.reason)
        return decision

    def clear(self, model: str, version: str, kind: str) -> Decision | None:
        decision = self.store.resolve(model, version, kind)
        if decision is not None and decision.notify:
            self._notify(decision.alert, resolved=True, reason="resolved")
        return decision

    def clear_other_versions(self, model: str, version: str,
                             kinds: tuple[str, ...]) -> list[Decision]:
        """Resolve alerts of ``kinds`` raised for versions that are no longer checked (a new
        version went to production): nothing else would ever resolve them."""
        return [d for a in self.store.active([model])
                if a.kind in kinds and a.version != version
                and (d := self.clear(model, a.version, a.kind)) is not None]

    def _notify(self, alert: Alert, resolved: bool, reason: str) -> None:
        log_alert(alert, resolved)
        self.store.log_notification({"alert_id": alert.id, "model": alert.model,
                                     "version": alert.version, "kind": alert.kind,
                                     "severity": alert.severity, "status": alert.status,
                                     "channel": "log", "receiver": "mlops.alerts",
                                     "result": "sent", "reason": reason})
        if self.dispatch is None:
            return
        for index in range(len(self.settings.webhooks)):
            self.dispatch(index, {"alert_id": alert.id, "status": alert.status})
