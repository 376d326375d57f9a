"""The base of the typed results the jobs and the registry return.

A result is a frozen dataclass whose ``to_dict()`` is its documented JSON: the one path by which
the CLI prints it, a Celery task returns it and Redis stores it. The results of the monitoring,
degradation and tuning runs, the cleanup report and the registry's audit entries derive from
:class:`Result`; ``health`` and ``reports`` follow the same pattern with ``to_dict()`` alone.

Reading a result by key reads that JSON, ``run["models"]`` is ``run.to_dict()["models"]``, so
callers written when these results were dicts keep working; new code uses the attributes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class Result(ABC):
    """A frozen dataclass with one JSON form."""

    __slots__ = ()

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The documented JSON, as the CLI prints it and Celery returns it."""

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()

    # not a mapping: iterating a result is a TypeError, not a walk through __getitem__(0, 1, ...)
    __iter__ = None


def with_optional(doc: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """``doc`` plus those of ``fields`` that are not None, in the order given: the keys only some
    results carry (a reason, an alert, when it was checked) are left out, not written as null."""
    doc.update((k, v) for k, v in fields.items() if v is not None)
    return doc


def pair(values: tuple[float, float] | None) -> list[float] | None:
    """An interval as JSON writes it: a two-element list, or None."""
    return None if values is None else list(values)
