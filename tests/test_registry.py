"""The durable registry: catalogue, revisions, deployments, audit trail, approval, concurrency."""

from __future__ import annotations

import multiprocessing as mp

import pytest
import redis

from mlops_tasks import keys
from mlops_tasks.errors import ApprovalRequiredError, ConflictError, NotFoundError, ValidationError
from mlops_tasks.registry import ModelConfig, Registry, builtin_models
from mlops_tasks.registry.semver import ordered
from mlops_tasks.settings import Settings


def register_catalogue(registry: Registry, actor: str = "alice") -> None:
    for e in builtin_models(registry.settings):
        registry.register(e.name, e.version, e.config, actor=actor,
                          display_name=e.display_name, builtin=True)


def test_catalogue_values_match_the_guide(registry: Registry) -> None:
    register_catalogue(registry)
    expected = {
        "n1-detector": (0.85, "warning", "confidence_threshold", 0.5, 0.9),
        "waf-behavioral": (0.90, "critical", "anomaly_threshold", 0.5, 0.9),
        "queue-anomaly": (0.80, "warning", "anomaly_threshold", 0.4, 0.8),
    }
    assert registry.model_names() == sorted(expected)
    for name, (acc, sev, param, lo, hi) in expected.items():
        m = registry.describe(name)
        assert m["version"] == "1.0.0" and m["revision"] == 1
        c = m["config"]
        assert (c["accuracy_threshold"], c["severity"]) == (acc, sev)
        t = c["tuning"]
        assert (t["parameter"], t["min"], t["max"], t["step"], t["window_s"], t["metric"]) == (
            param, lo, hi, 0.05, 3600, "f1")
    assert registry.describe("n1-detector")["config"]["decision_threshold"] == 0.6
    assert registry.describe("n1-detector")["config"]["params"]["timeout_ms"] == 5000
    q = registry.describe("queue-anomaly")["config"]
    assert q["decision_threshold"] == 0.5
    assert q["params"] == {"min_confidence": 0.6, "zscore_threshold": 3.0, "iqr_multiplier": 1.5}


def test_detector_parameters_come_from_settings(r: redis.Redis) -> None:
    settings = Settings.from_env({"NPLUSONE_ML_CONFIDENCE_THRESHOLD": "75",
                                  "NPLUSONE_ML_ENABLED": "false", "JOB_ANOMALY_THRESHOLD": "40"})
    entries = {e.name: e.config for e in builtin_models(settings)}
    assert entries["n1-detector"].decision_threshold == 0.75
    assert entries["n1-detector"].enabled is False
    assert entries["queue-anomaly"].decision_threshold == 0.4


def test_registry_records_never_expire(registry: Registry, r: redis.Redis) -> None:
    register_catalogue(registry)
    registry.deploy("n1-detector", "1.0.0", "production", actor="alice")
    registry.resolved("n1-detector")
    for key in r.scan_iter("mlops:*"):
        ttl = r.ttl(key)
        if ":cache:" in key:
            assert 0 < ttl <= registry.settings.model_registry_cache_ttl_s
        else:
            assert ttl == -1, key


def test_registering_the_same_version_twice_conflicts(registry: Registry) -> None:
    register_catalogue(registry)
    cfg = builtin_models(registry.settings)[0].config
    with pytest.raises(ConflictError, match="already registered"):
        registry.register("n1-detector", "1.0.0", cfg, actor="bob")
    assert registry.register("n1-detector", "1.0.0", cfg, actor="bob",
                             exist_ok=True)["created"] is False


def test_every_change_is_a_new_revision_and_rollback_never_rewrites(registry: Registry) -> None:
    register_catalogue(registry)
    registry.set_config("n1-detector", actor="alice", changes=[("decision_threshold", 0.7)])
    registry.set_config("n1-detector", actor="bob", changes=[("decision_threshold", 0.8)])
    back = registry.rollback_config("n1-detector", actor="carol")
    assert back["revision"] == 4 and back["restored_revision"] == 2
    assert registry.describe("n1-detector")["config"]["decision_threshold"] == 0.7
    named = registry.rollback_config("n1-detector", actor="carol", to_revision=1)
    assert named["revision"] == 5
    history = registry.revisions("n1-detector", "1.0.0")
    assert [h["config"]["decision_threshold"] for h in history] == [0.6, 0.7, 0.8, 0.7, 0.6]
    assert [h["actor"] for h in history] == ["alice", "alice", "bob", "carol", "carol"]


def test_rollback_config_to_a_missing_revision_is_refused(registry: Registry) -> None:
    register_catalogue(registry)
    with pytest.raises(NotFoundError, match="only one revision"):
        registry.rollback_config("n1-detector", actor="alice")
    with pytest.raises(NotFoundError, match="no revision 9"):
        registry.rollback_config("n1-detector", actor="alice", to_revision=9)


def test_an_unchanged_config_writes_no_revision(registry: Registry) -> None:
    register_catalogue(registry)
    result = registry.set_config("n1-detector", actor="a", changes=[("decision_threshold", 0.6)])
    assert result["changed"] is False
    assert len(registry.revisions("n1-detector", "1.0.0")) == 1


def test_invalid_changes_name_the_field(registry: Registry) -> None:
    register_catalogue(registry)
    with pytest.raises(ValidationError, match=r"^config.decision_threshold: expected a number"):
        registry.set_config("n1-detector", actor="a", changes=[("decision_threshold", 1.5)])
    with pytest.raises(ValidationError, match=r"^config.tuning.max: expected a number greater"):
        registry.set_config("n1-detector", actor="a", changes=[("tuning.max", 0.2)])
    with pytest.raises(ValidationError, match=r"^config.severity: expected one of"):
        registry.set_config("n1-detector", actor="a", changes=[("severity", "loud")])


def test_deploy_records_who_and_when_and_rollback_returns(registry: Registry) -> None:
    register_catalogue(registry)
    cfg = registry.current("n1-detector", "1.0.0")["config"]
    registry.register("n1-detector", "1.1.0", ModelConfig.from_dict(cfg), actor="alice")
    registry.deploy("n1-detector", "1.0.0", "production", actor="alice")
    registry.deploy("n1-detector", "1.1.0", "staging", actor="bob")
    registry.deploy("n1-detector", "1.1.0", "production", actor="bob")
    prod = registry.deployment("n1-detector", "production")
    assert (prod["version"], prod["deployed_by"]) == ("1.1.0", "bob")
    assert prod["deployed_at"].endswith("Z")
    back = registry.rollback("n1-detector", actor="carol")
    assert back["version"] == "1.0.0" and back["action"] == "rollback"
    assert registry.deployment("n1-detector", "staging")["version"] == "1.1.0"
    with pytest.raises(ConflictError, match=r"no version below 1\.0\.0"):
        registry.rollback_version("n1-detector", actor="carol")
    registry.deploy("n1-detector", "1.1.0", "production", actor="bob")
    assert registry.rollback_version("n1-detector", actor="carol")["version"] == "1.0.0"
    assert registry.rollback("n1-detector", actor="x", to_version="1.1.0")["version"] == "1.1.0"


def test_rollback_without_deployment_is_refused(registry: Registry) -> None:
    register_catalogue(registry)
    with pytest.raises(NotFoundError, match="not deployed to production"):
        registry.rollback("n1-detector", actor="alice")
    registry.deploy("n1-detector", "1.0.0", "production", actor="alice")
    with pytest.raises(ConflictError, match="no earlier version"):
        registry.rollback("n1-detector", actor="alice")


def test_audit_entries_carry_actor_time_before_and_after(registry: Registry) -> None:
    register_catalogue(registry, actor="alice")
    registry.set_config("waf-behavioral", actor="bob", changes=[("decision_threshold", 0.75)])
    registry.deploy("waf-behavioral", "1.0.0", "production", actor="carol")
    entries = registry.audit_log("waf-behavioral")
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("deploy", "carol"), ("update-config", "bob"), ("register", "alice")]
    update = entries[1]
    assert update["before"]["decision_threshold"] == 0.7
    assert update["after"]["decision_threshold"] == 0.75
    assert update["revision"] == 2 and update["at"].endswith("Z")
    assert entries[0]["before"] is None and entries[0]["after"] == "1.0.0"
    everything = registry.audit_log(limit=100)
    assert len(everything) == 5
    assert everything[0]["action"] == "deploy"


def test_production_changes_need_a_different_approver(r: redis.Redis) -> None:
    registry = Registry(r, Settings.from_env({"MLOPS_REQUIRE_APPROVAL": "true"}))
    register_catalogue(registry)
    registry.deploy("n1-detector", "1.0.0", "staging", actor="alice")  # staging: no approval
    with pytest.raises(ApprovalRequiredError, match="needs --approved-by"):
        registry.deploy("n1-detector", "1.0.0", "production", actor="alice")
    with pytest.raises(ApprovalRequiredError, match="someone other than the actor"):
        registry.deploy("n1-detector", "1.0.0", "production", actor="alice",
                        approved_by="alice")
    registry.deploy("n1-detector", "1.0.0", "production", actor="alice", approved_by="bob")
    with pytest.raises(ApprovalRequiredError):
        registry.set_config("n1-detector", actor="alice", changes=[("decision_threshold", 0.7)])
    done = registry.set_config("n1-detector", actor="alice",
                               changes=[("decision_threshold", 0.7)], approved_by="bob")
    assert done["approved_by"] == "bob"
    assert registry.audit_log("n1-detector")[0]["approved_by"] == "bob"
    # A version clients do not read changes freely: here one production does not run.
    cfg = ModelConfig.from_dict(registry.current("n1-detector", "1.0.0")["config"])
    registry.register("n1-detector", "1.1.0", cfg, actor="alice")
    registry.set_config("n1-detector", actor="alice", version="1.1.0",
                        changes=[("decision_threshold", 0.55)])


@pytest.mark.parametrize("approver", ["Alice", " alice ", "ALICE", "\uff21lice", "ali\u200bce",
                                      "Alice\t"])
def test_the_approver_is_compared_as_a_person_not_as_bytes(r: redis.Redis, approver) -> None:
    """Given required approval, when the approver is the actor spelled differently (case,
    spacing, full-width letters, a zero-width space), then the change is refused."""
    registry = Registry(r, Settings.from_env({"MLOPS_REQUIRE_APPROVAL": "true"}))
    register_catalogue(registry)
    with pytest.raises(ApprovalRequiredError, match="someone other than the actor"):
        registry.deploy("n1-detector", "1.0.0", "production", actor="alice",
                        approved_by=approver)
    assert registry.deployment("n1-detector", "production") is None


def test_a_blank_or_policy_approver_is_no_approval(r: redis.Redis) -> None:
    """Given required approval, an approver of only spaces, or a policy name such as the
    auto-tuner's `policy:AUTO_TUNING_ENABLED`, is not a person's approval."""
    registry = Registry(r, Settings.from_env({"MLOPS_REQUIRE_APPROVAL": "true"}))
    register_catalogue(registry)
    registry.deploy("n1-detector", "1.0.0", "production", actor="alice", approved_by="bob")
    with pytest.raises(ApprovalRequiredError, match="needs --approved-by"):
        registry.set_config("n1-detector", actor="alice", approved_by="   ",
                            changes=[("decision_threshold", 0.7)])
    with pytest.raises(ApprovalRequiredError, match="is a policy, not a person"):
        registry.set_config("n1-detector", actor="auto-tuner",
                            approved_by="policy:AUTO_TUNING_ENABLED",
                            changes=[("decision_threshold", 0.7)], action="auto-tune")
    assert registry.current("n1-detector")["revision"] == 1
    assert registry.approval_needed("n1-detector", "1.0.0") is True


def test_without_production_the_latest_version_clients_read_needs_approval(
        r: redis.Redis) -> None:
    """Given required approval and nothing in production, clients read the latest version
    (MonitoringClient.current_config), so every change to that needs approval: its config
    (update, rollback), and registering a newer version that becomes the latest."""
    registry = Registry(r, Settings.from_env({"MLOPS_REQUIRE_APPROVAL": "true"}))
    register_catalogue(registry)  # a model's first version changes nothing clients read
    assert registry.clients_version("queue-anomaly") == "1.0.0"
    assert registry.approval_needed("queue-anomaly", "1.0.0") is True
    with pytest.raises(ApprovalRequiredError, match="latest version, which clients read"):
        registry.set_config("queue-anomaly", actor="alice",
                            changes=[("decision_threshold", 0.55)])
    registry.set_config("queue-anomaly", actor="alice", approved_by="bob",
                        changes=[("decision_threshold", 0.55)])
    with pytest.raises(ApprovalRequiredError, match="needs --approved-by"):
        registry.rollback_config("queue-anomaly", actor="alice")
    cfg = ModelConfig.from_dict(registry.current("queue-anomaly", "1.0.0")["config"])
    with pytest.raises(ApprovalRequiredError, match="it becomes the latest version"):
        registry.register("queue-anomaly", "1.1.0", cfg, actor="alice")
    assert registry.versions("queue-anomaly") == ["1.0.0"]
    # a version below the latest does not change what clients read
    registry.register("queue-anomaly", "0.9.0", cfg, actor="alice")
    registry.register("queue-anomaly", "1.1.0", cfg, actor="alice", approved_by="Bob")
    assert registry.revisions("queue-anomaly", "1.1.0")[0]["approved_by"] == "Bob"
    assert registry.resolved("queue-anomaly", "latest")["version"] == "1.1.0"
    # the older version is no longer what clients read
    registry.set_config("queue-anomaly", actor="alice", version="1.0.0",
                        changes=[("decision_threshold", 0.6)])
    assert registry.approval_needed("queue-anomaly", "1.0.0") is False
    # and without required approval, nothing needs it
    free = Registry(r, Settings.from_env({}))
    assert free.approval_needed("queue-anomaly", "1.1.0") is False
    free.set_config("queue-anomaly", actor="alice", changes=[("decision_threshold", 0.65)])


def _update_many(url: str, worker: int, n: int) -> None:
    registry = Registry(redis.Redis.from_url(url, decode_responses=True), Settings.from_env({}))
    for i in range(n):
        registry.set_config("n1-detector", actor=f"w{worker}",
                            changes=[(f"params.w{worker}_{i}", i)])


def test_parallel_updates_never_lose_one(registry: Registry, redis_url: str) -> None:
    register_catalogue(registry)
    workers, per_worker = 8, 15
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_update_many, args=(redis_url, w, per_worker))
             for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    current = registry.current("n1-detector")
    params = current["config"]["params"]
    assert current["revision"] == 1 + workers * per_worker
    for w in range(workers):
        for i in range(per_worker):
            assert params[f"w{w}_{i}"] == i
    revisions = [h["revision"] for h in registry.revisions("n1-detector", "1.0.0")]
    assert revisions == list(range(1, 2 + workers * per_worker))


def test_the_read_cache_counts_hits_and_is_cleared_by_changes(registry: Registry) -> None:
    register_catalogue(registry)
    registry.deploy("n1-detector", "1.0.0", "production", actor="alice")
    first = registry.resolved("n1-detector")
    assert registry.resolved("n1-detector") == first
    assert registry.cache_stats() == {"hits": 1, "misses": 1}
    registry.set_config("n1-detector", actor="bob", changes=[("decision_threshold", 0.72)])
    fresh = registry.resolved("n1-detector")
    assert fresh["config"]["decision_threshold"] == 0.72 and fresh["revision"] == 2
    assert registry.cache_stats() == {"hits": 1, "misses": 2}
    assert registry.resolved("queue-anomaly", "latest")["version"] == "1.0.0"
    with pytest.raises(NotFoundError):
        registry.resolved("queue-anomaly", "production")


def test_keys_of_one_model_share_a_hash_tag(registry: Registry, r: redis.Redis) -> None:
    register_catalogue(registry)
    registry.deploy("n1-detector", "1.0.0", "production", actor="alice")
    model_keys = [k for k in r.scan_iter("mlops:*") if "n1-detector" in k]
    assert len(model_keys) >= 5
    assert all(k.startswith("mlops:{n1-detector}:") for k in model_keys)
    assert keys.family("mlops:{n1-detector}:rev:1.0.0") == "rev"


def test_semantic_versions_sort_by_precedence() -> None:
    assert ordered(["1.10.0", "1.2.0", "1.0.0", "1.0.0-beta", "1.0.0-alpha.1", "1.0.0-alpha"]) == [
        "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "1.0.0", "1.2.0", "1.10.0"]


def test_model_names_and_versions_are_validated(registry: Registry) -> None:
    cfg = builtin_models(registry.settings)[0].config
    with pytest.raises(ValidationError, match=r"^name: expected a model name"):
        registry.register("Bad Name{x}", "1.0.0", cfg, actor="a")
    with pytest.raises(ValidationError, match=r"^version: expected a semantic version"):
        registry.register("custom", "1.0", cfg, actor="a")


@pytest.mark.slow
def test_the_registry_survives_a_redis_restart(tmp_path) -> None:
    from .redis_server import RedisServer

    server = RedisServer(tmp_path / "redis", appendonly=True, appendfsync="always").start()
    try:
        registry = Registry(server.client(), Settings.from_env({}))
        register_catalogue(registry)
        registry.set_config("n1-detector", actor="bob", changes=[("decision_threshold", 0.7)])
        registry.deploy("n1-detector", "1.0.0", "production", actor="carol")
        server.kill()  # no clean shutdown: the append-only file alone must hold everything
        server.start()
        registry = Registry(server.client(), Settings.from_env({}))
        assert registry.model_names() == ["n1-detector", "queue-anomaly", "waf-behavioral"]
        assert registry.describe("n1-detector")["config"]["decision_threshold"] == 0.7
        assert registry.deployment("n1-detector", "production")["deployed_by"] == "carol"
        assert len(registry.audit_log("n1-detector")) == 3
        server.restart()  # and a graceful restart
        registry = Registry(server.client(), Settings.from_env({}))
        assert registry.describe("n1-detector")["revision"] == 2
    finally:
        server.stop()


def test_auto_tuning_under_required_approval_changes_nothing_clients_read(
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given required approval and a model clients read through the latest-version fallback,
    when the auto-tuner finds a better threshold, then it is not applied: the auto-tuner's
    own policy approval is no person's approval."""
    from mlops_tasks.tuning.engine import run_tuning

    from .pipeline_support import Pipeline
    from .test_tuning import feed_calibrated

    monkeypatch.setenv("MLOPS_REQUIRE_APPROVAL", "true")
    pipe = Pipeline(redis_url)
    feed_calibrated(pipe, "n1-detector", 4000, best=0.75)
    run = run_tuning(pipe.svc, "n1-detector")["runs"][0]
    assert run["applied"] is False
    current = pipe.svc.registry.current("n1-detector")
    assert (current["revision"], current["config"]["decision_threshold"]) == (1, 0.6)
    assert [e["action"] for e in pipe.svc.registry.audit_log("n1-detector")] == ["register"]
