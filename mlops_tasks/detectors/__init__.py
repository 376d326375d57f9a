"""The reference detectors: real algorithms behind the three built-in models.

    base.py      the threshold in force, the enabled flag, reporting through the client
    nplusone.py  NPlusOneDetector: N+1 query patterns in one request's SQL log
    waf.py       WafBehavioralDetector: a client's behaviour over a sliding window
    queue.py     QueueAnomalyDetector: a job run against its class's robust statistics
"""

from __future__ import annotations

from .base import Detection, ReferenceDetector

__all__ = ["Detection", "ReferenceDetector"]
