"""Beat's state: the leader and every beat process, from the heartbeat keys beat writes.

Each beat process, leader or standby, keeps a heartbeat key with a TTL (beat/scheduler.py); the
leader also keeps ``keys.BEAT_LEADER``. Beat is alive when the leader's heartbeat is younger
than three scheduler ticks (at least 10 s).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis

from .. import keys
from ..settings import Settings
from ..timefmt import iso


@dataclass(frozen=True)
class BeatInstance:
    """One beat process, as its last heartbeat describes it."""

    id: str
    host: str
    pid: int
    role: str  # "leader" or "standby"
    heartbeat_at: float
    started_at: float | None

    @classmethod
    def from_heartbeat(cls, doc: dict[str, Any]) -> BeatInstance:
        return cls(id=str(doc["id"]), host=str(doc["host"]), pid=int(doc["pid"]),
                   role=str(doc.get("role", "")), heartbeat_at=float(doc["at"]),
                   started_at=doc.get("started_at"))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "host": self.host, "pid": self.pid, "role": self.role,
                "last_heartbeat_at": iso(self.heartbeat_at)}


@dataclass(frozen=True)
class BeatState:
    alive: bool
    leader: BeatInstance | None
    heartbeat_age_s: float | None  # of the leader's heartbeat, when the state was read
    stale_after_s: float
    takeover_within_s: float
    instances: tuple[BeatInstance, ...]

    def to_dict(self) -> dict[str, Any]:
        lead = self.leader
        return {"alive": self.alive,
                "leader": f"{lead.id}@{lead.host} (pid {lead.pid})" if lead else None,
                "last_heartbeat_at": iso(lead.heartbeat_at) if lead else None,
                "leader_started_at": lead.started_at if lead else None,
                "stale_after_s": self.stale_after_s,
                "takeover_within_s": self.takeover_within_s,
                "instances": [i.to_dict() for i in self.instances]}


def stale_after_s(settings: Settings) -> float:
    """A leader heartbeat older than this means beat is not running."""
    return max(10.0, 3 * settings.beat_max_interval_s)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def record_heartbeat(client: redis.Redis, doc: dict[str, Any], ttl_s: int,
                     leader: bool) -> None:
    """What a beat process writes every tick: its heartbeat (``doc``, with its ``id``) under
    its own key and its id in the set of instances; the leader's also as the leader's."""
    text = json.dumps(doc)
    pipe = client.pipeline(transaction=False)  # the keys span cluster slots
    pipe.set(keys.beat_instance(doc["id"]), text, ex=ttl_s)
    pipe.sadd(keys.BEAT_INSTANCES, doc["id"])
    if leader:
        pipe.set(keys.BEAT_LEADER, text, ex=ttl_s)
    pipe.execute()


def forget_instance(client: redis.Redis, instance_id: str, leader: bool) -> None:
    """A beat process stopping: its heartbeat (and the leader's, if it led) goes now."""
    pipe = client.pipeline(transaction=False)
    pipe.delete(keys.beat_instance(instance_id))
    pipe.srem(keys.BEAT_INSTANCES, instance_id)
    if leader:
        pipe.delete(keys.BEAT_LEADER)
    pipe.execute()


def beat_state(client: redis.Redis, settings: Settings, now: float | None = None) -> BeatState:
    """The leader, its heartbeat's age and every beat process with a live heartbeat (read
    from the set of instances, not by scanning the keyspace)."""
    now = time.time() if now is None else now
    ids = sorted(_text(i) for i in client.smembers(keys.BEAT_INSTANCES))
    pipe = client.pipeline(transaction=False)  # GETs, not MGET: the keys span cluster slots
    for instance_id in ids:
        pipe.get(keys.beat_instance(instance_id))
    found = pipe.execute() if ids else []
    expired = [i for i, v in zip(ids, found, strict=True) if not v]
    if expired:  # processes that died without saying so: their heartbeats expired
        client.srem(keys.BEAT_INSTANCES, *expired)
    docs = [json.loads(v) for v in found if v]
    raw = client.get(keys.BEAT_LEADER)
    leader = BeatInstance.from_heartbeat(json.loads(raw)) if raw else None
    stale = stale_after_s(settings)
    age = now - leader.heartbeat_at if leader else None
    return BeatState(alive=age is not None and age <= stale, leader=leader,
                     heartbeat_age_s=age, stale_after_s=stale,
                     takeover_within_s=settings.beat_takeover_s,
                     instances=tuple(BeatInstance.from_heartbeat(d) for d in docs))
