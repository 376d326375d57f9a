"""A model's current metrics and label health (`mlops performance-summary`, `mlops demo`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import keys

if TYPE_CHECKING:
    from ..services import Services


@dataclass(frozen=True)
class ModelSummary:
    name: str
    version: str
    windows: dict[str, dict[str, Any]]  # window name -> metrics (WindowReader.windows)
    pending_labels: int
    orphan_labels: int
    duplicate_ids: int
    dead_letters: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "windows": self.windows,
                "pending_labels": self.pending_labels, "orphan_labels": self.orphan_labels,
                "duplicate_ids": self.duplicate_ids, "dead_letters": self.dead_letters}


def model_summary(svc: Services, name: str) -> ModelSummary:
    """Production's version of ``name``, else its latest."""
    version = svc.registry.default_version(name)
    reader = svc.windows
    counters = reader.counters(name)
    return ModelSummary(name=name, version=version, windows=reader.windows(name, version),
                        pending_labels=reader.pending(name),
                        orphan_labels=counters.get(keys.F_ORPHAN_LABELS, 0),
                        duplicate_ids=counters.get(keys.F_DUPLICATE_IDS, 0),
                        dead_letters=counters.get(keys.F_DEAD_LETTERS, 0))


def performance_summary(svc: Services, names: list[str] | None = None) -> tuple[ModelSummary, ...]:
    """Every registered model (or ``names``), in the registry's order."""
    return tuple(model_summary(svc, n)
                 for n in (svc.registry.model_names() if names is None else names))
