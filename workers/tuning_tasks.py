"""The auto-tuning job (see its entry in mlops_tasks/jobs.py)."""

from __future__ import annotations

from typing import Any

from mlops_tasks.services import Services
from mlops_tasks.tuning.engine import run_tuning


def auto_tuning(svc: Services, summary: dict[str, Any], model: str | None = None,
                dry_run: bool = False) -> dict[str, Any]:
    result = run_tuning(svc, model, dry_run)
    summary.update(runs=len(result.runs), applied=result.applied)
    return result.to_dict()
