"""The built-in detectors, with the thresholds of the original deployment guide.

The catalogue is a function of the settings. The decision threshold is the one home of
``NPLUSONE_ML_CONFIDENCE_THRESHOLD`` (a percent, 60 -> 0.60) and ``JOB_ANOMALY_THRESHOLD`` (a 0-100
score, 50 -> 0.50); the other ``NPLUSONE_ML_*`` and ``JOB_ANOMALY_*`` values become ``params`` and
the ``*_ML_ENABLED`` flags the ``enabled`` field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..settings import Settings
from .config import ModelConfig

HOUR_S = 3600


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    display_name: str
    version: str
    description: str
    auto_register: bool
    config: ModelConfig


def _tuning(parameter: str, lo: float, hi: float) -> dict[str, Any]:
    return {"parameter": parameter, "min": lo, "max": hi, "step": 0.05, "window_s": HOUR_S,
            "metric": "f1"}


def builtin_models(settings: Settings) -> list[CatalogueEntry]:
    return [
        CatalogueEntry(
            name="n1-detector",
            display_name="N+1 Detector",
            version="1.0.0",
            description="Detects N+1 query patterns in database operations",
            auto_register=settings.nplusone_ml_auto_register,
            config=ModelConfig.from_dict({
                "decision_threshold": settings.nplusone_decision_threshold,
                "accuracy_threshold": 0.85,
                "severity": "warning",
                "tuning": _tuning("confidence_threshold", 0.5, 0.9),
                "enabled": settings.nplusone_ml_enabled,
                "params": {
                    "timeout_ms": settings.nplusone_ml_timeout_ms,
                },
            }),
        ),
        CatalogueEntry(
            name="waf-behavioral",
            display_name="WAF Behavioral",
            version="1.0.0",
            description="Detects malicious behavioral patterns in web requests",
            auto_register=settings.waf_ml_auto_register,
            config=ModelConfig.from_dict({
                "decision_threshold": settings.waf_anomaly_threshold,
                "accuracy_threshold": 0.90,
                "severity": "critical",
                "tuning": _tuning("anomaly_threshold", 0.5, 0.9),
                "enabled": settings.waf_ml_enabled,
                "params": {},
            }),
        ),
        CatalogueEntry(
            name="queue-anomaly",
            display_name="Queue Anomaly",
            version="1.0.0",
            description="Detects anomalous job execution patterns",
            auto_register=settings.queue_ml_auto_register,
            config=ModelConfig.from_dict({
                "decision_threshold": settings.queue_decision_threshold,
                "accuracy_threshold": 0.80,
                "severity": "warning",
                "tuning": _tuning("anomaly_threshold", 0.4, 0.8),
                "enabled": settings.queue_ml_enabled,
                "params": {
                    "min_confidence": settings.job_anomaly_min_confidence,
                    "zscore_threshold": settings.job_anomaly_zscore_threshold,
                    "iqr_multiplier": settings.job_anomaly_iqr_multiplier,
                },
            }),
        ),
    ]


def catalogue_entry(settings: Settings, name: str) -> CatalogueEntry | None:
    for entry in builtin_models(settings):
        if entry.name == name:
            return entry
    return None
