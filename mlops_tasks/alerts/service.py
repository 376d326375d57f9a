"""The alerting service: decide with the store, send to every receiver, never wait for one.

Each notification goes to every receiver (see channels): the log at once, here, and each
configured receiver of a queued channel (Alertmanager or Slack webhooks, or a channel of your
own) as a task on the monitoring queue, retried with exponential backoff, each attempt in the
notification log. The task's message names the alert only (``{"alert_id", "status",
"receiver"}``): the worker builds and signs the body from the alert as stored, so whoever can
publish to the broker cannot make it sign a body of their own.

A condition is raised while it holds (:meth:`AlertService.raise_alert`) and cleared when it no
longer does (:meth:`AlertService.clear`); an event (an info notification) is announced once
(:meth:`AlertService.announce`) and is never firing. Both go to the same receivers through the
same silences.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..settings import Settings
from . import channels
from .delivery import send_now
from .model import Alert
from .store import AlertStore, Decision

# (receiver number, {"alert_id", "status"}) -> None: hands a queued delivery to the worker (a
# Celery task); tests may deliver directly.
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
            self._notify(decision.alert, decision.reason)
        return decision

    def announce(self, event: Alert, occurrence: str) -> Decision:
        """Record and notify an event (see ``AlertStore.record_event``)."""
        decision = self.store.record_event(event, occurrence)
        if decision.notify:
            self._notify(decision.alert, decision.reason)
        return decision

    def clear(self, model: str, version: str, kind: str) -> Decision | None:
        decision = self.store.resolve(model, version, kind)
        if decision is not None and decision.notify:
            self._notify(decision.alert, "resolved")
        return decision

    def clear_other_versions(self, model: str, version: str,
                             kinds: tuple[str, ...]) -> list[Decision]:
        """Resolve alerts of ``kinds`` raised for versions that are no longer checked (a new
        version went to production): nothing else would ever resolve them."""
        return [d for a in self.store.active([model])
                if a.kind in kinds and a.version != version
                and (d := self.clear(model, a.version, a.kind)) is not None]

    def _notify(self, alert: Alert, reason: str) -> None:
        for receiver in channels.always_on():
            send_now(self.settings, self.store, receiver, alert, reason)
        for index, receiver in enumerate(channels.configured(self.settings)):
            try:
                queued = receiver.channel.queued
            except Exception:  # noqa: BLE001 - the worker records why it cannot load
                queued = True
            if not queued:
                send_now(self.settings, self.store, receiver, alert, reason)
            elif self.dispatch is not None:
                self.dispatch(index, {"alert_id": alert.id, "status": alert.status})
