"""The registry through the `mlops` command: JSON shapes, tables, errors in one line."""

from __future__ import annotations

import json

import pytest

MODEL_KEYS = {"name", "version", "revision", "config"}
CONFIG_KEYS = {"decision_threshold", "accuracy_threshold", "severity", "tuning"}
TUNING_KEYS = {"parameter", "min", "max", "step", "window_s", "metric"}


def test_register_all_and_list_models(cli) -> None:
    out = cli("register-all-models").stdout
    assert "N+1 Detector (n1-detector v1.0.0) registered" in out
    assert "WAF Behavioral (waf-behavioral v1.0.0) registered" in out
    assert "Queue Anomaly (queue-anomaly v1.0.0) registered" in out
    again = cli.json("register-all-models")
    assert {m["status"] for m in again["models"]} == {"already registered"}
    doc = cli.json("list-models")
    assert [m["name"] for m in doc["models"]] == ["n1-detector", "queue-anomaly", "waf-behavioral"]
    for m in doc["models"]:
        assert set(m) >= MODEL_KEYS
        assert set(m["config"]) >= CONFIG_KEYS
        assert set(m["config"]["tuning"]) >= TUNING_KEYS
    table = cli("list-models").stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "VERSION", "REV"]
    assert len(table) == 5


def test_register_a_custom_model_from_yaml_and_json(cli, tmp_path) -> None:
    yaml_file = tmp_path / "fraud.yaml"
    yaml_file.write_text(
        "version: 2.1.0\ndisplay_name: Fraud Scorer\nconfig:\n  decision_threshold: 0.4\n"
        "  accuracy_threshold: 0.95\n  severity: critical\n  tuning:\n"
        "    parameter: fraud_threshold\n    min: 0.2\n    max: 0.6\n    step: 0.1\n"
        "    metric: f_beta\n    beta: 2\n  params:\n    region: eu\n")
    model = cli.json("register-model", "fraud", "--config", str(yaml_file), "--actor", "dana")
    assert (model["name"], model["version"], model["revision"]) == ("fraud", "2.1.0", 1)
    assert model["config"]["tuning"]["beta"] == 2.0
    json_file = tmp_path / "spam.json"
    json_file.write_text(json.dumps({
        "decision_threshold": 0.5, "accuracy_threshold": 0.8,
        "tuning": {"parameter": "t", "min": 0.1, "max": 0.9, "step": 0.1}}))
    spam = cli.json("register-model", "spam", "--config", str(json_file))
    assert spam["version"] == "1.0.0" and spam["config"]["severity"] == "warning"
    assert cli.json("audit-log", "fraud")["entries"][0]["actor"] == "dana"


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "model.json: not valid JSON: Expecting property name"),
    ('{"decision_threshold": 2, "accuracy_threshold": 0.8, "tuning": {}}',
     "config.decision_threshold: expected a number at least 0 and at most 1, got 2"),
    ('{"decision_threshold": 0.5, "accuracy_threshold": 0.8}', "config.tuning: required"),
    ('{"decision_threshold": 0.5, "accuracy_threshold": 0.8, "colour": 1, "tuning": {}}',
     "config.colour: unknown field"),
    (('{"decision_threshold": 0.5, "accuracy_threshold": 0.8, "tuning": {"parameter": "t", '
      '"min": 0.1, "max": 0.9, "step": 0.1, "metric": "auc"}}'),
     "config.tuning.metric: expected one of f1, precision, recall, accuracy, f_beta, cost"),
    ("[1, 2]", "must hold an object"),
])
def test_a_bad_model_file_is_one_line_naming_the_field(cli, tmp_path, content, message) -> None:
    path = tmp_path / "model.json"
    path.write_text(content)
    result = cli("register-model", "custom", "--config", str(path), expect=1)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
    assert "Traceback" not in result.output
    assert cli.json("list-models")["models"] == []


def test_an_unknown_model_without_config_is_refused(cli) -> None:
    result = cli("register-model", "mystery", expect=1)
    assert "not a built-in model" in result.stderr


def test_update_config_rollback_config_and_show_config(cli) -> None:
    cli("register-all-models")
    updated = cli.json("update-config", "n1-detector", "--set", "decision_threshold=0.7",
                       "--set", "tuning.step=0.1", "--set", "params.owner=team-db",
                       "--actor", "alice")
    assert updated["revision"] == 2 and updated["changed"] is True
    assert updated["config"]["tuning"]["step"] == 0.1
    assert updated["config"]["params"]["owner"] == "team-db"
    rolled = cli.json("rollback-config", "n1-detector", "--actor", "bob")
    assert rolled["revision"] == 3 and rolled["restored_revision"] == 1
    assert rolled["config"]["decision_threshold"] == 0.6
    shown = cli.json("show-config", "n1-detector", "--history")
    assert [r["actor"] for r in shown["revisions"]][-2:] == ["alice", "bob"]
    named = cli.json("rollback-config", "n1-detector", "--to-revision", "2")
    assert named["config"]["decision_threshold"] == 0.7
    human = cli("show-config", "n1-detector").stdout
    assert "decision_threshold   0.7" in human


def test_update_threshold_and_show_thresholds(cli) -> None:
    cli("register-all-models")
    cli("update-threshold", "n1-detector", "--accuracy", "0.88")
    rows = {m["name"]: m for m in cli.json("show-thresholds")["models"]}
    assert rows["n1-detector"]["accuracy_threshold"] == 0.88
    assert rows["waf-behavioral"]["severity"] == "critical"
    result = cli("update-threshold", "n1-detector", "--decision", "1.2", expect=1)
    assert result.stderr.strip() == (
        "error: config.decision_threshold: expected a number at least 0 and at most 1, got 1.2")
    assert cli("update-threshold", "n1-detector", expect=2).exit_code == 2


@pytest.mark.parametrize(("args", "message"), [
    (["update-config", "n1-detector", "--set", "nonsense"], "--set: expected KEY=VALUE"),
    (["update-config", "n1-detector", "--set", "tuning.colour=1"], "--set tuning.colour: unknown"),
    (["update-config", "n1-detector", "--set", "enabled=maybe"], "config.enabled: expected true"),
    (["update-config", "ghost", "--set", "enabled=true"], "model 'ghost' is not registered"),
    (["deploy", "n1-detector", "--version", "3.0.0", "--env", "staging"], "has no version 3.0.0"),
    (["rollback-config", "n1-detector", "--to-revision", "7"], "has no revision 7"),
    (["register-model", "n1-detector", "--version", "banana"], "version: expected a semantic"),
])
def test_bad_input_is_one_line_and_exit_1(cli, args, message) -> None:
    cli("register-all-models")
    result = cli(*args, expect=1)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_usage_errors_exit_2(cli) -> None:
    assert cli("deploy", "n1-detector", "--version", "1.0.0", "--env", "prod",
               expect=2).exit_code == 2
    assert cli("deploy-to-production", expect=2).exit_code == 2


def test_deploy_rollback_and_status(cli) -> None:
    cli("register-all-models")
    cli("register-model", "n1-detector", "--version", "1.1.0")
    first = cli.json("deploy-to-production", "--all", "--actor", "alice")
    assert {d["version"] for d in first["deployments"]} == {"1.1.0", "1.0.0"}
    cli("deploy", "n1-detector", "--version", "1.0.0", "--env", "production", "--actor", "bob")
    prod = cli.json("list-production-models")["models"]
    assert {m["name"]: m["version"] for m in prod} == {
        "n1-detector": "1.0.0", "queue-anomaly": "1.0.0", "waf-behavioral": "1.0.0"}
    assert "n1-detector v1.0.0 (deployed: " in cli("list-production-models").stdout
    back = cli.json("rollback", "n1-detector", "--actor", "carol")
    assert back["version"] == "1.1.0" and back["deployed_by"] == "carol"
    status = cli.json("deployment-status", "n1-detector")
    prod_env = status["environments"]["production"]
    assert prod_env["current"]["version"] == "1.1.0"
    assert [d["version"] for d in prod_env["history"]] == ["1.0.0", "1.1.0"]
    down = cli.json("rollback-version", "n1-detector")
    assert down["version"] == "1.0.0"
    again = cli("deploy", "n1-detector", "--version", "1.0.0", "--env", "production").stdout
    assert "already deployed" in again


def test_config_drift_report(cli) -> None:
    cli("register-all-models")
    cli("deploy-to-production", "--all")
    cli("update-threshold", "waf-behavioral", "--decision", "0.8")
    report = {(m["name"], m["env"]): m for m in cli.json("config-drift-report")["models"]}
    waf = report[("waf-behavioral", "production")]
    assert waf["status"] == "drifted" and waf["changed_since_deploy"] is True
    assert waf["differences"] == [{"field": "decision_threshold", "deployed": 0.8,
                                   "registered": 0.7, "default": 0.7}]
    assert report[("n1-detector", "production")]["status"] == "in_sync"


def test_audit_log_and_approval_from_the_cli(cli, monkeypatch) -> None:
    monkeypatch.setenv("MLOPS_ACTOR", "ops-bot")
    cli("register-all-models")
    monkeypatch.setenv("MLOPS_REQUIRE_APPROVAL", "true")
    refused = cli("deploy", "n1-detector", "--version", "1.0.0", "--env", "production",
                  expect=1)
    assert "needs --approved-by" in refused.stderr
    cli("deploy", "n1-detector", "--version", "1.0.0", "--env", "production",
        "--approved-by", "erin")
    entries = cli.json("audit-log", "--limit", "2")["entries"]
    assert entries[0]["action"] == "deploy"
    assert (entries[0]["actor"], entries[0]["approved_by"]) == ("ops-bot", "erin")
    assert "ops-bot" in cli("audit-log").stdout


def test_approval_compares_people_and_guards_what_clients_read(cli, monkeypatch) -> None:
    """Given MLOPS_REQUIRE_APPROVAL, `--approved-by Alice` is not a second person for
    `--actor alice`; and with nothing in production, the latest version (what clients read)
    is guarded like production: its config and a newer version that would replace it."""
    cli("register-all-models", "--actor", "alice")  # first versions: nothing was read before
    monkeypatch.setenv("MLOPS_REQUIRE_APPROVAL", "true")
    same = cli("deploy", "n1-detector", "--version", "1.0.0", "--env", "production",
               "--actor", "alice", "--approved-by", "Alice", expect=1)
    assert same.stdout == ""
    assert same.stderr.strip() == (
        "error: --approved-by must name someone other than the actor 'alice' "
        "(names are compared ignoring case, width and spacing)")
    latest = cli("update-config", "queue-anomaly", "--set", "decision_threshold=0.55",
                 "--actor", "alice", expect=1)
    assert latest.stderr.strip().splitlines() == [
        ("error: changing queue-anomaly 1.0.0 (the latest version, which clients read while "
         "nothing is in production) needs --approved-by NAME (MLOPS_REQUIRE_APPROVAL is on)")]
    newer = cli("register-model", "queue-anomaly", "--version", "1.1.0", "--actor", "alice",
                expect=1)
    assert "it becomes the latest version" in newer.stderr
    done = cli.json("register-model", "queue-anomaly", "--version", "1.1.0", "--actor", "alice",
                    "--approved-by", "bob")
    assert done["version"] == "1.1.0"
    entries = cli.json("audit-log", "queue-anomaly", "--limit", "1")["entries"]
    assert (entries[0]["action"], entries[0]["approved_by"]) == ("register", "bob")
    assert cli.json("show-config", "queue-anomaly")["revision"] == 1
