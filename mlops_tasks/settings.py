"""Typed settings, built once from the environment and validated.

Every setting is a field of :class:`Settings` whose metadata names its environment variable, its
parser and whether it is a secret. The variables of the original deployment guide keep their names
and defaults; the project's own ones start with ``MLOPS_``.

``Settings.from_env()`` raises :class:`~mlops_tasks.errors.ConfigError` on the first bad value with
a line naming the variable, the value and what is allowed; :func:`check_env` collects every
problem (for ``mlops config check``). Nothing here reads the environment at import time.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from .errors import ConfigError

ENV_PREFIX = "MLOPS_"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Parser:
    """Turns a raw environment string into a typed value, or raises ValueError(allowed)."""

    parse: Callable[[str], Any]
    allowed: str


def boolean() -> Parser:
    def parse(raw: str) -> bool:
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError
    return Parser(parse, "a boolean (true/false, 1/0, yes/no, on/off)")


def number(kind: type, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False) -> Parser:
    def parse(raw: str) -> Any:
        value = kind(raw.strip())
        if isinstance(value, float) and math.isnan(value):
            raise ValueError
        if lo is not None and (value < lo or (lo_open and value == lo)):
            raise ValueError
        if hi is not None and value > hi:
            raise ValueError
        return value
    noun = "an integer" if kind is int else "a number"
    if lo is not None and hi is not None:
        allowed = f"{noun} from {lo:g} to {hi:g}"
        if lo_open:
            allowed = f"{noun} greater than {lo:g} and at most {hi:g}"
    elif lo is not None:
        allowed = f"{noun} greater than {lo:g}" if lo_open else f"{noun} >= {lo:g}"
    else:
        allowed = noun
    return Parser(parse, allowed)


def choice(*options: str) -> Parser:
    def parse(raw: str) -> str:
        low = raw.strip().lower()
        if low not in options:
            raise ValueError
        return low
    return Parser(parse, "one of " + ", ".join(options))


REDIS_URL_SCHEMES = ("redis", "rediss", "unix", "redis+socket")
AMQP_URL_SCHEMES = ("amqp", "amqps", "pyamqp")
SENTINEL_URL_SCHEME = "sentinel"


def _check_url(value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)  # ValueError on a malformed IPv6 host
    if parts.scheme not in schemes:
        raise ValueError
    parts.port  # noqa: B018 - ValueError on a port that is not a number from 0 to 65535
    if parts.scheme not in ("unix", "redis+socket") and not parts.hostname:
        raise ValueError
    if parts.scheme in ("unix", "redis+socket") and not parts.path:
        raise ValueError
    after_netloc = value.partition("://")[2][len(parts.netloc):]
    if "@" in after_netloc:
        raise ValueError  # a password with an unencoded / ? or #: it would be cut apart
    return value


def url() -> Parser:
    def parse(raw: str) -> str:
        return _check_url(raw.strip(), REDIS_URL_SCHEMES)
    return Parser(parse, "a URL such as redis://host:6379/0 or unix:///path/redis.sock "
                         "(percent-encode / ? # @ in a password)")


def broker_url() -> Parser:
    """A Redis URL, a RabbitMQ URL, or kombu's Sentinel list (``sentinel://h1:26379;...``)."""
    def parse(raw: str) -> str:
        value = raw.strip()
        if value.startswith(f"{SENTINEL_URL_SCHEME}://"):
            for piece in value.split(";"):
                _check_url(piece.strip(), (SENTINEL_URL_SCHEME,))
            return value
        return _check_url(value, REDIS_URL_SCHEMES + AMQP_URL_SCHEMES)
    return Parser(parse, "a URL such as redis://host:6379/0, amqp://user:pw@host:5672/vhost "
                         "or sentinel://host:26379;sentinel://host2:26379 (percent-encode "
                         "/ ? # @ in a password)")


def host_ports() -> Parser:
    def parse(raw: str) -> str:
        pairs = [p.strip() for p in raw.split(",")]
        for pair in pairs:
            host, colon, port = pair.rpartition(":")
            if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError
        return ",".join(pairs)
    return Parser(parse, "host:port pairs separated by commas")


def credentials() -> Parser:
    def parse(raw: str) -> str:
        pairs = [p.strip() for p in raw.split(",")]
        if not pairs or any(p.count(":") < 1 or not p.split(":", 1)[0] or not p.split(":", 1)[1]
                            for p in pairs):
            raise ValueError
        return ",".join(pairs)
    return Parser(parse, "user:password pairs separated by commas")


def text() -> Parser:
    def parse(raw: str) -> str:
        if not raw.strip():
            raise ValueError
        return raw.strip()
    return Parser(parse, "a non-empty string")


def alert_channel_list() -> Parser:
    def parse(raw: str) -> str:
        from .alerts.channels import parse_entries  # noqa: PLC0415 - only when it is set

        return ",".join(f"{name}={target}" for name, target in parse_entries(raw))
    return Parser(parse, "channel=target entries separated by commas; a channel is "
                         "alertmanager, slack or the path of a module holding CHANNEL, such "
                         "as mypkg.pagerduty (log is always on)")


def field_paths() -> Parser:
    def parse(raw: str) -> str:
        paths = [p.strip() for p in raw.split(",") if p.strip()]
        if not paths or any(len(p) > 256 or not all(s.strip() for s in p.split("."))
                            for p in paths):
            raise ValueError
        return ",".join(dict.fromkeys(paths))
    return Parser(parse, "metadata field names separated by commas, a dotted path such as "
                         "request.client_ip for a nested field")


def path() -> Parser:
    def parse(raw: str) -> Path:
        if not raw.strip():
            raise ValueError
        return Path(raw.strip()).expanduser()
    return Parser(parse, "a filesystem path")


def syslog_address() -> Parser:
    def parse(raw: str) -> str:
        value = raw.strip()
        if value.startswith("/"):
            return value
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError
        return value
    return Parser(parse, "a socket path such as /dev/log, or host:port (UDP)")


def setting(env: str, parser: Parser, default: Any, doc: str, *, secret: bool = False) -> Any:
    return field(default=default, metadata={"env": env, "parser": parser, "doc": doc,
                                            "secret": secret})


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("mlops-tasks", appauthor=False))


@dataclass(frozen=True)
class Settings:
    # --- connections -----------------------------------------------------------------------
    redis_url: str | None = setting(
        "REDIS_URL", url(), None,
        "Redis holding the registry and metrics; unset starts an embedded Redis", secret=True)
    celery_broker_url: str | None = setting(
        "CELERY_BROKER_URL", broker_url(), None,
        "Celery broker: Redis, RabbitMQ (amqp://, amqps://) or Sentinel (sentinel://); "
        "defaults to the Redis of REDIS_URL", secret=True)
    amqp_queue_type: str = setting(
        "MLOPS_AMQP_QUEUE_TYPE", choice("quorum", "classic"), "quorum",
        "RabbitMQ queue type of the three queues (quorum needs RabbitMQ 3.8 or later)")
    redis_sentinels: str | None = setting(
        "MLOPS_REDIS_SENTINELS", host_ports(), None,
        "Sentinels (host:port,...) that name the Redis master; REDIS_URL then gives only the "
        "login, database and TLS options")
    redis_sentinel_master: str = setting(
        "MLOPS_REDIS_SENTINEL_MASTER", text(), "mymaster",
        "the master's name at the sentinels")
    redis_sentinel_password: str | None = setting(
        "MLOPS_REDIS_SENTINEL_PASSWORD", text(), None,
        "password of the sentinels themselves (requirepass of sentinel.conf), if any",
        secret=True)
    redis_wait_replicas: int = setting(
        "MLOPS_REDIS_WAIT_REPLICAS", number(int, 0), 1,
        "with MLOPS_REDIS_SENTINELS: replicas that must have a write (the client's journal "
        "entry, a worker's applied batch) before it counts as done, so a failover loses none; "
        "0 trusts the master alone")
    redis_cluster: bool = setting(
        "MLOPS_REDIS_CLUSTER", boolean(), default=False,
        doc="REDIS_URL names a node of a Redis Cluster that holds the registry and metrics (the "
            "broker stays a single Redis, Sentinel or RabbitMQ)")
    data_dir: Path | None = setting(  # noqa: RUF009 - setting() returns a dataclasses.field
        "MLOPS_DATA_DIR", path(), None,
        "folder of the embedded Redis (append-only file, socket, log)")
    redis_detector_password: str | None = setting(
        "MLOPS_REDIS_DETECTOR_PASSWORD", text(), None,
        "password of the Redis user `detector` (`mlops redis acl`)", secret=True)
    redis_worker_password: str | None = setting(
        "MLOPS_REDIS_WORKER_PASSWORD", text(), None,
        "password of the Redis user `worker` (`mlops redis acl`)", secret=True)
    redis_operator_password: str | None = setting(
        "MLOPS_REDIS_OPERATOR_PASSWORD", text(), None,
        "password of the Redis user `operator` (`mlops redis acl`)", secret=True)
    redis_acl: bool = setting(
        "MLOPS_REDIS_ACL", boolean(), default=False,
        doc="the embedded Redis enforces the roles of `mlops redis acl` (the default user off; "
            "each process logs in with its role's password)")

    # --- model management (names and defaults of the original deployment guide) --------------
    model_registry_cache_ttl_s: int = setting(
        "MODEL_REGISTRY_CACHE_TTL", number(int, 1), 604800,
        "seconds a resolved configuration stays in the read cache (records never expire)")
    auto_tuning_enabled: bool = setting(
        "AUTO_TUNING_ENABLED", boolean(), default=True,
        doc="apply auto-tuned thresholds (false: record only)")

    nplusone_ml_enabled: bool = setting("NPLUSONE_ML_ENABLED", boolean(), default=True,
                                        doc="n1-detector is enabled")
    nplusone_ml_auto_register: bool = setting(
        "NPLUSONE_ML_AUTO_REGISTER", boolean(), default=True,
        doc="register n1-detector when workers start")
    nplusone_ml_timeout_ms: int = setting("NPLUSONE_ML_TIMEOUT_MS", number(int, 1), 5000,
                                          "n1-detector inference timeout")
    nplusone_ml_confidence_threshold: float = setting(
        "NPLUSONE_ML_CONFIDENCE_THRESHOLD", number(float, 0, 100), 60.0,
        "n1-detector decision threshold, in percent")

    waf_ml_enabled: bool = setting("WAF_ML_ENABLED", boolean(), default=True,
                                   doc="waf-behavioral is enabled")
    waf_ml_auto_register: bool = setting("WAF_ML_AUTO_REGISTER", boolean(), default=True,
                                         doc="register waf-behavioral when workers start")

    queue_ml_enabled: bool = setting("QUEUE_ML_ENABLED", boolean(), default=True,
                                     doc="queue-anomaly is enabled")
    queue_ml_auto_register: bool = setting("QUEUE_ML_AUTO_REGISTER", boolean(), default=True,
                                           doc="register queue-anomaly when workers start")
    job_anomaly_min_confidence: float = setting(
        "JOB_ANOMALY_MIN_CONFIDENCE", number(float, 0, 1), 0.6,
        "queue-anomaly minimum confidence to report an anomaly")
    job_anomaly_threshold: float = setting(
        "JOB_ANOMALY_THRESHOLD", number(float, 0, 100), 50,
        "queue-anomaly decision threshold, as an anomaly score from 0 to 100")
    job_anomaly_zscore_threshold: float = setting(
        "JOB_ANOMALY_ZSCORE_THRESHOLD", number(float, 0, None, lo_open=True), 3.0,
        "queue-anomaly z-score cut-off")
    job_anomaly_iqr_multiplier: float = setting(
        "JOB_ANOMALY_IQR_MULTIPLIER", number(float, 0, None, lo_open=True), 1.5,
        "queue-anomaly IQR fence multiplier")

    # --- the project's own -------------------------------------------------------------------
    waf_anomaly_threshold: float = setting(
        "MLOPS_WAF_ANOMALY_THRESHOLD", number(float, 0, 1), 0.7,
        "waf-behavioral initial decision threshold")
    actor: str | None = setting("MLOPS_ACTOR", text(), None,
                                "who is recorded in the audit trail (default: the OS user)")
    require_approval: bool = setting(
        "MLOPS_REQUIRE_APPROVAL", boolean(), default=False,
        doc="production changes need --approved-by someone other than the actor")
    retention_days: int = setting(
        "MLOPS_RETENTION_DAYS", number(int, 1, 3650), 90,
        "days of per-day performance history and run history kept (dead letters: "
        "MLOPS_DEAD_LETTER_RETENTION_DAYS, if shorter)")
    dead_letter_retention_days: int = setting(
        "MLOPS_DEAD_LETTER_RETENTION_DAYS", number(int, 1, 3650), 30,
        "days dead letters (the only place client metadata is kept) are kept before the "
        "cleanup job deletes them")
    redact_fields: str | None = setting(
        "MLOPS_REDACT_FIELDS", field_paths(), None,
        "client: metadata fields (comma-separated; request.client_ip for a nested one) whose "
        "values are replaced by HMAC-SHA256 under MLOPS_PSEUDONYM_KEY before an event leaves "
        "the detector")
    label_ttl_days: int = setting(
        "MLOPS_LABEL_TTL_DAYS", number(int, 1, 365), 7,
        "days a prediction waits for its ground-truth label before it expires")
    visibility_timeout_s: int = setting(
        "MLOPS_VISIBILITY_TIMEOUT_S", number(int, 1), 3600,
        "seconds before a message taken by a worker that died is delivered again")
    journal_replay_s: int = setting(
        "MLOPS_JOURNAL_REPLAY_S", number(int, 1), 7200,
        "a sent batch not applied after this many seconds is sent again (idempotent)")
    worker_max_memory_mb: int = setting(
        "MLOPS_WORKER_MAX_MEMORY_MB", number(int, 64), 2048,
        "address-space ceiling of each worker child: a batch that needs more fails alone "
        "(dead-lettered) instead of getting the worker killed")
    client_batch_size: int = setting(
        "MLOPS_CLIENT_BATCH_SIZE", number(int, 1, 100_000), 500,
        "client: send a batch once this many events are buffered")
    client_flush_ms: int = setting(
        "MLOPS_CLIENT_FLUSH_MS", number(int, 1, 60_000), 200,
        "client: send buffered events at least this often")
    client_max_buffer: int = setting(
        "MLOPS_CLIENT_MAX_BUFFER", number(int, 1), 100_000,
        "client: events held while the broker is unreachable")
    client_overflow: str = setting(
        "MLOPS_CLIENT_OVERFLOW", choice("drop", "block"), "drop",
        "client: what a full buffer does to a new event")
    client_config_ttl_s: float = setting(
        "MLOPS_CLIENT_CONFIG_TTL_S", number(float, 0), 5.0,
        "client: seconds a model's configuration is cached")
    monitoring_window: str = setting(
        "MLOPS_MONITORING_WINDOW", choice("last_100", "last_1000", "since_deployment",
                                          "last_hour"), "last_1000",
        "window whose accuracy the monitoring job compares with the alert threshold")
    monitoring_min_samples: int = setting(
        "MLOPS_MONITORING_MIN_SAMPLES", number(int, 1), 100,
        "labeled predictions below which a model is reported as insufficient_data")
    baseline_size: int = setting(
        "MLOPS_BASELINE_SIZE", number(int, 10), 1000,
        "labeled predictions after deployment that form a version's baseline")
    baseline_max: int = setting(
        "MLOPS_BASELINE_MAX", number(int, 10), 50000,
        "a baseline grows with every check interval that leaves the longest window, up to this")
    false_alarms_per_month: float = setting(
        "MLOPS_FALSE_ALARMS_PER_MONTH", number(float, 0, None, lo_open=True), 1.0,
        "budget of false degradation (and drift) alerts per model-month under stationary "
        "traffic; sets the level of every test")
    drift_min_distance: float = setting(
        "MLOPS_DRIFT_MIN_DISTANCE", number(float, 0, 1), 0.03,
        "smallest Kolmogorov-Smirnov distance between score distributions reported as drift")
    degradation_min_percent: float = setting(
        "MLOPS_DEGRADATION_MIN_PERCENT", number(float, 0, 100), 0.5,
        "practical margin: a drop is flagged once the data show it exceeds this many percent")
    alert_repeat_interval_s: int = setting(
        "MLOPS_ALERT_REPEAT_INTERVAL_S", number(int, 1), 3600,
        "a firing alert is sent again at most this often (unless its severity rises)")
    tuning_min_samples: int = setting(
        "MLOPS_TUNING_MIN_SAMPLES", number(int, 1), 100,
        "labeled predictions the tuning window needs before a threshold is changed")
    tuning_min_improvement: float = setting(
        "MLOPS_TUNING_MIN_IMPROVEMENT", number(float, 0), 5.0,
        "percent by which the best threshold must beat the current one to be applied")
    tuning_require_significance: bool = setting(
        "MLOPS_TUNING_REQUIRE_SIGNIFICANCE", boolean(), default=True,
        doc="apply only when the bootstrap interval of the improvement excludes zero")
    tuning_cooldown_s: int = setting(
        "MLOPS_TUNING_COOLDOWN_S", number(int, 0), 3600,
        "a model is retuned at most once per this many seconds")
    monitoring_interval_s: int = setting(
        "MLOPS_MONITORING_INTERVAL_S", number(int, 1), 300,
        "beat: ml-performance-monitoring every this many seconds")
    degradation_interval_s: int = setting(
        "MLOPS_DEGRADATION_INTERVAL_S", number(int, 1), 900,
        "beat: ml-degradation-detection every this many seconds")
    tuning_interval_s: int = setting(
        "MLOPS_TUNING_INTERVAL_S", number(int, 1), 3600,
        "beat: ml-auto-tuning every this many seconds")
    cleanup_interval_s: int = setting(
        "MLOPS_CLEANUP_INTERVAL_S", number(int, 1), 86400,
        "beat: ml-registry-cleanup every this many seconds")
    beat_max_interval_s: float = setting(
        "MLOPS_BEAT_MAX_INTERVAL_S", number(float, 0, 300, lo_open=True), 5.0,
        "beat: longest sleep between scheduler ticks (and between a standby's lock attempts)")
    beat_lock_timeout_s: float = setting(
        "MLOPS_BEAT_LOCK_TIMEOUT_S", number(float, 0, 3600, lo_open=True), 30.0,
        "beat: the leader's lock expires this long after its last renewal")
    webhook_urls: str | None = setting(
        "MLOPS_WEBHOOK_URLS", text(), None,
        "comma-separated webhook receivers of alerts", secret=True)
    webhook_secret: str | None = setting(
        "MLOPS_WEBHOOK_SECRET", text(), None,
        "key of the HMAC-SHA256 signature header of webhook deliveries", secret=True)
    pseudonym_key: str | None = setting(
        "MLOPS_PSEUDONYM_KEY", text(), None,
        "waf-behavioral and MLOPS_REDACT_FIELDS: key of the HMAC-SHA256 pseudonyms of client "
        "identifiers and redacted metadata (unset: a random key per process, pseudonyms "
        "stable within it only)", secret=True)
    webhook_allow_http: bool = setting(
        "MLOPS_WEBHOOK_ALLOW_HTTP", boolean(), default=False,
        doc="allow plain http:// webhook URLs (default: only https://, refused when the "
            "settings are read)")
    webhook_format: str = setting(
        "MLOPS_WEBHOOK_FORMAT", choice("alertmanager", "slack"), "alertmanager",
        "webhook payload format")
    webhook_timeout_s: float = setting(
        "MLOPS_WEBHOOK_TIMEOUT_S", number(float, 0, 120, lo_open=True), 10.0,
        "seconds a webhook receiver may take to answer")
    webhook_max_retries: int = setting(
        "MLOPS_WEBHOOK_MAX_RETRIES", number(int, 0, 100), 8,
        "delivery attempts after the first, with exponential backoff")
    webhook_backoff_s: float = setting(
        "MLOPS_WEBHOOK_BACKOFF_S", number(float, 0, 3600, lo_open=True), 2.0,
        "first retry delay of a failed delivery; doubles each time, at most 5 minutes")
    alert_channels: str | None = setting(
        "MLOPS_ALERT_CHANNELS", alert_channel_list(), None,
        "more alert receivers, as channel=target entries separated by commas (channel: "
        "alertmanager, slack or a module holding CHANNEL), after MLOPS_WEBHOOK_URLS",
        secret=True)
    flower_basic_auth: str | None = setting(
        "MLOPS_FLOWER_BASIC_AUTH", credentials(), None,
        "Flower's user:password pairs; `mlops flower` refuses to start without", secret=True)
    serve_basic_auth: str | None = setting(
        "MLOPS_SERVE_BASIC_AUTH", credentials(), None,
        "user:password pairs guarding /metrics and /health of `mlops serve` (/health/live and "
        "/health/ready stay open)", secret=True)
    monitoring_log: Path | None = setting(  # noqa: RUF009 - setting() returns a dataclasses.field
        "MLOPS_MONITORING_LOG", path(), None,
        "monitoring log file (default: <data dir>/logs/ml-monitoring.log)")
    log_level: str = setting("MLOPS_LOG_LEVEL", choice("debug", "info", "warning", "error"),
                             "info", "log level")
    log_format: str = setting("MLOPS_LOG_FORMAT", choice("json", "text"), "json",
                              "log line format")
    log_strategy: str | None = setting(
        "MLOPS_LOG_STRATEGY", choice("console", "json", "file", "syslog", "split"), None,
        "where logs go: console (human lines on stderr, coloured on a terminal), json (one "
        "object per line on stderr), file (<log dir>/application.log, reopened after an "
        "external logrotate), syslog, split (application.log plus ml-monitoring.log with the "
        "monitoring, degradation, tuning, alert, scheduler and cleanup lines); unset: json or "
        "console after MLOPS_LOG_FORMAT, with the monitoring log as before")
    log_dir: Path | None = setting(  # noqa: RUF009 - setting() returns a dataclasses.field
        "MLOPS_LOG_DIR", path(), None,
        "folder of application.log and ml-monitoring.log (default: <data dir>/logs)")
    syslog_address: str | None = setting(
        "MLOPS_SYSLOG_ADDRESS", syslog_address(), None,
        "syslog receiver of the syslog strategy: a socket path or host:port over UDP "
        "(default: /dev/log when it exists, else localhost:514)")

    # --- derived ---------------------------------------------------------------------------
    @property
    def effective_data_dir(self) -> Path:
        return self.data_dir if self.data_dir is not None else default_data_dir()

    @property
    def beat_takeover_s(self) -> float:
        """The longest a standby beat waits to take over from a leader that died."""
        return self.beat_lock_timeout_s + self.beat_max_interval_s

    @property
    def webhooks(self) -> list[str]:
        return [u.strip() for u in (self.webhook_urls or "").split(",") if u.strip()]

    @property
    def log_dir_path(self) -> Path:
        return self.log_dir or self.effective_data_dir / "logs"

    @property
    def monitoring_log_path(self) -> Path:
        return self.monitoring_log or self.log_dir_path / "ml-monitoring.log"

    @property
    def nplusone_decision_threshold(self) -> float:
        return round(self.nplusone_ml_confidence_threshold / 100.0, 3)

    @property
    def queue_decision_threshold(self) -> float:
        return round(float(self.job_anomaly_threshold) / 100.0, 3)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``); raise on the first problem."""
        settings, problems = check_env(environ)
        if problems:
            raise ConfigError(problems[0])
        return settings

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _fields() -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(Settings) if "env" in f.metadata]


def known_variables() -> list[str]:
    return [f.metadata["env"] for f in _fields()]


def check_env(environ: Mapping[str, str] | None = None) -> tuple[Settings, list[str]]:
    """Parse every variable. Return the settings (bad values replaced by their defaults, for
    display only) and every problem found; callers must not run with a non-empty list."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems: list[str] = []
    for f in _fields():
        name = f.metadata["env"]
        raw = env.get(name)
        if raw is None or raw == "":
            continue
        parser: Parser = f.metadata["parser"]
        try:
            values[f.name] = parser.parse(raw)
        except (ValueError, TypeError):
            shown = mask_secret(name, raw) if f.metadata["secret"] else raw
            problems.append(f"{name}={shown!r} is not allowed: expected {parser.allowed}")
    settings = Settings(**values)
    problems.extend(_combined_problems(settings))
    known = set(known_variables())
    for name in sorted(env):
        if name.startswith(ENV_PREFIX) and name not in known:
            hint = difflib.get_close_matches(name, sorted(known), n=1)
            extra = f" (did you mean {hint[0]}?)" if hint else ""
            problems.append(f"{name} is not a known setting{extra}")
    return settings, problems


def _combined_problems(settings: Settings) -> list[str]:
    """Problems of settings that are fine alone but not together (a plain http:// webhook
    without MLOPS_WEBHOOK_ALLOW_HTTP); one line each, naming the variable, never a secret."""
    problems = _topology_problems(settings)
    if not settings.webhook_urls and not settings.alert_channels:
        return problems
    from .alerts.channels import target_problems  # noqa: PLC0415 - only when one is set

    return problems + target_problems(settings)


def _topology_problems(settings: Settings) -> list[str]:
    problems = []
    if settings.redis_cluster and settings.redis_sentinels:
        problems.append("MLOPS_REDIS_CLUSTER and MLOPS_REDIS_SENTINELS: choose one (a cluster "
                        "fails over by itself)")
    if settings.redis_cluster and not settings.redis_url:
        problems.append("MLOPS_REDIS_CLUSTER: REDIS_URL must name a node of the cluster (the "
                        "embedded Redis is a single server)")
    if settings.redis_cluster and (settings.redis_url or "").startswith(("unix:", "redis+")):
        problems.append("MLOPS_REDIS_CLUSTER: REDIS_URL must be a redis:// or rediss:// URL of "
                        "a node")
    if (settings.redis_cluster and not settings.celery_broker_url):
        problems.append("MLOPS_REDIS_CLUSTER: set CELERY_BROKER_URL to a single Redis, Sentinel "
                        "or RabbitMQ (kombu's Redis transport has no cluster mode)")
    return problems


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]+)(?::[0-9]{1,5})?$")
_USER = re.compile(r"^[^:/?#@\[\]]*$")
_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|key|auth|sig", re.IGNORECASE)


@dataclass(frozen=True)
class _UrlParts:
    """A URL cut apart without trusting it: everything up to the last ``@`` is credentials, so a
    password with an unencoded ``# / ? @`` is never mistaken for the host, path or query."""

    scheme: str
    userinfo: str | None
    hosts: str
    tail: str  # path, query and fragment as given


def _split_url(value: str) -> _UrlParts | None:
    """None unless the value is ``scheme://[userinfo@]host[:port][,host...][/path][?query]``
    with plausible hosts (an empty host only before a path, as in ``unix:///path``)."""
    match = _SCHEME.match(value)
    if match is None:
        return None
    rest = value[match.end():]
    userinfo = None
    if "@" in rest:
        userinfo, _, rest = rest.rpartition("@")
    cut = min([i for i in (rest.find(c) for c in "/?#") if i >= 0] or [len(rest)])
    hosts, tail = rest[:cut], rest[cut:]
    if hosts:
        if not all(_HOST.match(h) for h in re.split(r"[,;]", hosts)):
            return None
    elif not tail.startswith("/"):
        return None
    return _UrlParts(match.group(1).lower(), userinfo, hosts, tail)


def _mask_query(query: str) -> str:
    """``password=`` (and any parameter named like a secret) -> ``password=***``. Pieces after
    a secret that are not ``name=value`` are taken for an unencoded ``&`` inside it."""
    out: list[str] = []
    hiding = False
    for piece in query.split("&"):
        name, eq, _ = piece.partition("=")
        if eq and _SECRET_PARAM.search(name):
            out.append(f"{name}=***")
            hiding = True
        elif hiding and not eq:
            continue
        else:
            out.append(piece)
            hiding = False
    return "&".join(out)


def mask_url(url: str) -> str:
    """Hide every credential of a URL: the password of the userinfo (redis://:secret@host ->
    redis://:***@host), ``password=`` / ``pass=`` query parameters, in each URL of a ``;``-list
    (sentinel). A value that cannot be parsed is hidden whole: ``redis://***`` or ``***``."""
    value = url.strip()
    pieces = value.split(";")
    if len(pieces) > 1 and any("://" in p for p in pieces[1:]):
        return ";".join(mask_url(p) for p in pieces)
    parts = _split_url(value)
    if parts is None:
        match = _SCHEME.match(value)
        return f"{match.group(1).lower()}://***" if match else "***"
    shown = ""
    if parts.userinfo is not None:
        user, colon, _ = parts.userinfo.partition(":")
        shown = f"{user}:***@" if colon and _USER.match(user) else "***@"
    path, question, query = parts.tail.partition("?")
    tail = f"{path}?{_mask_query(query)}" if question else path
    return f"{parts.scheme}://{shown}{parts.hosts}{tail}"


def url_origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, for logs: never its credentials, path (often the token
    of a webhook) or query; ``scheme://?`` (or ``?``) when it cannot be parsed. Never raises."""
    parts = _split_url(url.strip())
    if parts is None or (parts.userinfo and any(c in parts.userinfo for c in "/?#")):
        match = _SCHEME.match(url.strip())  # (an "@" after the path: which host is ambiguous)
        return f"{match.group(1).lower()}://?" if match else "?"
    return f"{parts.scheme}://{parts.hosts or '?'}"


def mask_secret(variable: str, value: str) -> str:
    """What may be shown of a secret setting: a connection URL without its credentials, a
    webhook URL without its path (which often is the token), nothing of a key."""
    if variable.endswith("_URL"):
        return mask_url(value)
    if variable.endswith("_URLS"):
        return ",".join(f"{url_origin(u)}/***" for u in value.split(",") if u.strip())
    return "***"


def describe(settings: Settings, environ: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The effective configuration, one row per variable, with secrets masked."""
    env = os.environ if environ is None else environ
    rows = []
    for f in _fields():
        name = f.metadata["env"]
        value = getattr(settings, f.name)
        if isinstance(value, Path):
            value = str(value)
        if f.metadata["secret"] and isinstance(value, str):
            value = mask_secret(name, value)
        rows.append({
            "variable": name,
            "value": value,
            "source": "environment" if env.get(name) else "default",
            "description": f.metadata["doc"],
        })
    return rows
