"""The durable model registry: versions, configuration revisions, deployments and the audit trail.

Records never expire. Every change runs in one WATCH/MULTI transaction on the model's ``epoch``
key, so concurrent writers never lose an update (a writer whose read went stale retries), and the
change, its audit entry and the read-cache invalidation commit together or not at all.

Every record written (model metadata, a version, a revision, a deployment) is at most
``limits.MAX_RECORD_BYTES`` as JSON; a larger one is refused naming its largest field. Audit
entries hold a change's before and after configurations, each within that limit.

Approval (``MLOPS_REQUIRE_APPROVAL``) guards what clients read: the version deployed to
production, or the latest registered version while nothing is. ``_approve`` is the one rule.
"""

from __future__ import annotations

import json
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import redis
from redis.client import Pipeline
from redis.typing import EncodableT, FieldT

from .. import acl, keys, lua_scripts
from ..errors import ApprovalRequiredError, ConflictError, NotFoundError, ValidationError
from ..settings import Settings
from ..timefmt import iso
from . import semver
from .audit import AuditEntry
from .config import ModelConfig, apply_changes, validate_model_name
from .limits import encode_record, quote

ENVIRONMENTS = ("staging", "production")
LATEST = "latest"
CACHE_TARGETS = (*ENVIRONMENTS, LATEST)
WARM_TARGETS = ("production", LATEST)  # what `mlops cache warmup` resolves
# An approval names a person; these are policies, not people (the auto-tuner used one).
NOT_A_PERSON_PREFIXES = ("policy:",)

Reader = redis.Redis | Pipeline

@dataclass(frozen=True)
class CacheEntry:
    """What `mlops cache clear` / `cache warmup` did to one model's cached target."""

    model: str
    target: str  # production, staging or latest
    status: str  # cleared, empty (nothing was cached), cached, not deployed
    version: str | None = None  # the version cached (warmup)
    revision: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "target": self.target, "status": self.status,
                "version": self.version, "revision": self.revision}


@dataclass
class _Change:
    """What a transaction will write, decided from what it read."""

    result: dict[str, Any]
    audit: AuditEntry
    writes: list[Callable[[Pipeline], Any]] = field(default_factory=list)


class Registry:
    def __init__(self, client: redis.Redis, settings: Settings,
                 clock: Callable[[], float] = time.time, *, fills_cache: bool = True) -> None:
        """``fills_cache=False``: a miss of :meth:`resolved` reads the records and leaves the
        read cache to the workers and the operator (the detector role may not write it: a
        detector could otherwise serve every other reader a configuration of its own)."""
        self.redis = client
        self.settings = settings
        self.clock = clock
        self.fills_cache = fills_cache
        self._cached_get = client.register_script(lua_scripts.source("cached_get.lua"))
        self._redis_user: tuple[str | None] | None = None  # ACL WHOAMI, asked once

    # ------------------------------------------------------------------ reads
    def model_names(self) -> list[str]:
        names = sorted(cast("set[str]", self.redis.smembers(keys.MODELS)))
        if not names:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.exists(keys.meta(name))
        return [n for n, ok in zip(names, pipe.execute(), strict=True) if ok]

    def meta(self, name: str, r: Reader | None = None) -> dict[str, Any]:
        validate_model_name(name)
        data = cast("dict[str, Any]", (r or self.redis).hgetall(keys.meta(name)))
        if not data:
            raise NotFoundError(
                f"model {quote(name)} is not registered (see `mlops list-models`, "
                f"`mlops register-model {name}`)")
        data["builtin"] = data.get("builtin") == "1"
        return data

    def versions(self, name: str, r: Reader | None = None) -> list[str]:
        self.meta(name, r)
        return semver.ordered(cast("list[str]", (r or self.redis).hkeys(keys.versions(name))))

    def latest_version(self, name: str, r: Reader | None = None) -> str:
        versions = self.versions(name, r)
        if not versions:
            raise NotFoundError(f"model {quote(name)} has no versions")
        return versions[-1]

    def _require_version(self, name: str, version: str, r: Reader | None = None) -> None:
        semver.validate(version)
        if not (r or self.redis).hexists(keys.versions(name), version):
            known = ", ".join(self.versions(name, r)) or "none"
            raise NotFoundError(
                f"model {quote(name)} has no version {version} (registered: {known})")

    def deployments(self, name: str, r: Reader | None = None) -> dict[str, dict[str, Any] | None]:
        raw = (r or self.redis).hgetall(keys.deployments(name))
        return {env: (json.loads(raw[env]) if env in raw else None) for env in ENVIRONMENTS}

    def deployment(self, name: str, env: str, r: Reader | None = None) -> dict[str, Any] | None:
        _check_env(env)
        raw = (r or self.redis).hget(keys.deployments(name), env)
        return json.loads(raw) if raw else None

    def default_version(self, name: str, r: Reader | None = None) -> str:
        """The version production runs, else the latest registered one."""
        self.meta(name, r)
        deployed = self.deployment(name, "production", r)
        return deployed["version"] if deployed else self.latest_version(name, r)

    def revisions(self, name: str, version: str, r: Reader | None = None) -> list[dict[str, Any]]:
        self.meta(name, r)
        self._require_version(name, version, r)
        raw = (r or self.redis).lrange(keys.revisions(name, version), 0, -1)
        return [json.loads(x) for x in cast("list[str]", raw)]

    def current(self, name: str, version: str | None = None,
                r: Reader | None = None) -> dict[str, Any]:
        """The current revision record of a version: {revision, config, created_at, actor, ...}."""
        version = version or self.default_version(name, r)
        self.meta(name, r)
        self._require_version(name, version, r)
        raw = (r or self.redis).lindex(keys.revisions(name, version), -1)
        if raw is None:
            raise NotFoundError(f"{name} {version} has no configuration")
        record: dict[str, Any] = json.loads(raw)
        return record

    def describe(self, name: str, version: str | None = None,
                 env: str | None = None) -> dict[str, Any]:
        """A model as the CLI shows it: name, version, revision, config, deployments."""
        meta = self.meta(name)
        if env is not None:
            deployed = self.deployment(name, env)
            if deployed is None:
                raise NotFoundError(f"model {quote(name)} is not deployed to {env}")
            version = deployed["version"]
        version = version or self.default_version(name)
        rec = self.current(name, version)
        return {
            "name": name,
            "display_name": meta.get("display_name", name),
            "description": meta.get("description", ""),
            "version": version,
            "revision": rec["revision"],
            "config": rec["config"],
            "updated_at": rec["created_at"],
            "updated_by": rec["actor"],
            "versions": self.versions(name),
            "deployments": self.deployments(name),
        }

    def resolved(self, name: str, target: str = "production") -> dict[str, Any]:
        """The configuration in force for ``target`` (an environment or ``latest``), read through
        a cache that expires after ``MODEL_REGISTRY_CACHE_TTL`` and is cleared by every change."""
        if target not in CACHE_TARGETS:
            raise ValidationError(f"target: expected one of {', '.join(CACHE_TARGETS)}, "
                                  f"got {quote(target)}")
        validate_model_name(name)
        cache_keys = [keys.config_cache(name, target), keys.cache_stats(name)]
        counters = [keys.F_CACHE_HITS, keys.F_CACHE_MISSES]
        if self.fills_cache:
            cached = self._cached_get(keys=cache_keys, args=counters)
        else:  # a script's keys count as written; GET, then count, in two round trips
            cached = self.redis.get(cache_keys[0])
            self.redis.hincrby(cache_keys[1], counters[cached is None], 1)
        if cached is not None:
            hit: dict[str, Any] = json.loads(cached)
            return hit
        return self._fill_cache(name, target, write=self.fills_cache)

    def _fill_cache(self, name: str, target: str, *, write: bool = True) -> dict[str, Any]:
        """Resolve ``target``'s configuration and cache it (unless ``write`` is off), in a
        transaction on the epoch so a change committed meanwhile is never cached nor returned;
        counts neither a hit nor a miss."""
        cache_key = keys.config_cache(name, target)

        def fill(pipe: Pipeline) -> dict[str, Any]:
            if target == LATEST:
                version = self.default_version(name, pipe)
            else:
                deployed = self.deployment(name, target, pipe)
                if deployed is None:
                    raise NotFoundError(f"model {quote(name)} is not deployed to {target}")
                version = deployed["version"]
            rec = self.current(name, version, pipe)
            value = {"name": name, "version": version, "revision": rec["revision"],
                     "config": rec["config"], "target": target}
            pipe.multi()  # an empty transaction still fails when the epoch moved
            if write:
                pipe.set(cache_key, json.dumps(value),
                         ex=self.settings.model_registry_cache_ttl_s)
            return value

        return self._transaction(fill, keys.epoch(name))

    def _cache_names(self, name: str | None) -> list[str]:
        if name is None:
            return self.model_names()
        self.meta(name)
        return [name]

    def clear_cache(self, name: str | None = None) -> list[CacheEntry]:
        """Delete the resolved-configuration read cache of one model or all of them (never a
        registry record); one entry per model and target, saying whether one was cached."""
        names = self._cache_names(name)
        pipe = self.redis.pipeline(transaction=False)
        for n in names:
            for target in CACHE_TARGETS:
                pipe.delete(keys.config_cache(n, target))
        deleted = iter(pipe.execute())
        return [CacheEntry(model=n, target=t, status="cleared" if next(deleted) else "empty")
                for n in names for t in CACHE_TARGETS]

    def warm_cache(self, name: str | None = None) -> list[CacheEntry]:
        """Resolve and cache the production and latest configurations of one model or all of
        them; a model not in production says so rather than failing the rest."""
        out = []
        for n in self._cache_names(name):
            for target in WARM_TARGETS:
                try:
                    value = self._fill_cache(n, target)
                except NotFoundError:
                    out.append(CacheEntry(model=n, target=target, status="not deployed"))
                    continue
                out.append(CacheEntry(model=n, target=target, status="cached",
                                      version=value["version"], revision=value["revision"]))
        return out

    def cache_stats(self) -> dict[str, int]:
        hits = misses = 0
        for name in self.model_names():
            stats = self.redis.hgetall(keys.cache_stats(name))
            hits += int(stats.get(keys.F_CACHE_HITS, 0))
            misses += int(stats.get(keys.F_CACHE_MISSES, 0))
        return {"hits": hits, "misses": misses}

    def audit_log(self, name: str | None = None, limit: int = 50) -> list[AuditEntry]:
        """Audit entries, newest first, for one model or all of them."""
        names = [name] if name else self.model_names()
        if name:
            self.meta(name)
        entries: list[tuple[str, str, dict[str, Any]]] = []
        for n in names:
            stream = cast("list[tuple[str, dict[str, str]]]",
                          self.redis.xrevrange(keys.audit(n), count=limit))
            for entry_id, fields in stream:
                entries.append((entry_id, n, json.loads(fields["entry"])))
        entries.sort(key=lambda e: tuple(int(p) for p in e[0].split("-")), reverse=True)
        return [AuditEntry.from_stream(n, i, e) for i, n, e in entries[:limit]]

    # ------------------------------------------------------------------ writes
    def _transaction(self, tx: Callable[[Pipeline], dict[str, Any]],
                     key: str) -> dict[str, Any]:
        """Run ``tx`` in a WATCH/MULTI transaction on ``key`` (again while the key changes under
        it) and return what it returned; redis-py's stub types ``tx`` as returning None."""
        run = cast("Callable[[Pipeline], None]", tx)
        return cast("dict[str, Any]", self.redis.transaction(run, key, value_from_callable=True))

    def _transact(self, name: str, plan: Callable[[Pipeline], _Change]) -> dict[str, Any]:
        """Run a change; PermissionDeniedError when Redis refuses it to this connection's ACL
        user. Its audit entry records that user as Redis names it."""
        def tx(pipe: Pipeline) -> dict[str, Any]:
            change = plan(pipe)
            audit = replace(change.audit, redis_user=self._whoami())
            pipe.multi()
            for write in change.writes:
                write(pipe)
            pipe.incr(keys.epoch(name))
            pipe.delete(*(keys.config_cache(name, t) for t in CACHE_TARGETS))
            pipe.xadd(keys.audit(name), {"entry": json.dumps(audit.to_dict())})
            return change.result

        try:
            return self._transaction(tx, keys.epoch(name))
        except redis.exceptions.NoPermissionError as exc:
            raise acl.denied(acl.client_user(self.redis), f"change model {quote(name)} in the "
                             "registry", exc) from None

    def _whoami(self) -> str | None:
        if self._redis_user is None:
            self._redis_user = (acl.whoami(self.redis),)
        return self._redis_user[0]

    def clients_version(self, name: str, r: Reader | None = None) -> str | None:
        """The version clients read (``MonitoringClient.current_config``): production's, else
        the latest registered one; None while the model has no version."""
        deployed = self.deployment(name, "production", r)
        if deployed is not None:
            return cast("str", deployed["version"])
        versions = semver.ordered(cast("list[str]", (r or self.redis).hkeys(keys.versions(name))))
        return versions[-1] if versions else None

    def approval_needed(self, name: str, version: str) -> bool:
        """Whether changing ``version``'s configuration needs ``--approved-by`` now; for a
        caller that should record rather than be refused (the auto-tuner)."""
        return self.settings.require_approval and version == self.clients_version(name)

    def _approve(self, name: str, r: Reader, *, actor: str, approved_by: str | None,
                 deploy_to: str | None = None, config_of: str | None = None,
                 registering: str | None = None) -> None:
        """The approval rule, for every change (exactly one of ``deploy_to``, ``config_of``,
        ``registering`` is given). With MLOPS_REQUIRE_APPROVAL on, a change to what clients
        read needs an approver, a person other than the actor:
          - a deploy (or rollback) to production;
          - a configuration change of the version clients read: production's, else the
            latest registered one;
          - registering a version that becomes the latest while nothing is in production.
        Registering a model's first version changes nothing clients were reading."""
        if not self.settings.require_approval:
            return
        if deploy_to is not None:
            what = f"changing {name} in production" if deploy_to == "production" else None
        else:
            reads = self.clients_version(name, r)
            in_production = self.deployment(name, "production", r) is not None
            where = "in production" if in_production else \
                "(the latest version, which clients read while nothing is in production)"
            if config_of is not None:
                what = f"changing {name} {config_of} {where}" if config_of == reads else None
            else:
                becomes_latest = registering is not None and reads is not None and \
                    not in_production and semver.sort_key(registering) > semver.sort_key(reads)
                what = (f"registering {name} {registering} (it becomes the latest version, "
                        f"which clients read while nothing is in production)"
                        if becomes_latest else None)
        if what is None:
            return
        approver = person(approved_by)
        if not approver:
            raise ApprovalRequiredError(
                f"{what} needs --approved-by NAME (MLOPS_REQUIRE_APPROVAL is on)")
        if approver == person(actor):
            raise ApprovalRequiredError(
                f"--approved-by must name someone other than the actor {quote(actor)} "
                f"(names are compared ignoring case, width and spacing)")
        if approver.startswith(NOT_A_PERSON_PREFIXES):
            raise ApprovalRequiredError(
                f"--approved-by: {quote(approved_by)} is a policy, not a person; {what} needs "
                f"a person's approval (MLOPS_REQUIRE_APPROVAL is on)")

    def register(self, name: str, version: str, config: ModelConfig, *, actor: str,
                 display_name: str | None = None, description: str = "",
                 builtin: bool = False, exist_ok: bool = False,
                 approved_by: str | None = None) -> dict[str, Any]:
        """Register a version with its first configuration revision. Returns
        ``{"name", "version", "created"}``; ``created`` is False when it already existed and
        ``exist_ok`` was given."""
        validate_model_name(name)
        semver.validate(version)
        for field_name, text in (("display_name", display_name), ("description", description)):
            if text is not None and not isinstance(text, str):
                raise ValidationError(f"{field_name}: expected text, got {quote(text)}")
        self.redis.sadd(keys.MODELS, name)  # index first: a reader filters names without meta

        def plan(pipe: Pipeline) -> _Change:
            now = self.clock()
            if pipe.hexists(keys.versions(name), version):
                if exist_ok:
                    raise _UnchangedError({"name": name, "version": version, "created": False})
                raise ConflictError(f"{name} {version} is already registered")
            is_new_model = not pipe.exists(keys.meta(name))
            record = {"version": version, "registered_at": iso(now, ms=True),
                      "registered_by": actor, "description": description,
                      "approved_by": approved_by}
            revision = {"revision": 1, "config": config.to_dict(), "created_at": iso(now, ms=True),
                        "actor": actor, "action": "register", "approved_by": approved_by,
                        "reason": None}
            writes: list[Callable[[Pipeline], Any]] = []
            if is_new_model:
                meta = {"display_name": display_name or name, "description": description,
                        "created_at": iso(now, ms=True), "created_by": actor,
                        "builtin": "1" if builtin else "0"}
                encode_record("model metadata", meta)
                # redis-py types a mapping's keys invariantly: str keys need the cast
                fields = cast("Mapping[FieldT, EncodableT]", meta)
                writes.append(lambda p: p.hset(keys.meta(name), mapping=fields))
            record_json = encode_record("version record", record)
            revision_json = encode_record("revision", revision)
            self._approve(name, pipe, actor=actor, approved_by=approved_by, registering=version)
            writes.append(lambda p: p.hset(keys.versions(name), version, record_json))
            writes.append(lambda p: p.rpush(keys.revisions(name, version), revision_json))
            return _Change(
                result={"name": name, "version": version, "created": True},
                audit=AuditEntry.of(action="register", model=name, actor=actor,
                                    version=version, revision=1, after=config.to_dict(),
                                    approved_by=approved_by, at=now),
                writes=writes)

        try:
            return self._transact(name, plan)
        except _UnchangedError as unchanged:
            return unchanged.result

    def set_config(self, name: str, *, actor: str, version: str | None = None,
                   changes: Sequence[tuple[str, Any]] = (),
                   build: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                   action: str = "update-config", approved_by: str | None = None,
                   reason: str | None = None) -> dict[str, Any]:
        """Write a new revision of a version's configuration.

        The new config is the current one with ``changes`` applied (dotted-path assignments) or,
        when ``build`` is given, ``build(current_config)``; it is validated before writing.
        Returns the new revision record plus ``version``, ``before`` and ``changed``."""
        self.meta(name)

        def plan(pipe: Pipeline) -> _Change:
            now = self.clock()
            ver = version or self.default_version(name, pipe)
            current = self.current(name, ver, pipe)
            before = current["config"]
            after = build(before) if build else apply_changes(before, list(changes))
            after = ModelConfig.from_dict(after).to_dict()
            if after == before:
                raise _UnchangedError(dict(current, version=ver, before=before, changed=False))
            self._approve(name, pipe, actor=actor, approved_by=approved_by, config_of=ver)
            rev = current["revision"] + 1
            record = {"revision": rev, "config": after, "created_at": iso(now, ms=True),
                      "actor": actor, "action": action, "approved_by": approved_by,
                      "reason": reason}
            record_json = encode_record("revision", record)
            return _Change(
                result=dict(record, version=ver, before=before, changed=True),
                audit=AuditEntry.of(action=action, model=name, actor=actor, version=ver,
                                    revision=rev, before=before, after=after,
                                    approved_by=approved_by, reason=reason, at=now),
                writes=[lambda p: p.rpush(keys.revisions(name, ver), record_json)])

        try:
            return self._transact(name, plan)
        except _UnchangedError as unchanged:
            return unchanged.result

    def rollback_config(self, name: str, *, actor: str, version: str | None = None,
                        to_revision: int | None = None,
                        approved_by: str | None = None) -> dict[str, Any]:
        """Restore an earlier revision (default: the previous one) as a new revision."""
        ver = version or self.default_version(name)
        history = self.revisions(name, ver)
        latest = history[-1]["revision"]
        target = latest - 1 if to_revision is None else to_revision
        if target < 1 or target > latest:
            raise NotFoundError(
                f"{name} {ver} has no revision {target} (revisions 1..{latest})"
                if to_revision is not None else f"{name} {ver} has only one revision")
        if target == latest:
            raise ConflictError(f"{name} {ver} is already at revision {latest}")
        restored = history[target - 1]["config"]
        result = self.set_config(
            name, actor=actor, version=ver, build=lambda _current: restored,
            action="rollback-config", approved_by=approved_by,
            reason=f"restore revision {target}")
        result["restored_revision"] = target
        return result

    def deploy(self, name: str, version: str, env: str, *, actor: str,
               approved_by: str | None = None, action: str = "deploy") -> dict[str, Any]:
        """Deploy a registered version to an environment, recording who, when and what it
        replaced. Returns the deployment record plus ``previous`` and ``changed``."""
        _check_env(env)
        self.meta(name)
        self._require_version(name, version)

        def plan(pipe: Pipeline) -> _Change:
            now = self.clock()
            previous = self.deployment(name, env, pipe)
            if previous and previous["version"] == version:
                raise _UnchangedError(dict(previous, previous=previous, changed=False))
            self._approve(name, pipe, actor=actor, approved_by=approved_by, deploy_to=env)
            rev = self.current(name, version, pipe)["revision"]
            record = {"env": env, "version": version, "revision": rev,
                      "deployed_at": iso(now, ms=True), "deployed_ts": now, "deployed_by": actor,
                      "approved_by": approved_by, "action": action}
            record_json = encode_record("deployment record", record)
            writes: list[Callable[[Pipeline], Any]] = [
                lambda p: p.hset(keys.deployments(name), env, record_json)]
            if previous:
                writes.append(lambda p: p.lpush(keys.deploy_log(name, env), json.dumps(previous)))
            return _Change(
                result=dict(record, previous=previous, changed=True),
                audit=AuditEntry.of(action=action, model=name, actor=actor, version=version,
                                    env=env, revision=rev,
                                    before=previous["version"] if previous else None,
                                    after=version, approved_by=approved_by, at=now),
                writes=writes)

        try:
            return self._transact(name, plan)
        except _UnchangedError as unchanged:
            return unchanged.result

    def deploy_history(self, name: str, env: str) -> list[dict[str, Any]]:
        """Earlier deployments of an environment, newest first."""
        _check_env(env)
        self.meta(name)
        return [json.loads(x) for x in self.redis.lrange(keys.deploy_log(name, env), 0, -1)]

    def rollback(self, name: str, *, actor: str, env: str = "production",
                 to_version: str | None = None, approved_by: str | None = None) -> dict[str, Any]:
        """Redeploy ``to_version``, or the version deployed before the current one."""
        current = self.deployment(name, env)
        if current is None:
            raise NotFoundError(
                f"model {quote(name)} is not deployed to {env}; nothing to roll back")
        if to_version is None:
            earlier = [d["version"] for d in self.deploy_history(name, env)
                       if d["version"] != current["version"]]
            if not earlier:
                raise ConflictError(
                    f"{name} has no earlier version deployed to {env}; name one with --to-version")
            to_version = earlier[0]
        if to_version == current["version"]:
            raise ConflictError(f"{name} {to_version} is already deployed to {env}")
        return self.deploy(name, to_version, env, actor=actor, approved_by=approved_by,
                           action="rollback")

    def rollback_version(self, name: str, *, actor: str, env: str = "production",
                         approved_by: str | None = None) -> dict[str, Any]:
        """Deploy the registered version just below the one deployed now."""
        current = self.deployment(name, env)
        if current is None:
            raise NotFoundError(
                f"model {quote(name)} is not deployed to {env}; nothing to roll back")
        lower = [v for v in self.versions(name)
                 if semver.sort_key(v) < semver.sort_key(current["version"])]
        if not lower:
            raise ConflictError(
                f"{name} has no version below {current['version']} to roll back to")
        return self.deploy(name, lower[-1], env, actor=actor, approved_by=approved_by,
                           action="rollback")


class _UnchangedError(Exception):
    """Raised inside a transaction plan to end it without writing anything."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("unchanged")
        self.result = result


def person(name: str | None) -> str:
    """A name as approval compares it: Unicode NFKC, case-folded, invisible format characters
    (zero-width spaces, direction marks) dropped, whitespace collapsed, so 'Alice', ' alice ',
    full-width 'ＡＬＩＣＥ' and 'ali' + U+200B + 'ce' are one person."""  # noqa: RUF002 - the example
    if not name:
        return ""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    visible = "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
    return " ".join(visible.split())


def _check_env(env: str) -> None:
    if env not in ENVIRONMENTS:
        raise ValidationError(f"env: expected one of {', '.join(ENVIRONMENTS)}, got {quote(env)}")
