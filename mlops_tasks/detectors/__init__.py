"""The reference detectors: real algorithms behind the three built-in models.

    base.py      the threshold in force, the enabled flag, reporting through the client
    nplusone.py  NPlusOneDetector: N+1 query patterns in one request's SQL log
    sqllog.py    SQL statements to templates, and the query-log shapes n1-detector reads
    waf.py       WafBehavioralDetector: a client's behaviour over a sliding window
    queue.py     QueueAnomalyDetector: a job run against its class's robust statistics

Importing this package loads nothing heavy; each detector is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Detection, ReferenceDetector

if TYPE_CHECKING:
    from .nplusone import NPlusOneDetector
    from .queue import QueueAnomalyDetector
    from .waf import WafBehavioralDetector

_LAZY = {"NPlusOneDetector": ".nplusone", "WafBehavioralDetector": ".waf",
         "QueueAnomalyDetector": ".queue"}

__all__ = ["Detection", "NPlusOneDetector", "QueueAnomalyDetector", "ReferenceDetector",
           "WafBehavioralDetector"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib  # noqa: PLC0415 - on first use

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
