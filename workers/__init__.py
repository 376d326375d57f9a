"""Celery worker pools of mlops-tasks (installed as ``mlops_tasks.workers``)."""
