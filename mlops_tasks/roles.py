"""The roles a process plays towards Redis; each has its own ACL user (mlops_tasks/acl.py)."""

DETECTOR, WORKER, OPERATOR = "detector", "worker", "operator"
ROLES = (DETECTOR, WORKER, OPERATOR)
