"""Bounded probes: every health probe answers within its timeout or is reported as timed out.

A probe runs in a daemon thread and is waited for at most ``timeout_s``. A probe that hangs (a
Redis that stopped answering, a broker connection Celery keeps retrying) is abandoned: its thread
ends when the client's own socket timeout fires, and never keeps the process from exiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from ..errors import ProbeTimeoutError

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 5.0


def bounded(fn: Callable[[], T], timeout_s: float, what: str) -> T:
    """``fn()``, or ProbeTimeoutError naming ``what`` when it takes longer than ``timeout_s``.
    An exception raised by ``fn`` is raised here."""
    value: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            value.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            error.append(exc)

    thread = threading.Thread(target=run, name=f"mlops-probe-{what}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise ProbeTimeoutError(f"{what} did not answer within {timeout_s:g}s")
    if error:
        raise error[0]
    return value[0]
