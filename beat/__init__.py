"""The periodic schedule of mlops-tasks (installed as ``mlops_tasks.beat``)."""
