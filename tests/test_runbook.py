"""The runbook commands: cache clear and warmup, config diff, the scheduler aliases and
performance trends of every model; each as a table and as --json, against a real Redis."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
import redis

from mlops_tasks import keys
from mlops_tasks.durations import parse_duration
from mlops_tasks.registry import Registry, builtin_models
from mlops_tasks.reports.config_diff import field_changes

if TYPE_CHECKING:
    from .conftest import Cli
    from .pipeline_support import Pipeline

def _records(raw: redis.Redis) -> dict[bytes, Any]:
    """Every project key but the read cache, with its serialized value."""
    return {k: raw.dump(k) for k in raw.scan_iter(match=keys.ALL)
            if b":cache:" not in k and not k.endswith(b":stats:cache")}


@pytest.mark.parametrize(("text", "seconds"), [
    ("7d", 7 * 86400), ("24h", 86400), ("1 week ago", 604800), ("3 days ago", 3 * 86400),
    ("90days", 90 * 86400)])
def test_durations_read_the_ago_spelling(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_cache_clear_deletes_the_cache_and_no_record(cli: Cli, ingestor: Any,
                                                     registry: Registry,
                                                     raw: redis.Redis) -> None:
    """Given every model resolved (cached), when `cache clear` runs, then the cache keys are
    gone, every registry record is byte for byte what it was, and the report says so."""
    registry.deploy("n1-detector", "1.0.0", "production", actor="alice")
    for name in registry.model_names():
        registry.resolved(name, "latest")
    registry.resolved("n1-detector", "production")
    before = _records(raw)

    doc = cli.json("cache", "clear")

    assert not list(raw.scan_iter(match="*:cache:*"))
    assert _records(raw) == before
    assert doc["cleared"] == len(registry.model_names()) + 1
    assert {"model": "n1-detector", "target": "production", "status": "cleared",
            "version": None, "revision": None} in doc["entries"]
    again = cli("cache", "clear", "--model", "n1-detector").stdout
    assert "n1-detector" in again and "empty" in again and "0 entries cleared" in again
    assert "waf-behavioral" not in again


def test_cache_warmup_then_a_read_is_a_hit(cli: Cli, ingestor: Any, registry: Registry) -> None:
    """Given production deployed for one model, when `cache warmup` runs, then production and
    latest are cached where they exist, and the next read counts a hit, not a miss."""
    registry.deploy("waf-behavioral", "1.0.0", "production", actor="alice")
    doc = cli.json("cache", "warmup")
    by = {(e["model"], e["target"]): e for e in doc["entries"]}
    assert by["waf-behavioral", "production"]["status"] == "cached"
    assert by["waf-behavioral", "production"]["version"] == "1.0.0"
    assert by["n1-detector", "production"]["status"] == "not deployed"
    assert by["n1-detector", "latest"]["status"] == "cached"
    assert doc["cached"] == len(registry.model_names()) + 1
    assert registry.cache_stats() == {"hits": 0, "misses": 0}  # warming counts nothing

    registry.resolved("waf-behavioral", "production")
    registry.resolved("n1-detector", "latest")
    assert registry.cache_stats() == {"hits": 2, "misses": 0}
    text = cli("cache", "warmup", "--model", "waf-behavioral").stdout
    assert "TARGET" in text and "2 entries cached" in text


def test_config_diff_shows_before_after_and_actor(cli: Cli, ingestor: Any,
                                                  registry: Registry) -> None:
    """Given a registration 10 days ago and a threshold change today by bob, then `config diff`
    shows both field by field, and --since "1 week ago" only today's."""
    config = builtin_models(registry.settings)[0].config
    registry.clock = lambda: time.time() - 10 * 86400
    registry.register("fresh-model", "1.0.0", config, actor="alice")
    registry.register("old-model", "1.0.0", config, actor="alice")
    registry.clock = time.time
    new = round(config.decision_threshold + 0.05, 2)
    registry.set_config("fresh-model", actor="bob", changes=[("decision_threshold", new)],
                        reason="fewer false positives")

    every = cli.json("config", "diff", "fresh-model")
    assert [c["action"] for c in every["changes"]] == ["update-config", "register"]
    update = every["changes"][0]
    assert update["actor"] == "bob" and update["version"] == "1.0.0"
    assert update["changes"] == [{"field": "decision_threshold",
                                  "before": config.decision_threshold, "after": new}]
    assert {"field": "tuning.step", "before": None,
            "after": config.tuning.step} in every["changes"][1]["changes"]

    recent = cli.json("config", "diff", "fresh-model", "--since", "1 week ago")
    assert [c["actor"] for c in recent["changes"]] == ["bob"]
    assert recent["since"] is not None
    every_model = cli.json("config", "diff", "--since", "7d")["changes"]
    assert ("fresh-model", "register") not in {(c["model"], c["action"]) for c in every_model}
    assert {c["model"] for c in every_model} == set(registry.model_names()) - {"old-model"}

    text = cli("config", "diff", "fresh-model", "--since", "24h").stdout
    assert "decision_threshold" in text and "bob" in text and str(new) in text
    assert "BEFORE" in text and "AFTER" in text
    assert "no configuration changes since" in cli("config", "diff", "old-model", "--since",
                                                   "3 days ago").stdout


def test_field_changes_compares_nested_fields() -> None:
    before = {"a": 1, "tuning": {"min": 0.5, "max": 0.9}, "params": {}}
    after = {"a": 1, "tuning": {"min": 0.6, "max": 0.9}, "params": {"w": 3}}
    assert [c.to_dict() for c in field_changes(before, after)] == [
        {"field": "params", "before": {}, "after": None},
        {"field": "params.w", "before": None, "after": 3},
        {"field": "tuning.min", "before": 0.5, "after": 0.6}]


def test_scheduler_aliases_print_what_the_group_prints(cli: Cli) -> None:
    """Given no beat running, then `scheduler-status` and `scheduler-health` print the JSON and
    exit code of `scheduler status` and `scheduler health`."""
    assert cli.json("scheduler-status") == cli.json("scheduler", "status")
    group = cli("scheduler", "health", "--json", expect=None)
    alias = cli("scheduler-health", "--json", expect=None)
    assert (alias.exit_code, alias.stdout) == (group.exit_code, group.stdout)
    assert "beat:" in cli("scheduler-status").stdout
    assert cli("scheduler-health", expect=None).stdout == \
        cli("scheduler", "health", expect=None).stdout


def test_performance_trends_without_a_model_lists_every_model(cli: Cli, pipe: Pipeline) -> None:
    """Given outcomes of one model, then `performance-trends` without NAME lists every model,
    each with the JSON `performance-trends NAME` prints."""
    pipe.feed("waf-behavioral", 200, 0.9)
    every = cli.json("performance-trends", "--days", "7")
    names = pipe.svc.registry.model_names()
    assert every["days"] == 7
    assert [m["name"] for m in every["models"]] == names
    one = cli.json("performance-trends", "waf-behavioral", "--days", "7")
    assert set(one) == {"name", "version", "days", "series"}
    assert every["models"][names.index("waf-behavioral")] == one
    text = cli("performance-trends", "--days", "7").stdout
    assert all(f"{n} v" in text for n in names)
    assert "--version needs a model NAME" in cli("performance-trends", "--version", "1.0.0",
                                                 expect=2).stderr
