"""mlops-tasks: watch ML detectors in production, alert on what is real, retune their thresholds.

Public surface for detector authors::

    from mlops_tasks.client import MonitoringClient

Everything else (settings, registry, workers) is used by the `mlops` CLI and the worker pools.
"""

__version__ = "0.1.0"
