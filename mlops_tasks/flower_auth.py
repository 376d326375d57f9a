"""Flower behind HTTP basic authentication on every URL that shows data.

Flower authenticates most of its pages and API itself, but not all: its ``/metrics`` answers
anyone with every task and worker name, and ``FLOWER_UNAUTHENTICATED_API`` opens its API when no
authentication is configured. Rather than patching the handlers that are open today (a Flower
upgrade can add more), :func:`run_flower` starts Flower's own ``celery flower`` command with one
change: the application class it builds checks the credentials in the one place every request
passes through, tornado's ``Application.get_handler_delegate``, before any Flower code sees the
request. A request without the credentials is answered 401 by :class:`_Unauthorized`, whatever
its URL or method, unless its handler is in the allow-list (static files and ``/healthcheck``,
which show nothing). A new route in a later Flower is therefore closed by default, and a route
this gate cannot see (a target that is not a request handler) stops Flower from starting.

Flower keeps its own basic authentication too (``FLOWER_BASIC_AUTH``, set from the same value),
so the two checks agree; the credentials never appear on a command line.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import os
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import tornado.httputil
import tornado.routing
import tornado.web

from .errors import ConfigError, MlopsError, ValidationError

CREDENTIALS_VARIABLE = "MLOPS_FLOWER_BASIC_AUTH"
OPEN_API_VARIABLE = "FLOWER_UNAUTHENTICATED_API"
REALM = "flower"
_FALSE = {"", "0", "false", "no", "off", "n", "f"}
# Flower options that would set credentials other than MLOPS_FLOWER_BASIC_AUTH.
_REFUSED_ARGS = ("--basic_auth", "--basic-auth")


@dataclass(frozen=True)
class Credentials:
    """The accepted ``user:password`` pairs, as bytes for a constant-time comparison."""

    pairs: tuple[bytes, ...] = field(repr=False)

    @classmethod
    def parse(cls, raw: str | None) -> Credentials:
        """From the value of MLOPS_FLOWER_BASIC_AUTH (``user:password`` pairs, commas between)."""
        if not raw or not raw.strip():
            raise ConfigError(f"{CREDENTIALS_VARIABLE} is not set: Flower never runs without "
                              "authentication (expected user:password pairs separated by commas)")
        pairs = tuple(p.strip() for p in raw.split(","))
        if any(not user or not password
               for user, _, password in (p.partition(":") for p in pairs)):
            raise ConfigError(f"{CREDENTIALS_VARIABLE} is not allowed (value hidden): expected "
                              "user:password pairs separated by commas")
        return cls(tuple(p.encode() for p in pairs))

    def flower_value(self) -> str:
        """The same pairs in Flower's own FLOWER_BASIC_AUTH format."""
        return ",".join(p.decode() for p in self.pairs)


def is_authorized(header: str | None, credentials: Credentials) -> bool:
    """Whether an ``Authorization`` header carries one of the accepted pairs (basic scheme).

    Every pair is compared, in constant time, so the answer takes as long for any input.
    """
    if not header:
        return False
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    matched = False
    for pair in credentials.pairs:
        matched |= hmac.compare_digest(given, pair)
    return matched


def check_environment(environ: MutableMapping[str, str]) -> None:
    """Refuse FLOWER_UNAUTHENTICATED_API: nothing of Flower is served without credentials."""
    value = environ.get(OPEN_API_VARIABLE)
    if value is not None and value.strip().lower() not in _FALSE:
        raise ConfigError(f"{OPEN_API_VARIABLE}={value!r} is not allowed: `mlops flower` never "
                          f"serves Flower's API without authentication; unset it")
    environ.pop(OPEN_API_VARIABLE, None)


def flower_argv(address: str, port: int, extra_args: Sequence[str]) -> list[str]:
    """`celery flower` arguments; credentials given there (``--basic_auth``) are refused."""
    for arg in extra_args:
        name = arg.partition("=")[0]
        if name in _REFUSED_ARGS:
            raise ValidationError(f"{name}: not allowed; Flower's credentials come from "
                                  f"{CREDENTIALS_VARIABLE} only")
    return ["flower", f"--address={address}", f"--port={port}", *extra_args]


class _Unauthorized(tornado.web.RequestHandler):
    """Answers 401 to any method, before anything of the route it stands in for runs."""

    def check_xsrf_cookie(self) -> None:
        """Nothing is served: a POST without a token gets the same 401, not a 403."""

    def prepare(self) -> None:
        self.set_status(401)
        self.set_header("WWW-Authenticate", f'Basic realm="{REALM}"')
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish("Access denied\n")


def _open_handlers() -> tuple[type[tornado.web.RequestHandler], ...]:
    """Handler classes anyone may reach: static files (scripts, styles) and Flower's
    healthcheck ("OK"). A healthcheck that a Flower upgrade renames or moves is closed."""
    handlers: list[type[tornado.web.RequestHandler]] = [tornado.web.StaticFileHandler]
    with contextlib.suppress(ImportError, AttributeError):
        from flower.views.monitor import Healthcheck  # noqa: PLC0415 - Flower loads on use

        handlers.append(Healthcheck)
    return tuple(handlers)


def _unguarded_targets(router: tornado.routing.RuleRouter) -> list[str]:
    """Route targets that do not pass through ``get_handler_delegate`` (so not through the gate)."""
    found = []
    for rule in router.rules:
        target = rule.target
        if isinstance(target, tornado.routing.RuleRouter):
            found += _unguarded_targets(target)
        elif not (isinstance(target, type) and issubclass(target, tornado.web.RequestHandler)):
            found.append(repr(rule))
    return found


def gated_application(base: type[tornado.web.Application],
                      credentials: Credentials) -> type[tornado.web.Application]:
    """A subclass of ``base`` (Flower's application class) that lets a request reach a
    route outside the allow-list only with one of ``credentials``."""
    open_handlers = _open_handlers()

    def __init__(self: tornado.web.Application, *args: Any, **kwargs: Any) -> None:  # noqa: N807
        base.__init__(self, *args, **kwargs)
        unguarded = _unguarded_targets(self.default_router)
        if unguarded:
            raise MlopsError("Flower has routes the authentication gate cannot check "
                             f"({', '.join(unguarded)}); not starting it")

    def get_handler_delegate(
        self: tornado.web.Application,
        request: tornado.httputil.HTTPServerRequest,
        target_class: type[tornado.web.RequestHandler],
        target_kwargs: dict[str, Any] | None = None,
        path_args: list[bytes] | None = None,
        path_kwargs: dict[str, bytes] | None = None,
    ) -> Any:
        if not (issubclass(target_class, open_handlers)
                or is_authorized(request.headers.get("Authorization"), credentials)):
            target_class, target_kwargs = _Unauthorized, {}
        return base.get_handler_delegate(self, request, target_class, target_kwargs,
                                         path_args, path_kwargs)

    return type(f"Gated{base.__name__}", (base,),
                {"__init__": __init__, "get_handler_delegate": get_handler_delegate,
                 "__module__": __name__})


@contextlib.contextmanager
def gated_flower_command(credentials: Credentials) -> Iterator[None]:
    """While open, Flower's ``celery flower`` command builds the gated application.

    The command instantiates the class it imported as ``flower.command.Flower``; if a Flower
    version builds its application some other way, this refuses instead of starting it open.
    """
    import flower.app  # noqa: PLC0415 - Flower loads only for `mlops flower`
    import flower.command  # noqa: PLC0415 - same

    original = getattr(flower.command, "Flower", None)
    if original is None or original is not flower.app.Flower:
        raise MlopsError("this Flower version does not build its application as "
                         "flower.command.Flower: the authentication gate cannot be put in "
                         "place; not starting it")
    flower.command.Flower = gated_application(original, credentials)
    try:
        yield
    finally:
        flower.command.Flower = original


def run_flower(raw_credentials: str | None, *, address: str, port: int,
               extra_args: Sequence[str], load_celery_app: Callable[[], Any],
               environ: MutableMapping[str, str] | None = None) -> None:
    """Check everything, then run Flower (``celery flower``) behind the gate until it stops.

    ``load_celery_app`` is called only once the checks passed (it may start the embedded Redis).
    """
    environ = os.environ if environ is None else environ
    credentials = Credentials.parse(raw_credentials)
    check_environment(environ)
    argv = flower_argv(address, port, extra_args)
    environ["FLOWER_BASIC_AUTH"] = credentials.flower_value()
    celery_app = load_celery_app()
    with gated_flower_command(credentials):
        celery_app.start(argv)
