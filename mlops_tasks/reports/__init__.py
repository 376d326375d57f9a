"""Reports: what the CLI's report commands print, the HTTP server serves and tests check.

One small module per report. Each reads Redis through ``Services`` (its registry, window
reader and alert store) and returns a frozen dataclass whose ``to_dict()`` is the documented
JSON; the rule inside (a test, a recommendation, a threshold) is a pure function beside it.

    model_summary.py       model_summary, performance_summary    current metrics and label health
    details.py             performance_details                   windows, last N, daily history
    ground_truth.py        validate_ground_truth                 label coverage and delays
    sufficiency.py         data_sufficiency; judge (pure)        labeled counts against needs
    error_bands.py         analyze_errors; error_bands (pure)    errors by score band
    versions.py            compare_versions; accuracy_difference (pure, two-sided test)
    recommendations.py     improvement_recommendations; recommend (pure)
    tuning_report.py       tuning_report; summarize (pure)       auto-tuning over a period
    alerts.py              alert_listing                         firing and recent alerts
    degradation_report.py  degradation_report                    degradation and drift incidents
    daily_summary.py       daily_summary                         the last 24 hours of each model
    trends.py              performance_trends, all_performance_trends  daily metrics over days
    config_diff.py         config_diff; field_changes (pure)     configuration changes, by field
    dashboard.py           read_dashboard                        the page of `mlops serve` (/)
    timeline.py            bucket_points, setting_steps, alert_spans (pure): its time series

numpy and scipy are imported inside the functions that need them, so importing a report
module (as every CLI command module does) stays cheap. The dashboard's modules are not
re-exported here: only the server imports them (timeline.py needs numpy's metric formulas).
"""

from .alerts import AlertEntry, alert_listing
from .common import resolve_version
from .config_diff import ConfigChange, ConfigDiff, FieldChange, config_diff, field_changes
from .daily_summary import DailySummary, ModelDay, daily_summary
from .degradation_report import DegradationReport, degradation_report
from .details import PerformanceDetails, performance_details
from .error_bands import ErrorAnalysis, ErrorBand, analyze_errors, error_bands
from .ground_truth import Coverage, GroundTruthReport, LabelDelay, validate_ground_truth
from .model_summary import ModelSummary, model_summary, performance_summary
from .recommendations import (
    ModelRecommendation,
    Recommendation,
    Recommendations,
    improvement_recommendations,
    recommend,
)
from .sufficiency import DataSufficiency, Requirements, WindowSufficiency, data_sufficiency, judge
from .trends import (
    AllTrends,
    PerformanceTrends,
    TrendPoint,
    all_performance_trends,
    performance_trends,
)
from .tuning_report import ModelTuning, TuningReport, summarize, tuning_report
from .versions import AccuracyDifference, VersionComparison, accuracy_difference, compare_versions

__all__ = [
    "AccuracyDifference", "AlertEntry", "AllTrends", "ConfigChange", "ConfigDiff", "Coverage",
    "DailySummary", "DataSufficiency", "DegradationReport", "ErrorAnalysis", "ErrorBand",
    "FieldChange", "GroundTruthReport", "LabelDelay", "ModelDay", "ModelRecommendation",
    "ModelSummary", "ModelTuning", "PerformanceDetails", "PerformanceTrends", "Recommendation",
    "Recommendations", "Requirements", "TrendPoint", "TuningReport", "VersionComparison",
    "WindowSufficiency", "accuracy_difference", "alert_listing", "all_performance_trends",
    "analyze_errors", "compare_versions", "config_diff", "daily_summary", "data_sufficiency",
    "degradation_report", "error_bands", "field_changes", "improvement_recommendations", "judge",
    "model_summary", "performance_details", "performance_summary", "performance_trends",
    "recommend", "resolve_version", "summarize", "tuning_report", "validate_ground_truth",
]
