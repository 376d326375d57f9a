"""The Redis key schema: every key this project reads or writes is built here.

All keys of one model share the hash tag ``{<model>}`` so that multi-key transactions and Lua
scripts touching one model land in one slot on Redis Cluster. Model names are validated
(``[a-z0-9][a-z0-9._-]*``) so they can never contain a brace or a colon.

Global (no model)
    mlops:models                        SET     names of registered models

Per model ``m``
    mlops:{m}:epoch                     STRING  incremented by every registry change (WATCHed)
    mlops:{m}:meta                      HASH    display_name, description, created_at,
                                                created_by, builtin
    mlops:{m}:versions                  HASH    version -> JSON version record
    mlops:{m}:rev:<version>             LIST    configuration revisions, JSON; revision n at
                                                index n-1
    mlops:{m}:deploy                    HASH    env -> JSON deployment record
    mlops:{m}:deploy-log:<env>          LIST    earlier deployment records of env, newest first
    mlops:{m}:audit                     STREAM  audit entries (never trimmed)
    mlops:{m}:cache:<target>            STRING  resolved configuration (read cache, TTL)
    mlops:{m}:stats:cache               HASH    read-cache counters: hits, misses

Ingest and aggregates, per model ``m`` and version ``v`` (``g`` is m|h|d, ``t`` a bucket start)
    mlops:{m}:agg:<v>:<g>:<t>           HASH    bucket counters: n, labeled, tp, fp, tn, fn, sums,
                                                latency and label-delay histograms (TTL)
    mlops:{m}:hist:<v>:<g>:<t>          STRING  score histograms, 5 rows x 1001 bins, BITFIELD (TTL)
    mlops:{m}:total:<v>                 HASH    the same counters since the version's first event
    mlops:{m}:recent:<v>                LIST    last 1000 labeled outcomes, packed, newest first
    mlops:{m}:vidx                      HASH    version -> small integer used in packed records
    mlops:{m}:pending:meta              HASH    linear-hashing state: level, split, count
                                                (lua/linear_hash.lua)
    mlops:{m}:pending:<n>               HASH    8-byte id digest -> 12-byte packed prediction
    mlops:{m}:counters                  HASH    ingest and cleanup counters (the F_* fields below)
    mlops:{m}:dead                      LIST    dead letters (JSON), newest first, capped
    mlops:{m}:seen:<producer>           HASH    batches of a producer applied: watermark w, holes
                                                and out-of-order seqs (lua/dedup.lua; TTL 7 days)
    mlops:{m}:done:<batch>              STRING  marks an applied batch whose id has no sequence
                                                (TTL): idempotent ingest
    mlops:{m}:claim:<batch>             LIST    pending records claimed by a label batch (TTL)
    mlops:{m}:journal                   ZSET    batch id -> time sent, until the batch is applied
    mlops:{m}:journal:<batch>           STRING  the batch as sent (task and body, JSON; TTL)

Monitoring and alerting, per model ``m``
    mlops:{m}:monitor                   STRING  last monitoring result (JSON)
    mlops:{m}:degradation               STRING  last degradation check (JSON)
    mlops:{m}:baseline:<v>              STRING  the version's baseline metrics and histograms
                                                (JSON)
    mlops:{m}:detectors:<v>             STRING  degradation and drift detectors' state (JSON)
    mlops:{m}:alerts:active             HASH    fingerprint -> firing alert (JSON)
    mlops:{m}:alerts:history            LIST    fired and resolved alerts (JSON), newest first,
                                                capped
    mlops:{m}:alerts:fired              HASH    "<kind>:<severity>" -> alerts fired (/metrics)
    mlops:{m}:alerts:audit-cursor       STRING  last audit entry announced as config_updated

    mlops:{m}:tuning:history            LIST    tuning runs (JSON), newest first, capped
    mlops:{m}:tuning:applied            STRING  time of the last applied tuning (cool-down)
    mlops:{m}:lock:<job>                STRING  a job's lock on this model (TTL)

Per scheduled job ``j`` (its name as a hash tag, like a model's: updated together)
    mlops:{j}:job                       HASH    facts of a scheduled job's runs
    mlops:{j}:job:outcomes              LIST    1/0 outcomes of its last 100 runs

Global
    mlops:beat:instance:<id>            STRING  a beat process: host, pid, role, heartbeat (JSON,
                                                TTL)
    mlops:beat:instances                SET     ids of those processes (an id whose key expired
                                                is dropped by the next reader)
    mlops:beat:leader                   STRING  the leading beat's last heartbeat (JSON, TTL)
    mlops:beat:restart                  STRING  the latest `scheduler restart` request (JSON)
    mlops:beat:redbeat:<job>            HASH    celery-redbeat's schedule entry of a job (field
                                                meta: its last run)
    mlops:beat:redbeat:lock             STRING  celery-redbeat's lock
    mlops:silences                      HASH    silence id -> silence (JSON)
    mlops:notifications                 LIST    notification log (JSON), newest first, capped
    mlops:alerts:cache-samples          ZSET    registry cache counter samples (JSON) by time,
                                                for registry_cache_miss_rate (TTL 2 h)

Alerts not about a model (scheduler_job_failing, cleanup_completed, registry_cache_miss_rate)
are stored under a system subject in place of ``m``: a scheduled job's name or ``registry``
(alerts/subjects.py). Alert history also holds info events (status ``event``).

Batches for unregistered or malformed model names are dead-lettered under the pseudo-model
``_unrouted`` (no valid model name starts with "_"): mlops:{_unrouted}:dead, :counters,
:done:<batch> and :names (ZSET: dead-lettered events per name as given, printable and at most
64 characters; the 1,000 names with the most events are kept).

Registry records never carry a TTL; aggregate buckets, markers and caches do.

Field names that code outside this module reads or writes are the ``F_*`` constants; the Lua
scripts get them as ARGV (see their headers), except the linear-hashing and dedup state that only
``lua/linear_hash.lua`` and ``lua/dedup.lua`` own.
"""

from __future__ import annotations

PREFIX = "mlops"

ALL = f"{PREFIX}:*"  # SCAN pattern of every key of the project (and of no broker key)
MODELS = f"{PREFIX}:models"

# Fields of counters(m), each counting since the model was registered:
F_DEAD_LETTERS = "dead_letters"  # events rejected and kept in dead_letters(m)
F_ORPHAN_LABELS = "orphan_labels"  # labels whose prediction never arrived (after retries)
F_LABELS_JOINED = "labels_joined"  # labels joined to their pending prediction
F_DUPLICATE_IDS = "duplicate_ids"  # predictions whose id was already pending (lua/ingest.lua)
F_GAPS_FORGOTTEN = "gaps_forgotten"  # batch seqs no longer remembered as missing (lua/dedup.lua)
F_PARTIAL_BATCHES = "partial_batches"  # batches of which a write failed after others were done
F_EXPIRED_PENDING = "expired_pending"  # predictions whose label did not come within the TTL
COUNTER_FIELDS = (F_DEAD_LETTERS, F_ORPHAN_LABELS, F_LABELS_JOINED, F_DUPLICATE_IDS,
                  F_GAPS_FORGOTTEN, F_PARTIAL_BATCHES, F_EXPIRED_PENDING)
# Field of pending_meta(m): predictions awaiting their label (lua/linear_hash.lua writes it).
F_PENDING_COUNT = "count"
# Fields of cache_stats(m).
F_CACHE_HITS = "hits"
F_CACHE_MISSES = "misses"


def _model(name: str) -> str:
    return f"{PREFIX}:{{{name}}}"


def epoch(name: str) -> str:
    return f"{_model(name)}:epoch"


def meta(name: str) -> str:
    return f"{_model(name)}:meta"


def versions(name: str) -> str:
    return f"{_model(name)}:versions"


def revisions(name: str, version: str) -> str:
    return f"{_model(name)}:rev:{version}"


def deployments(name: str) -> str:
    return f"{_model(name)}:deploy"


def deploy_log(name: str, env: str) -> str:
    return f"{_model(name)}:deploy-log:{env}"


def audit(name: str) -> str:
    return f"{_model(name)}:audit"


def config_cache(name: str, target: str) -> str:
    return f"{_model(name)}:cache:{target}"


def cache_stats(name: str) -> str:
    return f"{_model(name)}:stats:cache"


def agg(name: str, version: str, gran: str, start: int) -> str:
    return f"{_model(name)}:agg:{version}:{gran}:{start}"


def hist(name: str, version: str, gran: str, start: int) -> str:
    return f"{_model(name)}:hist:{version}:{gran}:{start}"


def agg_pattern(name: str) -> str:
    """SCAN pattern of every aggregate bucket of a model (any version and granularity)."""
    return f"{_model(name)}:agg:*"


def hist_pattern(name: str) -> str:
    """SCAN pattern of every histogram bucket of a model."""
    return f"{_model(name)}:hist:*"


def bucket_of(key: str | bytes) -> tuple[str, int] | None:
    """(granularity, start) of an ``agg`` or ``hist`` bucket key; None for any other key."""
    text = key.decode(errors="replace") if isinstance(key, bytes) else key
    parts = text.rsplit(":", 2)
    try:
        return parts[-2], int(parts[-1])
    except (IndexError, ValueError):
        return None


def total(name: str, version: str) -> str:
    return f"{_model(name)}:total:{version}"


def recent(name: str, version: str) -> str:
    return f"{_model(name)}:recent:{version}"


def version_index(name: str) -> str:
    return f"{_model(name)}:vidx"


def pending_meta(name: str) -> str:
    return f"{_model(name)}:pending:meta"


def pending_prefix(name: str) -> str:
    """Bucket n of the pending-label table is this prefix followed by n."""
    return f"{_model(name)}:pending:"


def pending_pattern(name: str) -> str:
    """SCAN pattern of the pending-label table: its buckets and its meta (pending_meta)."""
    return f"{pending_prefix(name)}*"


def counters(name: str) -> str:
    return f"{_model(name)}:counters"


def dead_letters(name: str) -> str:
    return f"{_model(name)}:dead"


UNROUTED = "_unrouted"


def batch_done(name: str, batch_id: str) -> str:
    return f"{_model(name)}:done:{batch_id}"


def producer_seen(name: str, producer: str) -> str:
    return f"{_model(name)}:seen:{producer}"


def unrouted_names() -> str:
    return f"{_model(UNROUTED)}:names"


def journal(name: str) -> str:
    return f"{_model(name)}:journal"


def journal_entry(name: str, batch_id: str) -> str:
    return f"{_model(name)}:journal:{batch_id}"


def batch_claim(name: str, batch_id: str) -> str:
    return f"{_model(name)}:claim:{batch_id}"


def monitor_status(name: str) -> str:
    return f"{_model(name)}:monitor"


def degradation_status(name: str) -> str:
    return f"{_model(name)}:degradation"


def baseline(name: str, version: str) -> str:
    return f"{_model(name)}:baseline:{version}"


def detector_state(name: str, version: str) -> str:
    return f"{_model(name)}:detectors:{version}"


def alerts_audit_cursor(name: str) -> str:
    """The id of the last audit entry of ``name`` announced as ``config_updated``."""
    return f"{_model(name)}:alerts:audit-cursor"


ALERTS_CACHE_SAMPLES = f"{PREFIX}:alerts:cache-samples"


def alerts_active(name: str) -> str:
    return f"{_model(name)}:alerts:active"


def alerts_history(name: str) -> str:
    return f"{_model(name)}:alerts:history"


def alerts_fired(name: str) -> str:
    """HASH ``"<kind>:<severity>"`` -> alerts fired (new ones, silenced or not); never trimmed."""
    return f"{_model(name)}:alerts:fired"


def tuning_history(name: str) -> str:
    return f"{_model(name)}:tuning:history"


def tuning_applied(name: str) -> str:
    return f"{_model(name)}:tuning:applied"


def job_lock(name: str, job: str) -> str:
    return f"{_model(name)}:lock:{job}"


def job_facts(job: str) -> str:
    return f"{PREFIX}:{{{job}}}:job"


def job_outcomes(job: str) -> str:
    return f"{PREFIX}:{{{job}}}:job:outcomes"


BEAT_PREFIX = f"{PREFIX}:beat"
BEAT_LEADER = f"{BEAT_PREFIX}:leader"
BEAT_RESTART = f"{BEAT_PREFIX}:restart"
BEAT_INSTANCES = f"{BEAT_PREFIX}:instances"  # ids of the beat processes with a heartbeat key
REDBEAT_PREFIX = f"{BEAT_PREFIX}:redbeat:"  # celery-redbeat's redbeat_key_prefix
REDBEAT_LOCK = f"{REDBEAT_PREFIX}lock"  # celery-redbeat's redbeat_lock_key
REDBEAT_META_FIELD = "meta"  # field of a redbeat entry holding its last_run_at (JSON)


def redbeat_entry(job: str) -> str:
    """celery-redbeat's schedule entry of a job (a HASH, written by redbeat)."""
    return f"{REDBEAT_PREFIX}{job}"


def beat_instance(instance_id: str) -> str:
    return f"{BEAT_PREFIX}:instance:{instance_id}"


SILENCES = f"{PREFIX}:silences"
NOTIFICATIONS = f"{PREFIX}:notifications"


def family(key: str) -> str:
    """The kind of a key, for counting: ``mlops:{m}:rev:1.0.0`` -> ``rev``, ``mlops:models`` ->
    ``models``."""
    if "}:" in key:
        return key.split("}:", 1)[1].split(":", 1)[0]
    parts = key.split(":")
    return parts[1] if len(parts) > 1 else key
