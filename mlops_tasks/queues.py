"""Queue and task names: the contract between the thin client, the workers and beat.

The client sends tasks *by name*, so it never imports worker code.
"""

from __future__ import annotations

EVENTS_QUEUE = "mlops.events"
MONITORING_QUEUE = "mlops.monitoring"
TUNING_QUEUE = "mlops.tuning"
ALL_QUEUES = (EVENTS_QUEUE, MONITORING_QUEUE, TUNING_QUEUE)

TASK_INGEST_PREDICTIONS = "mlops.ingest.predictions"
TASK_INGEST_LABELS = "mlops.ingest.labels"

ROUTES = {
    "mlops.ingest.*": {"queue": EVENTS_QUEUE},
    "mlops.monitoring.*": {"queue": MONITORING_QUEUE},
    "mlops.alerts.*": {"queue": MONITORING_QUEUE},
    "mlops.tuning.*": {"queue": TUNING_QUEUE},
}

TASK_MONITORING = "mlops.monitoring.performance"
TASK_DEGRADATION = "mlops.monitoring.degradation"
TASK_DELIVER_WEBHOOK = "mlops.alerts.deliver"
TASK_TUNING = "mlops.tuning.run"
TASK_CLEANUP = "mlops.maintenance.cleanup"
