"""The thin client detectors embed (see ``facade.py``)::

    from mlops_tasks.client import MonitoringClient

Modules: ``facade`` (MonitoringClient: validates each call, appends to the buffer), ``buffer``
(the bounded buffer, the sender thread, messages within the worker's limits, fork safety),
``producer`` (batch ids, journal, Celery), ``config_cache`` (the configuration in force),
``endpoints`` (where to send, found without starting Redis), ``redact`` (metadata fields
replaced by keyed hashes before they leave the detector). Every event field is checked by
the wire format's rules (``mlops_tasks/wire.py``), the same the workers apply.
"""

from ..errors import ValidationError
from .facade import MonitoringClient

__all__ = ["MonitoringClient", "ValidationError"]
