"""Data sufficiency: labeled counts per window against what tuning, monitoring and a
significance test need (`mlops data-sufficiency`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..durations import format_duration
from .common import resolve_version

if TYPE_CHECKING:
    from ..services import Services


@dataclass(frozen=True)
class Requirements:
    tuning_min_samples: int  # MLOPS_TUNING_MIN_SAMPLES
    detect_5pct_drop_samples: int | None  # per window, one-sided z-test, p<0.05, power 0.8
    reference_accuracy: float  # the version's accuracy so far, else its alert threshold
    monitoring_min_samples: int  # MLOPS_MONITORING_MIN_SAMPLES

    def to_dict(self) -> dict[str, Any]:
        return {"tuning_min_samples": self.tuning_min_samples,
                "detect_5pct_drop_samples": self.detect_5pct_drop_samples,
                "reference_accuracy": self.reference_accuracy,
                "monitoring_min_samples": self.monitoring_min_samples}


@dataclass(frozen=True)
class WindowSufficiency:
    window: str
    labeled: int
    enough_for_tuning: bool
    enough_to_detect_5pct_drop: bool | None  # None when no sample size can detect it
    enough_for_monitoring: bool

    def to_dict(self) -> dict[str, Any]:
        return {"window": self.window, "labeled": self.labeled,
                "enough_for_tuning": self.enough_for_tuning,
                "enough_to_detect_5pct_drop": self.enough_to_detect_5pct_drop,
                "enough_for_monitoring": self.enough_for_monitoring}


@dataclass(frozen=True)
class DataSufficiency:
    name: str
    version: str
    requirements: Requirements
    windows: tuple[WindowSufficiency, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version,
                "requirements": self.requirements.to_dict(),
                "windows": [w.to_dict() for w in self.windows]}


def judge(counts: Mapping[str, int], req: Requirements) -> tuple[WindowSufficiency, ...]:
    """Each window's labeled count against the requirements (pure)."""
    needed = req.detect_5pct_drop_samples
    return tuple(WindowSufficiency(window=w, labeled=c,
                                   enough_for_tuning=c >= req.tuning_min_samples,
                                   enough_to_detect_5pct_drop=None if needed is None
                                   else c >= needed,
                                   enough_for_monitoring=c >= req.monitoring_min_samples)
                 for w, c in counts.items())


def data_sufficiency(svc: Services, name: str, version: str | None = None) -> DataSufficiency:
    """Labeled predictions in the last 100 and 1000 outcomes, the tuning window and since
    deployment, against the settings' minimums and the sample size a 5 % drop needs."""
    from ..metrics import samples_to_detect_drop  # noqa: PLC0415 - numpy, scipy
    from ..windows import counter_metrics  # noqa: PLC0415 - numpy

    version = resolve_version(svc.registry, name, version)
    reader, s = svc.windows, svc.settings
    config = svc.registry.current(name, version)["config"]
    tuning_window = int(config["tuning"]["window_s"])
    total = counter_metrics(reader.totals(name, version))
    reference = total["accuracy"] if total["accuracy"] is not None else config["accuracy_threshold"]
    req = Requirements(tuning_min_samples=s.tuning_min_samples,
                       detect_5pct_drop_samples=samples_to_detect_drop(reference),
                       reference_accuracy=reference,
                       monitoring_min_samples=s.monitoring_min_samples)
    counts = {
        "last_100": reader.count_window(name, version, 100)["count"],
        "last_1000": reader.count_window(name, version, 1000)["count"],
        f"tuning_window_{format_duration(tuning_window)}": int(reader.time_window(
            name, version, tuning_window, with_hist=False).counts.get("labeled", 0)),
        "since_deployment": total["count"],
    }
    return DataSufficiency(name=name, version=version, requirements=req,
                           windows=judge(counts, req))
