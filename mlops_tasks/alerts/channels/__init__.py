"""Where alerts go: the :class:`Channel` protocol, the receivers settings name, and the registry.

A channel is one module holding its channel object as ``CHANNEL``:

* ``log``: the log line (logger ``mlops.alerts``), always on, written at once by the job that
  raised the alert.
* ``alertmanager``: a webhook in Alertmanager's format (version 4).
* ``slack``: a webhook in Slack's incoming-webhook format.

Receivers come from settings, in this order, which numbers them for delivery messages:
every URL of ``MLOPS_WEBHOOK_URLS`` with the channel ``MLOPS_WEBHOOK_FORMAT`` names
(alertmanager or slack), then every ``channel=target`` entry of ``MLOPS_ALERT_CHANNELS``. A
channel there is a module of this package (``slack``) or any importable module
(``mypkg.pagerduty``) that holds ``CHANNEL``: adding a channel is that one file and that one
setting. A queued channel is delivered by the worker (task ``deliver_webhook``, retried with
backoff, see delivery.py); the others are sent at once by the job that raised the alert.

A webhook URL must be ``https://`` unless ``MLOPS_WEBHOOK_ALLOW_HTTP=true``: a plain
``http://`` one is refused when the settings are read (:func:`target_problems`, called by
``Settings.from_env`` and ``mlops config check``, so workers, beat, serve and every command
apply it), and again by the transport at each attempt (a final failure). A channel checks its
targets with an optional ``target_problem(target, settings)`` method; the targets of a channel
of one's own (a dotted module path) are checked at send time only, since settings never import
such a module.

The receiver side of signed webhooks (:func:`verify`, :func:`signature`, the header names) is
re-exported here from ``signing``.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ...errors import ConfigError
from ...settings import Settings, url_origin
from ..model import Alert
from .signing import (
    DEFAULT_TOLERANCE_S,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature,
    signed_headers,
    verify,
)

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Channel",
    "DeliveryError",
    "Receiver",
    "always_on",
    "configured",
    "lookup",
    "parse_entries",
    "receiver_name",
    "signature",
    "signed_headers",
    "target_problems",
    "verify",
]

ALWAYS_ON = "log"


class DeliveryError(Exception):
    """A receiver did not take the delivery. ``retryable`` is False when another attempt cannot
    help (the URL cannot be parsed, a 4xx answer other than 408 and 429, a redirect);
    ``http_status`` is the receiver's answer when there was one. The message is logged and
    recorded: it never holds a secret (a URL's path, query or credentials)."""

    def __init__(self, message: str, retryable: bool = True,
                 http_status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.http_status = http_status


@runtime_checkable
class Channel(Protocol):
    """One way an alert leaves the system.

    ``name`` is what the notification log's ``channel`` field shows (``log``, ``webhook``);
    ``queued`` tells whether the worker delivers it (retried, never delaying monitoring) or the
    job that raised the alert sends it at once."""

    name: str
    queued: bool

    def receiver_name(self, target: str) -> str:
        """``target`` as logs and the notification log show it: never a secret. Never raises."""
        ...

    def send(self, alert: Alert, target: str, settings: Settings, now: float) -> dict[str, Any]:
        """Deliver ``alert`` (as stored) to ``target`` at ``now``; return what the notification
        log records beside ``result: sent`` (e.g. ``http_status``). Raise DeliveryError when it
        did not arrive; any other exception is recorded as a final failure, by its type only."""
        ...


_registry: dict[str, Channel] = {}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def _module_name(name: str) -> str:
    return name if "." in name else f"{__name__}.{name}"


def lookup(name: str) -> Channel:
    """The channel called ``name``: ``CHANNEL`` of this package's module ``name``, or of the
    module ``name`` when it is a dotted path. Raise ConfigError when there is none."""
    channel = _registry.get(name)
    if channel is not None:
        return channel
    if not _NAME.fullmatch(name):
        raise ConfigError(f"alert channel {name[:40]!r}: expected a name such as slack or "
                          f"a module path such as mypkg.pagerduty")
    module_name = _module_name(name)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name != missing and not module_name.startswith(missing + "."):
            raise  # the channel's module exists and imports something missing
        raise ConfigError(f"alert channel {name!r}: no module {module_name}") from None
    channel = getattr(module, "CHANNEL", None)
    if not isinstance(channel, Channel):
        raise ConfigError(f"alert channel {name!r}: {module_name}.CHANNEL is not a Channel "
                          f"(name, queued, receiver_name(), send())")
    _registry[name] = channel
    return channel


def _exists(name: str) -> bool:
    """Whether ``name`` names a channel: a module of this package holding one (loaded: they
    are ours), or any other module (found, not run: settings are read by every command)."""
    if "." not in name:
        try:
            lookup(name)
        except ConfigError:
            return False
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _split(raw: str) -> list[tuple[str, str]]:
    """``channel=target`` entries separated by commas -> [(channel, target)]."""
    pairs = (entry.partition("=") for entry in raw.split(",") if entry.strip())
    return [(name.strip(), target.strip()) for name, _, target in pairs]


def parse_entries(raw: str) -> list[tuple[str, str]]:
    """The entries of ``MLOPS_ALERT_CHANNELS`` as [(channel, target)]; raise ValueError for an
    empty list, a malformed or unknown channel, or ``log`` (always on)."""
    out = _split(raw)
    if not out:
        raise ValueError("no entry")
    for name, _ in out:
        if name == ALWAYS_ON or not _NAME.fullmatch(name) or not _exists(name):
            raise ValueError(name)
    return out


@dataclass(frozen=True)
class Receiver:
    """One configured destination: a channel and its target (a URL, a path...; may be a
    secret, so only ``name`` is ever shown)."""

    channel_name: str
    target: str

    @property
    def channel(self) -> Channel:
        return lookup(self.channel_name)

    @property
    def name(self) -> str:
        """The target as it may be shown: the channel's own rendering, or the URL's origin when
        the channel cannot be loaded."""
        try:
            return self.channel.receiver_name(self.target)
        except Exception:  # noqa: BLE001 - a name for a log line must never fail
            return url_origin(self.target)


def always_on() -> list[Receiver]:
    """Receivers every alert goes to whatever the settings: the log."""
    return [Receiver(ALWAYS_ON, "mlops.alerts")]


def configured(settings: Settings) -> list[Receiver]:
    """The receivers of the settings, in the order that numbers them in delivery messages.
    (Settings.from_env checked every channel; one that cannot load fails its deliveries.)"""
    out = [Receiver(settings.webhook_format, url) for url in settings.webhooks]
    out.extend(Receiver(n, t) for n, t in _split(settings.alert_channels or ""))
    return out


def receiver_name(url: str) -> str:
    """A webhook URL without its credentials, path (which often is the token) and query, for
    logs and the notification log: ``https://hooks.example.com:8443``. Never raises."""
    return url_origin(url)


def target_problems(settings: Settings) -> list[str]:
    """One line per configured receiver whose target its channel refuses with these settings
    (a plain http:// webhook URL without MLOPS_WEBHOOK_ALLOW_HTTP), naming the variable and the
    receiver as it may be shown. Channels given as a module path are not loaded here."""
    sources = [("MLOPS_WEBHOOK_URLS", Receiver(settings.webhook_format, url))
               for url in settings.webhooks]
    sources.extend(("MLOPS_ALERT_CHANNELS", Receiver(n, t))
                   for n, t in _split(settings.alert_channels or ""))
    out = []
    for variable, receiver in sources:
        if "." in receiver.channel_name:
            continue
        try:
            check = getattr(receiver.channel, "target_problem", None)
        except ConfigError:
            continue  # reported by the variable's own parser
        problem = check(receiver.target, settings) if check is not None else None
        if problem:
            out.append(f"{variable}: {receiver.name} {problem}")
    return out
