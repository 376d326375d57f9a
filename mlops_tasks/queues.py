"""Queue and task names: the contract between the thin client, the workers and beat.

The client sends tasks *by name*, so it never imports worker code. The scheduled jobs' task
names and queues are declared in their table (mlops_tasks/jobs.py), next to the rest of each job.
"""

from __future__ import annotations

EVENTS_QUEUE = "mlops.events"
MONITORING_QUEUE = "mlops.monitoring"
TUNING_QUEUE = "mlops.tuning"
ALL_QUEUES = (EVENTS_QUEUE, MONITORING_QUEUE, TUNING_QUEUE)

TASK_INGEST_PREDICTIONS = "mlops.ingest.predictions"
TASK_INGEST_LABELS = "mlops.ingest.labels"
TASK_DELIVER_WEBHOOK = "mlops.alerts.deliver"

# Tasks that are not scheduled jobs; each job is routed to the queue of its table entry.
ROUTES = {
    "mlops.ingest.*": {"queue": EVENTS_QUEUE},
    "mlops.alerts.*": {"queue": MONITORING_QUEUE},
}
