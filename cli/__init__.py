"""The ``mlops`` command line (installed as ``mlops_tasks.cli``)."""
