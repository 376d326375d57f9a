"""Writes of the ingest path: one Lua call per batch applies everything exactly once.

A batch's increments are turned into plain Redis commands here, then handed to ``ingest.lua``,
which checks that the batch was not applied before, runs them and marks the batch applied in the
same atomic step; a redelivered batch changes nothing. Batches of a producer that numbers them
(``<producer>.<seq>``) are remembered by a per-producer watermark, others by a marker each (see
``lua/dedup.lua``). Labels first claim their pending predictions with ``claim.lua`` (recorded,
so a crash between claim and apply loses nothing).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import redis

from .. import keys
from ..connection import ReplicaWait
from ..lua_scripts import DEDUP, LINEAR_HASH, source
from ..timebuckets import Granularity
from . import events
from .increments import HIST_SIZE, RECENT_SIZE, Increments

DEFAULT_MARKER_TTL_S = 7200
# A producer's seen hash outlives its last batch by as long as a journaled batch can come back.
SEEN_TTL_S = 7 * 86400
DEAD_LETTER_CAP = 10_000
UNROUTED_NAMES_CAP = 1000
_LPUSH_CHUNK = 1000
# unpack() in Redis's Lua takes a few thousand values at most: every write stays well below
MAX_COMMAND_ARGS = 4000

APPLIED, DUPLICATE, WRONG_TYPE, PARTIAL = 0, 1, 3, 4

# The type each write needs its key to hold (the apply script checks them before writing).
_KEY_TYPES = {"BITFIELD": "string", "HIST": "string", "HINCRBY": "hash", "HINCRBYFLOAT": "hash",
              "HSET": "hash",
              "LPUSH": "list", "LTRIM": "list", "ZINCRBY": "zset", "ZREMRANGEBYRANK": "zset"}


class KeyTypeError(redis.ResponseError):
    """A key the batch writes holds another type: nothing was written, and the batch is retried
    (with backoff) until the key is repaired."""


@dataclass(frozen=True)
class Applied:
    status: int  # APPLIED, DUPLICATE or PARTIAL
    duplicates: int  # prediction ids already pending
    error: str | None = None  # PARTIAL: the write that failed

    @property
    def applied(self) -> bool:
        return self.status != DUPLICATE

Command = list[Any]


def id_digest(prediction_id: str) -> bytes:
    """8-byte digest of a prediction id: the field of the pending table."""
    return hashlib.blake2b(prediction_id.encode(), digest_size=8).digest()


# A histogram's increments as the apply script reads them (``HIST`` in lua/ingest.lua): one
# 6-byte entry per nonzero bin, its index and its count, little-endian. One argument instead of
# four per bin: building, sending and unpacking 10,000 arguments a batch was most of its cost.
_HIST_ENTRY = np.dtype([("bin", "<u2"), ("count", "<u4")])


def hist_entries(hist: np.ndarray) -> bytes:
    """The nonzero bins of a histogram increment, packed as ``_HIST_ENTRY``s."""
    nz = np.flatnonzero(hist)
    if nz.size == 0:
        return b""
    counts = hist[nz]
    if int(counts.max()) >= 2**32 or int(counts.min()) < 0 or int(nz[-1]) >= 2**16:
        raise ValueError("a histogram increment is out of range")
    rec = np.empty(nz.size, dtype=_HIST_ENTRY)
    rec["bin"] = nz
    rec["count"] = counts
    return rec.tobytes()


def hist_type(gran: str) -> str:
    """Day buckets may count billions per bin; minute and hour buckets never reach 2**32."""
    return "i64" if gran == "d" else "u32"


def marker_ttl_s(visibility_timeout_s: int) -> int:
    """How long a batch is remembered as applied: a redelivery comes at most one visibility
    timeout (plus a restore scan) after the delivery that applied it; twice that is safe."""
    return max(DEFAULT_MARKER_TTL_S, 2 * visibility_timeout_s + 600)


class AggregateStore:
    def __init__(self, raw: redis.Redis, marker_ttl_s: int = DEFAULT_MARKER_TTL_S,
                 replicas: int = 0) -> None:
        """``raw`` must not decode responses: records and histograms are binary. ``replicas``:
        a batch counts as applied once that many replicas have its writes (Sentinel)."""
        self.redis = raw
        self.marker_ttl_s = marker_ttl_s
        self.replicas = ReplicaWait(replicas) if replicas else None
        self._ingest = raw.register_script(source("ingest.lua", (LINEAR_HASH, DEDUP)))
        self._claim = raw.register_script(source("claim.lua", (LINEAR_HASH, DEDUP)))
        self._vidx = raw.register_script(source("version_index.lua"))

    # --------------------------------------------------------------- version index
    def version_index(self, model: str, version: str) -> int:
        idx = int(self._vidx(keys=[keys.version_index(model)], args=[version]))
        if idx > 255:
            raise ValueError(f"model {model} has more than 256 versions with events")
        return idx

    def version_names(self, model: str) -> dict[int, str]:
        raw = cast("dict[bytes, bytes]", self.redis.hgetall(keys.version_index(model)))
        return {int(v): k.decode() for k, v in raw.items()}

    # --------------------------------------------------------------- commands
    def commands(self, model: str, inc: Increments,
                 grans: Iterable[Granularity]) -> list[Command]:
        by_code = {g.code: g for g in grans}
        out: list[Command] = []
        for (version, code, start), delta in inc.buckets.items():
            g = by_code[code]
            expire_at = g.expire_at(start)
            hkey = keys.hist(model, version, code, start)
            entries = hist_entries(delta.hist)
            if entries:
                out.append(["HIST", hkey, hist_type(code), HIST_SIZE, entries])
                out.append(["EXPIREAT", hkey, expire_at])
            akey = keys.agg(model, version, code, start)
            out.extend(_hash_increments(akey, delta.counts, delta.sums))
            out.append(["EXPIREAT", akey, expire_at])
        for version, delta in inc.totals.items():
            out.extend(_hash_increments(keys.total(model, version), delta.counts, delta.sums))
        for version, records in inc.recent.items():
            if records:
                rkey = keys.recent(model, version)
                out.append(["LPUSH", rkey, *records])
                out.append(["LTRIM", rkey, 0, RECENT_SIZE - 1])
        return out

    @staticmethod
    def dead_letter_commands(model: str, letters: list[dict[str, Any]]) -> list[Command]:
        """Push letters in chunks (one command per thousand), keep the newest DEAD_LETTER_CAP."""
        if not letters:
            return []
        key = keys.dead_letters(model)
        encoded = [json.dumps(x, default=str) for x in letters[-DEAD_LETTER_CAP:]]
        out: list[Command] = [["LPUSH", key, *encoded[i:i + _LPUSH_CHUNK]]
                              for i in range(0, len(encoded), _LPUSH_CHUNK)]
        out.append(["LTRIM", key, 0, DEAD_LETTER_CAP - 1])
        out.append(["HINCRBY", keys.counters(model), keys.F_DEAD_LETTERS, len(letters)])
        return out

    @staticmethod
    def unrouted_name_commands(name: str, events: int) -> list[Command]:
        """Count dead-lettered events under the name they gave; only the UNROUTED_NAMES_CAP
        names with the most events are kept."""
        key = keys.unrouted_names()
        return [["ZINCRBY", key, events, name],
                ["ZREMRANGEBYRANK", key, 0, -(UNROUTED_NAMES_CAP + 1)]]

    # --------------------------------------------------------------- scripts
    def _dedup_keys(self, model: str, batch_id: str) -> tuple[str, str, str]:
        """(marker key, seen key, seq argument) of a batch."""
        seq = events.sequence(batch_id)
        if seq is None:
            marker = keys.batch_done(model, batch_id)
            return marker, marker, ""
        return keys.batch_done(model, batch_id), keys.producer_seen(model, seq[0]), str(seq[1])

    def apply(self, model: str, batch_id: str, commands: list[Command],
              pending: Sequence[tuple[bytes, bytes]] = (), *,
              marker_only: bool = False) -> Applied:
        """Run a batch's writes once, and forget its journal entry. With ``marker_only`` the
        batch is remembered by a marker even if its id has a sequence. Raises KeyTypeError
        (nothing written) when a key holds another type than its writes need."""
        for cmd in commands:
            if len(cmd) > MAX_COMMAND_ARGS:
                raise ValueError(f"a {cmd[0]} write of {len(cmd)} arguments is more than "
                                 f"{MAX_COMMAND_ARGS}")
        marker, seen, seq = self._dedup_keys(model, batch_id)
        if marker_only:
            seen, seq = marker, ""
        checks = {keys.pending_meta(model): "hash", keys.counters(model): "hash"}
        if seq:
            checks[seen] = "hash"
        for cmd in commands:
            want = _KEY_TYPES.get(cmd[0])
            if want is not None:
                checks[cmd[1]] = want
        args: list[Any] = [self.marker_ttl_s, SEEN_TTL_S, batch_id, seq, keys.F_DUPLICATE_IDS,
                           keys.F_GAPS_FORGOTTEN, keys.F_PARTIAL_BATCHES, len(checks)]
        for key, want in checks.items():
            args.extend((key, want))
        args.append(len(pending))
        for field, value in pending:
            args.extend((field, value))
        for cmd in commands:
            args.append(len(cmd))
            args.extend(cmd)
        script_keys = [marker, seen, keys.pending_meta(model), keys.pending_prefix(model),
                       keys.counters(model), keys.journal_entry(model, batch_id),
                       keys.journal(model)]
        if self.replicas:
            # WAIT on the connection that wrote: the task is acknowledged (and the message
            # gone) only once the replicas have the batch, so a failover cannot lose it
            pipe = self.redis.pipeline(transaction=False)
            self._ingest(keys=script_keys, args=args, client=pipe)
            self.replicas.add(pipe)
            reply, acked, role = pipe.execute()
            self.replicas.check(acked, role)
        else:
            reply = self._ingest(keys=script_keys, args=args)
        status = int(reply[2])
        detail = reply[3].decode(errors="replace") if len(reply) > 3 else None
        if status == WRONG_TYPE:
            raise KeyTypeError(f"WRONGTYPE {detail}: batch {batch_id} not applied")
        return Applied(status, int(reply[1]), detail)

    def claim(self, model: str, batch_id: str,
              digests: list[bytes]) -> list[tuple[int, bytes]] | None:
        """Pending predictions of a label batch as (label index, record); None if the batch
        was already applied."""
        marker, seen, seq = self._dedup_keys(model, batch_id)
        result = self._claim(
            keys=[marker, seen, keys.batch_claim(model, batch_id), keys.pending_meta(model),
                  keys.pending_prefix(model)],
            args=[self.marker_ttl_s, seq, *digests])
        if isinstance(result, int):
            return None
        return [(int(result[i]), result[i + 1]) for i in range(0, len(result), 2)]


def _hash_increments(key: str, counts: dict[str, int], sums: dict[str, float]) -> list[Command]:
    out: list[Command] = [["HINCRBY", key, f, int(v)] for f, v in counts.items() if v]
    out.extend(["HINCRBYFLOAT", key, f, repr(float(v))] for f, v in sums.items() if v)
    return out
