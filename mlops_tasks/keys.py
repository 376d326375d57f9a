"""The Redis key schema: every key this project reads or writes is built here.

All keys of one model share the hash tag ``{<model>}`` so that multi-key transactions and Lua
scripts touching one model land in one slot on Redis Cluster. Model names are validated
(``[a-z0-9][a-z0-9._-]*``) so they can never contain a brace or a colon.

Global (no model)
    mlops:models                        SET     names of registered models

Per model ``m``
    mlops:{m}:epoch                     STRING  incremented by every registry change (WATCHed)
    mlops:{m}:meta                      HASH    display_name, description, created_at, created_by, builtin
    mlops:{m}:versions                  HASH    version -> JSON version record
    mlops:{m}:rev:<version>             LIST    configuration revisions, JSON; revision n at index n-1
    mlops:{m}:deploy                    HASH    env -> JSON deployment record
    mlops:{m}:deploy-log:<env>          LIST    earlier deployment records of env, newest first
    mlops:{m}:audit                     STREAM  audit entries (never trimmed)
    mlops:{m}:cache:<target>            STRING  resolved configuration (read cache, TTL)
    mlops:{m}:stats:cache               HASH    read-cache counters: hits, misses

Registry records never carry a TTL; only ``cache:*`` keys expire.
"""

from __future__ import annotations

PREFIX = "mlops"

MODELS = f"{PREFIX}:models"


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


def model_pattern(name: str) -> str:
    """A SCAN pattern matching every key of one model."""
    return f"{_model(name)}:*"


def family(key: str) -> str:
    """The kind of a key, for counting: ``mlops:{m}:rev:1.0.0`` -> ``rev``, ``mlops:models`` -> ``models``."""
    if "}:" in key:
        return key.split("}:", 1)[1].split(":", 1)[0]
    parts = key.split(":")
    return parts[1] if len(parts) > 1 else key
