"""The daily cleanup job (see its entry in mlops_tasks/jobs.py)."""

from __future__ import annotations

from typing import Any

from mlops_tasks.maintenance.cleanup import cleanup
from mlops_tasks.services import Services
from mlops_tasks.timebuckets import DAY_S


def registry_cleanup(svc: Services, summary: dict[str, Any], model: str | None = None,
                     older_than_s: float | None = None, dry_run: bool = False) -> dict[str, Any]:
    report = cleanup(svc, older_than_s or svc.settings.retention_days * DAY_S, dry_run,
                     model=model)
    summary.update(report.deleted)
    return report.to_dict()
