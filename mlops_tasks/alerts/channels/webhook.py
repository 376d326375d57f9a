"""The transport of webhook channels: a signed JSON POST whose failures never show the URL.

:class:`WebhookChannel` is the base of the alertmanager and slack channels: a subclass only
says how an alert becomes a JSON body (``payload``). The body is built by the worker from the
alert as stored and signed at each attempt (see signing.py). No error message quotes the URL's
path, query or credentials (often the token).

What an attempt's outcome means:

* a 2xx answer: sent;
* a 5xx answer, 408 (request timeout), 429 (too many requests), a connection error or a
  timeout: a failure another attempt may cure, retried with backoff;
* any other 4xx answer: final (the receiver refuses this request; sending it again cannot
  help), recorded with its status and never retried;
* a 3xx answer: final, recorded with its status; the signed POST is never re-sent to the
  ``Location`` (nor anywhere else);
* a plain ``http://`` URL without ``MLOPS_WEBHOOK_ALLOW_HTTP=true``, or a URL that cannot be
  used: final, before anything is sent.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ...settings import Settings, url_origin
from ..model import Alert
from . import DeliveryError
from .signing import signed_headers


class WebhookChannel:
    """A queued channel that POSTs ``payload(alert, receiver, now)`` as JSON to a URL."""

    name = "webhook"
    queued = True

    def payload(self, alert: Alert, receiver: str, now: float) -> dict[str, Any]:
        raise NotImplementedError

    def receiver_name(self, target: str) -> str:
        return url_origin(target)

    def target_problem(self, target: str, settings: Settings) -> str | None:
        """Why ``target`` is refused with these settings (read with the settings), or None."""
        return scheme_problem(target, allow_http=settings.webhook_allow_http)

    def send(self, alert: Alert, target: str, settings: Settings, now: float) -> dict[str, Any]:
        body = json.dumps(self.payload(alert, self.receiver_name(target), now),
                          default=str).encode()
        status = post(target, body, settings.webhook_secret, settings.webhook_timeout_s, now=now,
                      allow_http=settings.webhook_allow_http)
        return {"http_status": status}


def scheme_problem(url: str, allow_http: bool) -> str | None:
    """A refusal of a plain ``http://`` URL unless allowed (other unusable URLs are refused at
    send time, see :func:`post`), or None. Never quotes the URL."""
    if url.strip().partition("://")[0].lower() == "http" and not allow_http:
        return ("is plain http://: webhook URLs must be https:// (set "
                "MLOPS_WEBHOOK_ALLOW_HTTP=true to allow http)")
    return None


def retryable_status(status: int) -> bool:
    """Whether another attempt may succeed after this HTTP answer: 5xx, 408 and 429."""
    return status >= 500 or status in (408, 429)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a failed delivery (HTTP 3xx): the signed request never goes elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:  # noqa: ARG002 - refuses all
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def post(url: str, body: bytes, secret: str | None, timeout_s: float,
         now: float | None = None, allow_http: bool = False) -> int:
    """POST ``body``, signed at ``now`` (default: the clock); return the HTTP status, or raise
    DeliveryError for any failure, with a message safe to log (retryable as the module's
    docstring says)."""
    _check_url(url)
    if (problem := scheme_problem(url, allow_http)) is not None:
        raise DeliveryError(f"invalid URL: {problem}", retryable=False)
    headers = signed_headers(body, secret, time.time() if now is None else now)
    try:
        request = urllib.request.Request(  # noqa: S310 - _check_url lets only http(s) through
            url, data=body, headers=headers, method="POST")
        with _OPENER.open(request, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        retry = retryable_status(exc.code)
        kind = "" if retry else (" (a redirect: not followed)" if 300 <= exc.code < 400 else
                                 " (final: not retried)")
        raise DeliveryError(f"HTTP {exc.code}{kind}", retryable=retry,
                            http_status=exc.code) from None
    except urllib.error.URLError as exc:
        # a text reason is urllib's own verdict on the URL (unknown scheme, no host): final
        retry = isinstance(exc.reason, OSError)
        raise DeliveryError(_scrub(f"URLError: {exc.reason}", url), retryable=retry) from None
    except (ValueError, http.client.InvalidURL):  # their messages quote pieces of the URL
        raise DeliveryError(_UNPARSABLE, retryable=False) from None
    except Exception as exc:  # noqa: BLE001 - every failure of an attempt is a recorded failure
        raise DeliveryError(_scrub(f"{type(exc).__name__}: {exc}", url)) from None


_UNPARSABLE = "invalid URL: it cannot be parsed (check the port; percent-encode special characters)"


def _check_url(url: str) -> None:
    """Raise a final DeliveryError for a URL that no attempt can use; its message never quotes
    the URL."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - ValueError on a port that is not a number
    except ValueError:
        raise DeliveryError(_UNPARSABLE, retryable=False) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError("invalid URL: expected http(s)://host/path", retryable=False)
    if "@" in parts.netloc:  # urllib would look the whole userinfo up as a host name (DNS)
        raise DeliveryError("invalid URL: credentials in a webhook URL are not supported (put "
                            "the token in the path)", retryable=False)


def _scrub(message: str, url: str) -> str:
    """``message`` without the URL or any piece of it that may be secret (a path segment, the
    query, the userinfo), on one line."""
    pieces = {url}
    scheme_less = url.partition("://")[2]
    userinfo, at, rest = scheme_less.rpartition("@")
    if at:
        pieces.add(userinfo)
    else:
        rest = scheme_less
    cut = min([i for i in (rest.find(c) for c in "/?#") if i >= 0] or [len(rest)])
    tail = rest[cut:]
    pieces.add(tail)
    pieces.update(p for p in re.split(r"[/?#&=;]", tail) if len(p) >= 3)
    for piece in sorted((p for p in pieces if p), key=len, reverse=True):
        message = message.replace(piece, "***")
    return " ".join(message.split())
