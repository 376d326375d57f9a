"""Settings: the original guide's variables and defaults, and one clear line per bad value."""

from __future__ import annotations

import json

import pytest

from mlops_tasks.errors import ConfigError
from mlops_tasks.settings import Settings, check_env, mask_url


def test_defaults_match_the_deployment_guide() -> None:
    s = Settings.from_env({})
    assert s.model_registry_cache_ttl_s == 604800
    assert s.auto_tuning_enabled is True
    assert (s.nplusone_ml_enabled, s.nplusone_ml_auto_register) == (True, True)
    assert s.nplusone_ml_timeout_ms == 5000
    assert s.nplusone_ml_confidence_threshold == 60.0
    assert (s.waf_ml_enabled, s.waf_ml_auto_register) == (True, True)
    assert (s.queue_ml_enabled, s.queue_ml_auto_register) == (True, True)
    assert s.job_anomaly_min_confidence == 0.6
    assert s.job_anomaly_threshold == 50
    assert s.job_anomaly_zscore_threshold == 3.0
    assert s.job_anomaly_iqr_multiplier == 1.5
    assert s.redis_url is None and s.celery_broker_url is None


def test_values_are_parsed_with_their_types() -> None:
    s = Settings.from_env({"AUTO_TUNING_ENABLED": "off", "MODEL_REGISTRY_CACHE_TTL": "60",
                           "NPLUSONE_ML_CONFIDENCE_THRESHOLD": "72.5",
                           "REDIS_URL": "redis://:pw@localhost:6380/2"})
    assert s.auto_tuning_enabled is False
    assert s.model_registry_cache_ttl_s == 60
    assert s.nplusone_decision_threshold == 0.725
    assert s.redis_url == "redis://:pw@localhost:6380/2"


@pytest.mark.parametrize(("name", "value", "allowed"), [
    ("AUTO_TUNING_ENABLED", "maybe", "a boolean"),
    ("MODEL_REGISTRY_CACHE_TTL", "-5", "an integer >= 1"),
    ("MODEL_REGISTRY_CACHE_TTL", "week", "an integer >= 1"),
    ("NPLUSONE_ML_CONFIDENCE_THRESHOLD", "150", "a number from 0 to 100"),
    ("JOB_ANOMALY_MIN_CONFIDENCE", "1.5", "a number from 0 to 1"),
    ("JOB_ANOMALY_ZSCORE_THRESHOLD", "0", "a number greater than 0"),
    ("NPLUSONE_ML_TIMEOUT_MS", "nan", "an integer >= 1"),
    ("MLOPS_LOG_FORMAT", "xml", "one of json, text"),
    ("REDIS_URL", "http://x", "a URL such as redis://"),
])
def test_a_bad_value_names_variable_value_and_what_is_allowed(
        name: str, value: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({name: value})
    message = str(err.value)
    assert message.startswith(f"{name}={value!r} is not allowed: expected ")
    assert allowed in message
    assert "\n" not in message


def test_an_unknown_mlops_variable_is_reported_with_a_hint() -> None:
    _, problems = check_env({"MLOPS_ACTR": "alice"})
    assert problems == ["MLOPS_ACTR is not a known setting (did you mean MLOPS_ACTOR?)"]


def test_every_problem_is_collected() -> None:
    _, problems = check_env({"AUTO_TUNING_ENABLED": "maybe", "MODEL_REGISTRY_CACHE_TTL": "-1"})
    assert len(problems) == 2


def test_passwords_are_masked() -> None:
    assert mask_url("redis://:s3cret@h:6379/0") == "redis://:***@h:6379/0"
    assert mask_url("redis://user:s3cret@h/0") == "redis://user:***@h/0"
    assert mask_url("redis://h:6379/0") == "redis://h:6379/0"


def test_a_bad_value_stops_every_command(cli, monkeypatch) -> None:
    monkeypatch.setenv("AUTO_TUNING_ENABLED", "maybe")
    for args in (["list-models"], ["register-all-models"], ["cache", "health"]):
        result = cli(*args, expect=1)
        assert result.stdout == ""
        assert result.stderr.strip().splitlines() == [
            ("error: AUTO_TUNING_ENABLED='maybe' is not allowed: expected a boolean "
             "(true/false, 1/0, yes/no, on/off)")]


def test_config_check_lists_problems_and_masks_secrets(cli, monkeypatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@127.0.0.1:1/0")
    monkeypatch.setenv("MODEL_REGISTRY_CACHE_TTL", "-3")
    monkeypatch.setenv("JOB_ANOMALY_MIN_CONFIDENCE", "2")
    result = cli("config", "check", "--json", expect=1)
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    assert len(doc["problems"]) == 2
    assert "hunter2" not in result.stdout
    rows = {row["variable"]: row for row in doc["settings"]}
    assert rows["REDIS_URL"]["value"] == "redis://:***@127.0.0.1:1/0"
    assert rows["MODEL_REGISTRY_CACHE_TTL"]["problem"].startswith("MODEL_REGISTRY_CACHE_TTL='-3'")
    human = cli("config", "check", expect=1).stdout
    assert "problem: JOB_ANOMALY_MIN_CONFIDENCE='2' is not allowed" in human


def test_config_check_passes_on_a_clean_environment(cli) -> None:
    doc = cli.json("config", "check")
    assert doc["ok"] is True and doc["problems"] == []
    assert {r["variable"] for r in doc["settings"]} >= {
        "MODEL_REGISTRY_CACHE_TTL", "AUTO_TUNING_ENABLED", "NPLUSONE_ML_ENABLED",
        "NPLUSONE_ML_AUTO_REGISTER", "NPLUSONE_ML_TIMEOUT_MS", "NPLUSONE_ML_CONFIDENCE_THRESHOLD",
        "WAF_ML_ENABLED", "WAF_ML_AUTO_REGISTER", "QUEUE_ML_ENABLED", "QUEUE_ML_AUTO_REGISTER",
        "JOB_ANOMALY_MIN_CONFIDENCE", "JOB_ANOMALY_THRESHOLD", "JOB_ANOMALY_ZSCORE_THRESHOLD",
        "JOB_ANOMALY_IQR_MULTIPLIER", "REDIS_URL", "CELERY_BROKER_URL"}
