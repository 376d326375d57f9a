"""The log channel: one line per notification on logger ``mlops.alerts``, always on.

The line is the alert's message at the level of its severity (info, warning, critical), e.g.
``N+1 Detector Performance Warning: Accuracy dropped to 78.50%`` or ``WAF Behavioral Performance
Degraded (degradation_percent: 5.9%)``, and ``<message> (resolved)`` at info when it resolves:
runbooks grep these texts, so they do not change. The other conditions read
``Scheduler Job Failing: ml-auto-tuning failed 4 times in a row`` (critical), ``Registry Cache
Miss Rate High: ...`` and ``N+1 Detector Auto-Tuning Stagnating: ...`` (warning); events (info)
read ``N+1 Detector auto-tuning applied: ...``, ``N+1 Detector Configuration Updated by alice:
...`` and ``Registry Cleanup Completed: ...``. Written at once by the job that raised the alert,
in the monitoring log too.
"""

from __future__ import annotations

import logging
from typing import Any

from ...settings import Settings
from ..model import Alert

LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}


class LogChannel:
    name = "log"
    queued = False

    def receiver_name(self, target: str) -> str:
        return target  # the logger's name

    def send(self, alert: Alert, target: str,
             settings: Settings, now: float) -> dict[str, Any]:  # noqa: ARG002 - Channel.send
        logger = logging.getLogger(target)
        if alert.status == "resolved":
            logger.info("%s (resolved)", alert.message, extra={
                "alert_id": alert.id, "model": alert.model, "version": alert.version,
                "kind": alert.kind, "status": "resolved"})
        else:
            logger.log(LEVELS.get(alert.severity, logging.WARNING), alert.message, extra={
                "alert_id": alert.id, "model": alert.model, "version": alert.version,
                "kind": alert.kind, "severity": alert.severity, "status": alert.status,
                "values": alert.values})
        return {}


CHANNEL = LogChannel()
