"""Labeled traffic for the reference detectors: realistic inputs with ground truth.

Each module generates one detector's inputs (``nplusone``: request query logs, ``waf``: client
sessions, ``queue``: job runs), benign look-alikes included, with a ``drift`` that changes the
traffic so that the detector's accuracy really drops. Every generator is a pure function of its
``numpy.random.Generator``: the same seed gives the same traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Labeled(Generic[T]):
    """One input with its truth: ``label`` is True for the problem the detector looks for, and
    ``kind`` names what produced it (e.g. ``"lazy-loop"``, ``"lookalike:batched-in"``)."""

    input: T
    label: bool
    kind: str
