"""What the three reference detectors share: the threshold in force, the enabled flag, and
reporting each prediction through the thin client.

Offline (no client) a detector decides with the threshold it was given, else the catalogue's
default for the settings (``NPLUSONE_ML_CONFIDENCE_THRESHOLD``, ``MLOPS_WAF_ANOMALY_THRESHOLD``,
``JOB_ANOMALY_THRESHOLD``). Online it reads the registry's configuration through the client's
cache, so an auto-tuned threshold changes its decisions within ``MLOPS_CLIENT_CONFIG_TTL_S``;
when the registry cannot be read it keeps deciding with the last threshold it knew.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import MlopsError
from ..registry.catalogue import builtin_models
from ..settings import Settings

if TYPE_CHECKING:
    from ..client import MonitoringClient


@dataclass(frozen=True)
class Detection:
    """One decision: the score, whether it crosses the threshold in force, that threshold,
    and the id the prediction was reported under (None offline or when disabled)."""

    score: float
    decision: bool
    threshold: float
    prediction_id: str | None = None
    enabled: bool = True


class ReferenceDetector:
    """Base of the reference detectors; subclasses set ``model`` and score their inputs."""

    model: ClassVar[str]

    def __init__(self, decision_threshold: float | None = None, *,
                 client: MonitoringClient | None = None,
                 settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        entry = next(e for e in builtin_models(self.settings) if e.name == self.model)
        self._default_threshold = float(entry.config.decision_threshold)
        self._default_enabled = bool(entry.config.enabled)
        self._fixed = None if decision_threshold is None else float(decision_threshold)
        if self._fixed is not None and not 0.0 <= self._fixed <= 1.0:
            raise ValueError(f"decision_threshold: expected a number in [0, 1], got {self._fixed}")
        self.client = client
        self._last: dict[str, Any] | None = None

    def _config(self) -> dict[str, Any] | None:
        """The registry's configuration in force (cached by the client), else the last one
        read, else None (offline, or never readable)."""
        if self.client is None:
            return None
        # the registry unreachable or the model unknown: keep what we knew
        with contextlib.suppress(MlopsError):
            self._last = dict(self.client.current_config(self.model)["config"])
        return self._last

    @property
    def decision_threshold(self) -> float:
        if self._fixed is not None:
            return self._fixed
        config = self._config()
        if config is not None and config.get("decision_threshold") is not None:
            return float(config["decision_threshold"])
        return self._default_threshold

    @property
    def enabled(self) -> bool:
        config = self._config()
        if config is not None and "enabled" in config:
            return bool(config["enabled"])
        return self._default_enabled

    def decide(self, score: float, *, actual: bool | None = None,
               metadata: dict[str, Any] | None = None, latency_ms: float | None = None,
               timestamp: float | None = None) -> Detection:
        """The decision for ``score`` under the threshold in force, reported through the client
        when there is one (with ``actual`` when the truth is already known)."""
        threshold = self.decision_threshold
        decision = score >= threshold
        prediction_id = None
        if self.client is not None:
            prediction_id = self.client.record_prediction(
                self.model, score, predicted=decision, actual=actual, metadata=metadata,
                latency_ms=latency_ms, timestamp=timestamp)
        return Detection(score=score, decision=decision, threshold=threshold,
                         prediction_id=prediction_id)

    def disabled(self) -> Detection:
        """What ``detect_*`` returns while the model is disabled: no score, no report."""
        return Detection(score=0.0, decision=False, threshold=self.decision_threshold,
                         enabled=False)
