"""One error hierarchy for the whole project.

    MlopsError                  base; the CLI turns any of these into one line and exit code 1
    ├── ConfigError             a setting from the environment is invalid
    ├── ValidationError         user input (a config file, a --set value, an event field) is invalid
    ├── NotFoundError           a model, version, revision or deployment does not exist
    ├── ConflictError           the change contradicts the current state (already registered, ...)
    ├── ApprovalRequiredError   a production change needs --approved-by under MLOPS_REQUIRE_APPROVAL
    ├── RedisUnavailableError   Redis cannot be reached or the embedded server cannot start
    ├── PermissionDeniedError   Redis refused a command to this process's ACL user (acl.py)
    └── ProbeTimeoutError       a health probe did not answer within its timeout
"""

from __future__ import annotations


class MlopsError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(MlopsError):
    """An environment variable holds a value that is not allowed."""


class ValidationError(MlopsError, ValueError):
    """User-supplied data is malformed; the message names the field and what was expected."""


class NotFoundError(MlopsError, LookupError):
    """The named model, version, revision or deployment does not exist."""


class ConflictError(MlopsError):
    """The requested change conflicts with the registry's current state."""


class ApprovalRequiredError(MlopsError):
    """A production change was attempted without a valid approver."""


class RedisUnavailableError(MlopsError):
    """Redis is unreachable (the message names the URL with its password masked)."""


class PermissionDeniedError(MlopsError):
    """Redis refused a command or key to the ACL user of the connection (the message names the
    user and what was refused, never the password)."""


class ProbeTimeoutError(MlopsError):
    """A health probe did not answer within its timeout."""
