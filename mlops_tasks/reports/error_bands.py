"""Error analysis: false positives and false negatives by score band (`mlops analyze-errors`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from .common import resolve_version

if TYPE_CHECKING:
    import numpy as np

    from ..services import Services


@dataclass(frozen=True)
class ErrorBand:
    low: float
    high: float
    labeled: int
    false_positives: int
    false_negatives: int
    error_rate: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"band": [self.low, self.high], "labeled": self.labeled,
                "false_positives": self.false_positives,
                "false_negatives": self.false_negatives, "error_rate": self.error_rate}


@dataclass(frozen=True)
class ErrorAnalysis:
    name: str
    version: str
    window_s: float
    bands: tuple[ErrorBand, ...]
    total: dict[str, Any]  # confusion_metrics of the whole window

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "window_s": self.window_s,
                "bands": [b.to_dict() for b in self.bands], "total": self.total}


def error_bands(rows: Mapping[str, np.ndarray], bands: int) -> tuple[ErrorBand, ...]:
    """Split the score histograms (rows tn, fp, fn, tp over the score bins) into ``bands``
    equal score bands (pure)."""
    import numpy as np  # noqa: PLC0415 - keeps the CLI's start fast

    from ..binning import SCORE_RESOLUTION  # noqa: PLC0415 - numpy
    from ..metrics import confusion_metrics  # noqa: PLC0415 - numpy

    edges = np.linspace(0, SCORE_RESOLUTION + 1, bands + 1).round().astype(int)
    out = []
    for lo, hi in pairwise(edges):
        tn, fp, fn, tp = (int(rows[k][lo:hi].sum()) for k in ("tn", "fp", "fn", "tp"))
        m = confusion_metrics(tp, fp, tn, fn)
        out.append(ErrorBand(low=float(lo / SCORE_RESOLUTION),
                             high=float(min(hi / SCORE_RESOLUTION, 1.0)), labeled=m["count"],
                             false_positives=fp, false_negatives=fn,
                             error_rate=None if m["accuracy"] is None else 1 - m["accuracy"]))
    return tuple(out)


def analyze_errors(svc: Services, name: str, version: str | None, window_s: float,
                   bands: int) -> ErrorAnalysis:
    """Error bands of the labeled outcomes in the last ``window_s`` seconds."""
    from ..metrics import confusion_metrics  # noqa: PLC0415 - numpy

    version = resolve_version(svc.registry, name, version)
    rows = svc.windows.time_window(name, version, window_s).rows()
    total = confusion_metrics(*(int(rows[k].sum()) for k in ("tp", "fp", "tn", "fn")))
    return ErrorAnalysis(name=name, version=version, window_s=window_s,
                         bands=error_bands(rows, bands), total=total)
