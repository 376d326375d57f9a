"""mlops-tasks: watch ML detectors in production, alert on what is real, retune their thresholds.

Public surface for detector authors::

    from mlops_tasks.client import MonitoringClient   # or: from mlops_tasks import ...

Everything else (registry, workers, beat) is used by the `mlops` CLI and the worker pools. The
names below are imported on first use, so ``import mlops_tasks`` stays cheap (the CLI starts with
it): no Celery, numpy or scipy until a name that needs them is used.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not typing's: importing typing costs more than this whole module
__version__ = "0.1.0"

# name -> module that defines it
_LAZY = {
    "MonitoringClient": "mlops_tasks.client",
    "Settings": "mlops_tasks.settings",
    "MlopsError": "mlops_tasks.errors",
    "ConfigError": "mlops_tasks.errors",
    "ValidationError": "mlops_tasks.errors",
    "NotFoundError": "mlops_tasks.errors",
    "ConflictError": "mlops_tasks.errors",
    "ApprovalRequiredError": "mlops_tasks.errors",
    "RedisUnavailableError": "mlops_tasks.errors",
}

__all__ = [
    "ApprovalRequiredError",
    "ConfigError",
    "ConflictError",
    "MlopsError",
    "MonitoringClient",
    "NotFoundError",
    "RedisUnavailableError",
    "Settings",
    "ValidationError",
    "__version__",
]

if TYPE_CHECKING:
    from .client import MonitoringClient
    from .errors import (
        ApprovalRequiredError,
        ConfigError,
        ConflictError,
        MlopsError,
        NotFoundError,
        RedisUnavailableError,
        ValidationError,
    )
    from .settings import Settings


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlops_tasks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once imported, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
