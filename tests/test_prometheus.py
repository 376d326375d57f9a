"""docker/prometheus: the alerting rules pass promtool's checks and unit tests, the exposition of
a real `mlops serve` passes `promtool check metrics`, and the rules name only metrics, labels
and label values that exposition really has, firing as expected when it is replayed to them."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from mlops_tasks.settings import ENV_PREFIX, Settings, known_variables

from .conftest import wait_for
from .processes import BeatProcess, ServeProcess
from .redis_server import RedisServer, free_port

PROMETHEUS_DIR = Path(__file__).resolve().parent.parent / "docker" / "prometheus"
RULES = PROMETHEUS_DIR / "rules.yml"
RULE_TESTS = (PROMETHEUS_DIR / "rules_test.yml", PROMETHEUS_DIR / "rules_test_week.yml")
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
# Series Prometheus makes itself, not the collector.
PROMETHEUS_SERIES = {"up"}
BUILTIN = ("n1-detector", "waf-behavioral", "queue-anomaly")
CUSTOM = ("fraud-scorer", "login-anomaly")

# The families the issue lists, by sample name, with their label names.
ISSUE_FAMILIES: dict[str, set[str]] = {
    **{f"mlops_model_{m}": {"model", "version", "window"}
       for m in ("accuracy", "precision", "recall", "f1", "false_positive_rate")},
    "mlops_predictions_total": {"model", "version"},
    "mlops_ground_truth_total": {"model", "version"},
    "mlops_decision_threshold": {"model", "version"},
    "mlops_pending_labels": {"model"},
    "mlops_dead_letters_total": {"model"},
    "mlops_alerts_firing": {"model", "kind", "severity"},
    "mlops_alerts_total": {"model", "kind", "severity"},
    "mlops_tuning_runs_total": {"model", "applied"},
    "mlops_tuning_improvement_percent": {"model"},
    "mlops_scheduler_job_last_success_timestamp_seconds": {"job"},
    "mlops_scheduler_job_consecutive_failures": {"job"},
    "mlops_scheduler_job_runs_total": {"job", "outcome"},
    "mlops_beat_heartbeat_age_seconds": set(),
    "mlops_queue_depth": {"queue"},
    "mlops_queue_unacked": {"queue"},
    "mlops_workers_alive": {"pool"},
    "mlops_registry_cache_requests_total": {"result"},
}


def promtool() -> str:
    """promtool, or a failure saying how to get it (never a skip: these checks must run)."""
    found = shutil.which("promtool") or (
        "/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)
    if found is None:
        pytest.fail("promtool not found: install Debian's `prometheus` package "
                    "(`apt-get install prometheus`; .ci/run does it when missing)")
    return found


def run_promtool(*args: str, stdin: str | None = None,
                 cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], input=stdin, capture_output=True, text=True,
                          cwd=cwd, check=False, timeout=300)


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


# --- the rule files ------------------------------------------------------------------------


def test_promtool_checks_the_rules_and_the_config() -> None:
    """Given rules.yml and prometheus.yml, promtool finds both valid (the config loads the
    rules)."""
    check = run_promtool("check", "rules", RULES.name)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(rules())} rules found" in check.stdout
    config = run_promtool("check", "config", CONFIG.name)
    assert config.returncode == 0, config.stdout + config.stderr
    assert "1 rule files found" in config.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    """Given the unit tests of every rule, `promtool test rules` passes them all."""
    result = run_promtool("test", "rules", *(p.name for p in RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS), result.stdout


def test_every_rule_is_unit_tested_firing_and_silent() -> None:
    """Given the rule tests, each alert has a case where it fires and one where it does not."""
    firing: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {r["alert"] for r in rules()}
    assert names - firing == set(), "rules never tested firing"
    assert names - silent == set(), "rules never tested silent"
    assert (firing | silent) - names == set(), "tests of rules that do not exist"


def test_every_rule_has_a_severity_a_for_and_its_annotations() -> None:
    """Given rules.yml, every alert waits (`for`), says how bad it is and what to run."""
    for rule in rules():
        name = rule.get("alert")
        assert name, f"only alerting rules here: {rule}"
        assert rule.get("for"), name
        severity = rule["labels"]["severity"]
        assert severity in ("critical", "warning", "{{ $labels.severity }}"), name
        assert set(rule["annotations"]) == {"summary", "description", "runbook"}, name


def _label_example(match: re.Match[str]) -> str:
    return {"model": "n1-detector", "pool": "events"}[match.group(1)]


def test_every_runbook_command_parses_as_an_mlops_command() -> None:
    """Given each rule's runbook annotation, every `mlops ...` in it names a real command whose
    options and arguments parse (template labels replaced by example values)."""
    from mlops_tasks.cli.main import cli

    for rule in rules():
        commands = [c.strip() for c in rule["annotations"]["runbook"].split(";")]
        for command in commands:
            words = re.sub(r"\{\{ \$labels\.(\w+) \}\}", _label_example, command).split()
            assert words[0] == "mlops", (rule["alert"], command)
            args = words[1:]
            ctx = click.Context(cli, info_name="mlops")
            cmd: click.Command | None = cli
            while isinstance(cmd, click.Group) and args and not args[0].startswith("-"):
                cmd = cmd.get_command(ctx, args.pop(0))
                assert cmd is not None, (rule["alert"], command)
                ctx = click.Context(cmd, parent=ctx, info_name=cmd.name)
            # a group runs alone only when it is made to (e.g. `dead-letters --model M`)
            assert cmd is not None, (rule["alert"], command)
            assert not isinstance(cmd, click.Group) or cmd.invoke_without_command, (
                rule["alert"], command)
            cmd.make_context(cmd.name, args, parent=ctx.parent)  # raises on a bad option


def test_overdue_rule_holds_one_clause_per_scheduled_job_at_its_default_interval() -> None:
    """Given the job table, MlopsSchedulerJobOverdue checks every job at two of its default
    intervals, so a new job or a changed default shows up here."""
    from mlops_tasks.jobs import JOBS

    expr = next(r["expr"] for r in rules() if r["alert"] == "MlopsSchedulerJobOverdue")
    clauses = dict(re.findall(r'\{job="([^"]+)"\}\)\s*>\s*2\s*\*\s*(\d+)', expr))
    defaults = Settings.from_env({})
    assert {job: int(s) for job, s in clauses.items()} == {
        j.name: j.interval_s(defaults) for j in JOBS}


# --- selectors of the rules' expressions ----------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACES = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")\s*')
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, operator, value)


def selectors(expr: str) -> list[Selector]:
    """The series selectors of a PromQL expression: metric names with their label matchers
    (a small reader for the forms rules.yml uses, not a PromQL parser)."""
    found: list[Selector] = []

    def with_braces(m: re.Match[str]) -> str:
        matchers = []
        for part in filter(str.strip, m.group(2).split(",")):
            parsed = _MATCHER.fullmatch(part)
            assert parsed, f"cannot read matcher {part!r} in {expr!r}"
            matchers.append((parsed.group(1), parsed.group(2), json.loads(parsed.group(3))))
        assert m.group(1), f"a selector without a metric name: {m.group(0)!r}"
        found.append(Selector(m.group(1), tuple(matchers)))
        return " "

    rest = _BRACES.sub(with_braces, expr)
    rest = _LABEL_LISTS.sub(" ", _STRING.sub(" ", rest))
    rest = re.sub(r"\[[^\]]*\]", " ", rest)  # range durations
    rest = re.sub(r"\boffset\s+\w+", " ", rest)
    rest = re.sub(r"\b\d[\w.+-]*", " ", rest)  # numbers and durations
    for m in _IDENT.finditer(rest):
        following = rest[m.end():].lstrip()[:1]
        if following == "(" or m.group(0) in KEYWORDS:
            continue  # a function, an aggregation or an operator
        found.append(Selector(m.group(0), ()))
    return found


def test_the_selector_reader_finds_names_matchers_and_bare_names() -> None:
    """The reader used below: names inside functions, after `on ()`, with matchers or bare."""
    found = selectors('max_over_time(a_b{x="1", y!~"p|q"}[7d]) < 1 and on (m) (c offset 7d)'
                      " or absent(d) and on () count(e_total) > 0 or time() - f > 2 * 300")
    assert found == [Selector("a_b", (("x", "=", "1"), ("y", "!~", "p|q"))),
                     Selector("c", ()), Selector("d", ()), Selector("e_total", ()),
                     Selector("f", ())]


# --- a real exposition ----------------------------------------------------------------------


@dataclass(frozen=True)
class Scrape:
    text: str
    families: dict[str, Any]  # sample name -> family
    samples: dict[str, list[Any]]  # sample name -> samples


def _populate(redis_url: str) -> None:
    """Five models (the three built-ins and two custom ones), labeled events through the
    worker's ingest path (a few with their latency), a monitoring and a tuning run, alerts, job
    runs, cache reads."""
    from mlops_tasks.alerts.model import Alert
    from mlops_tasks.jobs import recorded
    from mlops_tasks.monitoring.performance import run_monitoring
    from mlops_tasks.registry.catalogue import builtin_models
    from mlops_tasks.tuning.engine import run_tuning

    from .pipeline_support import Pipeline

    pipe = Pipeline(redis_url)
    svc = pipe.svc
    template = next(e for e in builtin_models(svc.settings) if e.name == "n1-detector")
    for name in CUSTOM:  # an accuracy threshold of 95 %: fraud-scorer (90 %) alerts
        svc.registry.register(name, "1.0.0", dataclasses.replace(
            template.config, accuracy_threshold=0.95), actor="test")
    for name in (*BUILTIN, *CUSTOM):
        pipe.deploy(name)
    # waf-behavioral and queue-anomaly under their thresholds, n1-detector above;
    # login-anomaly on 50 labels only (too few to judge)
    for name, n, accuracy in (("n1-detector", 2000, 0.95), ("waf-behavioral", 2000, 0.85),
                              ("queue-anomaly", 2000, 0.70), ("fraud-scorer", 1000, 0.90),
                              ("login-anomaly", 50, 0.40)):
        pipe.feed(name, n, accuracy)
    # labeled predictions that carry their latency (mlops_model_latency_*_seconds)
    pipe.ingestor.ingest_predictions({
        "v": 1, "kind": "predictions", "batch_id": "latency-1", "model": "n1-detector",
        "n": 4, "score": [0.1, 0.4, 0.7, 0.9], "actual": [0, 0, 1, 1],
        "latency_ms": [2.0, 3.5, 5.0, 12.0]})
    # predictions awaiting their label, and one event dead-lettered (score out of range)
    pipe.ingestor.ingest_predictions({
        "v": 1, "kind": "predictions", "batch_id": "pending-1", "model": "queue-anomaly",
        "n": 3, "score": [0.2, 0.9, 1.5], "prediction_id": ["p1", "p2", "p3"]})
    with recorded(svc.redis, "ml-performance-monitoring"):
        run_monitoring(svc)  # accuracy_below_threshold for waf, queue-anomaly, fraud-scorer
    svc.alerts.raise_alert(Alert("waf-behavioral", "1.0.0", "performance_degraded",
                                 "critical", "WAF Behavioral Performance Degraded"))
    with recorded(svc.redis, "ml-auto-tuning"):
        run_tuning(svc)
    for job in ("ml-degradation-detection", "ml-registry-cleanup"):
        with recorded(svc.redis, job):
            pass
    for _ in range(4):  # then the tuning job failing 4 times in a row
        with pytest.raises(RuntimeError), recorded(svc.redis, "ml-auto-tuning"):
            raise RuntimeError("boom")
    for name in BUILTIN:  # a miss, then a hit, of the resolved-configuration cache
        svc.registry.resolved(name, "production")
        svc.registry.resolved(name, "production")


@pytest.fixture(scope="module")
def scrape(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scrape]:
    """/metrics of a real `mlops serve`, on a Redis of its own where a real beat leads (its
    ticks go to queues no worker consumes, never to the session's broker)."""
    tmp = tmp_path_factory.mktemp("prometheus")
    server = RedisServer(tmp / "redis").start()
    started: list[Any] = []
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name in list(os.environ):
                if name in known_variables() or name.startswith(ENV_PREFIX):
                    mp.delenv(name)
            mp.setenv("REDIS_URL", server.url)
            mp.setenv("MLOPS_DATA_DIR", str(tmp / "data"))
            _populate(server.url)
        data_dir = str(tmp / "data")
        started.append(BeatProcess(server.url, tmp, MLOPS_DATA_DIR=data_dir).start())
        serve = ServeProcess(server.url, tmp, "--port", str(port := free_port()),
                             MLOPS_DATA_DIR=data_dir)
        started.append(serve)
        serve.start(port)

        def complete() -> str | None:
            """A scrape holding beat's heartbeat and the workers' answer (both come later)."""
            status, text = serve.get("/metrics")
            assert status == 200, text
            return text if ("\nmlops_beat_heartbeat_age_seconds " in text
                            and "\nmlops_workers_alive{" in text) else None

        text = wait_for(complete, timeout=60, interval=0.5,
                        what="beat's heartbeat and mlops_workers_alive in /metrics")
        families: dict[str, Any] = {}
        samples: dict[str, list[Any]] = {}
        for family in text_string_to_metric_families(text):
            for suffix in ("_total",) if family.type == "counter" else ("",):
                families[family.name + suffix] = family
            for s in family.samples:
                samples.setdefault(s.name, []).append(s)
        yield Scrape(text, families, samples)
    finally:
        for proc in reversed(started):
            proc.stop()
        server.stop()


@pytest.mark.slow
def test_promtool_check_metrics_accepts_the_exposition(scrape: Scrape) -> None:
    """Given /metrics of a server with five models, promtool's linter reports nothing."""
    check = run_promtool("check", "metrics", stdin=scrape.text)
    assert check.returncode == 0 and not (check.stdout + check.stderr).strip(), (
        check.stdout + check.stderr)


@pytest.mark.slow
def test_the_issue_families_are_exposed_with_their_labels(scrape: Scrape) -> None:
    """Given the same scrape, every family the issue lists is there, typed, with samples
    carrying exactly its labels, for every registered model."""
    for name, labels in ISSUE_FAMILIES.items():
        assert name in scrape.families, name
        expected_type = "counter" if name.endswith("_total") else "gauge"
        assert scrape.families[name].type == expected_type, name
        assert scrape.samples.get(name), f"{name}: no sample"
        for s in scrape.samples[name]:
            assert set(s.labels) == labels, (name, s.labels)
    models = {s.labels["model"] for s in scrape.samples["mlops_predictions_total"]}
    assert models == {*BUILTIN, *CUSTOM}
    windows = {s.labels["window"] for s in scrape.samples["mlops_model_accuracy"]
               if s.labels["model"] == "waf-behavioral"}
    assert windows == {"last_100", "last_1000", "since_deployment", "last_hour"}
    by_model = {s.labels["model"]: s.value for s in scrape.samples["mlops_pending_labels"]}
    assert by_model["queue-anomaly"] == 2
    by_model = {s.labels["model"]: s.value for s in scrape.samples["mlops_dead_letters_total"]}
    assert by_model["queue-anomaly"] == 1


@pytest.mark.slow
def test_rules_select_only_exposed_metrics_labels_and_values(scrape: Scrape) -> None:
    """Given every selector in rules.yml, its metric is exposed (or is Prometheus's `up`), its
    matchers name labels the metric has, and each `label="value"` matches a real sample."""
    for rule in rules():
        for sel in selectors(rule["expr"]):
            if sel.metric in PROMETHEUS_SERIES:
                continue
            assert sel.metric in scrape.families, (rule["alert"], sel.metric)
            labels = ISSUE_FAMILIES.get(sel.metric) or {
                k for s in scrape.samples.get(sel.metric, []) for k in s.labels}
            for label, op, value in sel.matchers:
                assert label in labels, (rule["alert"], sel.metric, label)
                if op == "=":
                    values = {s.labels[label] for s in scrape.samples[sel.metric]}
                    assert value in values, (rule["alert"], sel.metric, label, value)


def _series(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def scrape_job() -> tuple[dict[str, str], bool]:
    """The labels prometheus.yml's mlops job gives its target, and its honor_labels."""
    config = yaml.safe_load(CONFIG.read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "mlops")
    target = job["static_configs"][0]["targets"][0]
    return {"job": job["job_name"], "instance": target}, bool(job.get("honor_labels"))


def as_scraped(labels: dict[str, str], target: dict[str, str], honor: bool) -> dict[str, str]:
    """A sample's labels as Prometheus stores them: the target's labels added, and on a
    conflict the sample's label kept (honor_labels) or renamed exported_<name>."""
    if honor:
        return {**target, **labels}
    return {**{f"exported_{k}" if k in target else k: v for k, v in labels.items()}, **target}


# What the replayed scrape must fire: five models, one monitoring run, waf degraded, the tuning
# job failing, beat leading, no worker started. Rules on rates, on a week or on the wall clock
# (backlog, dead letters, cache, stagnation, overdue jobs) have nothing to say about one
# constant scrape and are left to the unit tests.
REPLAY_EXPECTED: dict[str, list[dict[str, str]]] = {
    "MlopsWafBehavioralAccuracyLow": [
        {"severity": "critical", "model": "waf-behavioral", "version": "1.0.0",
         "window": "last_1000"}],
    "MlopsN1DetectorAccuracyLow": [],
    "MlopsQueueAnomalyAccuracyLow": [
        {"severity": "warning", "model": "queue-anomaly", "version": "1.0.0",
         "window": "last_1000"}],
    "MlopsWafBehavioralPerformanceDegraded": [
        {"severity": "critical", "model": "waf-behavioral", "kind": "performance_degraded"}],
    "MlopsPerformanceDegraded": [],
    "MlopsAccuracyBelowThreshold": [
        {"severity": "warning", "model": "fraud-scorer", "kind": "accuracy_below_threshold"}],
    "MlopsSchedulerJobFailing": [{"severity": "critical", "job": "ml-auto-tuning"}],
    "MlopsBeatHeartbeatStale": [],
    "MlopsWorkerPoolDown": [{"severity": "critical", "pool": p}
                            for p in ("events", "monitoring", "tuning")],
    "MlopsExporterDown": [],
}


@pytest.mark.slow
def test_rules_fire_as_expected_on_the_replayed_scrape(scrape: Scrape,
                                                       tmp_path: Path) -> None:
    """Given every sample of the scrape held for an hour (labelled as Prometheus scrapes it),
    the rules fire exactly the alerts this state calls for, with the labels they carry."""
    target, honor = scrape_job()
    doc = yaml.safe_load(RULES.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations")  # the unit tests check them; here labels only
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(doc))
    series = [{"series": _series("up", target), "values": "1x60"}]
    series.extend({"series": _series(name, as_scraped(s.labels, target, honor)),
                   "values": f"{s.value!r}x60"}
                  for name, samples in scrape.samples.items() for s in samples)
    checks = [{"eval_time": "40m", "alertname": name,
               "exp_alerts": [{"exp_labels": {**target, **labels}} for labels in expected]}
              for name, expected in REPLAY_EXPECTED.items()]
    test_doc = {"rule_files": ["rules.yml"], "evaluation_interval": "1m",
                "tests": [{"name": "the scrape, held", "interval": "1m",
                           "input_series": series, "alert_rule_test": checks}]}
    (tmp_path / "replay_test.yml").write_text(yaml.safe_dump(test_doc))
    result = run_promtool("test", "rules", "replay_test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
