"""Reading what providers answer, defensively: error bodies of any shape, and whether a failed
request ever left this process. Shared by the clients (Mixpanel, Firestore, SendGrid, Twilio, Slack),
so an odd answer from any of them is read the same careful way.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import threading
import urllib.error
import urllib.request
from typing import Any

MAX_DETAIL_CHARS = 200
# Keys under which the providers put a human-readable reason, most specific first:
# SendGrid errors[].message, Twilio message / RFC 9457 detail+title, Google error.message, Mixpanel error.
_REASON_KEYS = ("message", "detail", "title", "error", "error_description", "reason", "code")
# "+" and any digits (E.164 allows 2 to 15: +6834002 is a number), or 8 digits and more without it.
_PHONE = re.compile(r"\+\d[\d ().-]{0,20}\d|\d[\d ().-]{6,18}\d")
_EMAIL = re.compile(r"[^\s@<>()\"',;:]+@([^\s@<>()\"',;:]+\.[^\s@<>()\"',;:]+)")


def error_detail(body: object, limit: int = MAX_DETAIL_CHARS) -> str:
    """A short, one-line reason from an error body of any shape, with phones and addresses masked."""
    if isinstance(body, bytes | bytearray):
        text = bytes(body[: 64 * 1024]).decode("utf-8", "replace")
    elif isinstance(body, str):
        text = body[: 64 * 1024]
    elif body is None:
        text = ""
    else:
        text = _reason(body) or ""
    try:
        parsed: Any = json.loads(text) if text.lstrip()[:1] in ("{", "[", '"') else None
    except (ValueError, RecursionError):
        parsed = None
    reason = _reason(parsed) if parsed is not None else None
    # Cut before masking: the masks are regular expressions, and a 100 KB body is not worth reading.
    detail = " ".join((reason if reason is not None else text)[: 4 * limit].split())
    detail = mask_contacts(detail)
    if len(detail) > limit:
        detail = detail[: limit - 1] + "…"
    return detail or "(empty body)"


def _reason(value: object, depth: int = 0) -> str | None:
    """The first readable reason found in parsed JSON, looking a few levels down."""
    if depth > 4:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list):
        reasons = [r for item in value[:5] if (r := _reason(item, depth + 1))]
        return "; ".join(dict.fromkeys(reasons)) or None
    if isinstance(value, dict):
        if "errors" in value:
            found = _reason(value["errors"], depth + 1)
            if found:
                return found
        for key in _REASON_KEYS:
            if key in value:
                found = _reason(value[key], depth + 1)
                if found:
                    return found
    return None


def mask_contacts(text: str) -> str:
    """Phone numbers down to their last 4 digits, email addresses down to their domain."""
    text = _EMAIL.sub(lambda m: f"•••@{m.group(1)}", text)
    return _PHONE.sub(lambda m: mask_phone(re.sub(r"\D", "", m.group(0))), text)


def mask_phone(number: str) -> str:
    """A phone number with all but its last 4 digits hidden, for logs."""
    digits = number.lstrip("+")
    shown = min(4, len(digits) // 2)  # never most of a short number (E.164 allows 2 to 15 digits)
    return "+" + "•" * (len(digits) - shown) + digits[len(digits) - shown :]


def urllib_request_was_sent(error: BaseException) -> bool:
    """For urllib (SendGrid, Slack): did the request reach the server before `error`?

    urllib wraps whatever fails while connecting and sending in URLError; anything raised after that,
    while waiting for or reading the answer, comes through bare: the server may have acted on it.
    """
    if isinstance(error, urllib.error.HTTPError):
        return True  # an answer came back
    if isinstance(error, urllib.error.URLError):
        return False
    return isinstance(error, OSError | http.client.HTTPException | TimeoutError | socket.timeout)


def requests_request_was_sent(error: BaseException) -> bool:
    """For requests (Twilio, Mixpanel): did the request reach the server before `error`?

    Connecting (DNS, TCP, TLS) failures and connect timeouts mean it did not; a read timeout or a
    connection dropped after sending means it may have been acted on.
    """
    import requests

    if isinstance(
        error, requests.ConnectTimeout | requests.exceptions.SSLError | requests.exceptions.ProxyError
    ):
        return False
    if isinstance(error, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return False
    if isinstance(error, requests.ConnectionError):
        return not _failed_to_connect(error)
    return isinstance(error, requests.RequestException)


def _failed_to_connect(error: BaseException) -> bool:
    from urllib3.exceptions import NameResolutionError, NewConnectionError

    seen: set[int] = set()
    pending: list[object] = [error]
    while pending:
        item = pending.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, NewConnectionError | NameResolutionError | ConnectionRefusedError | ssl.SSLError):
            return True
        if isinstance(item, BaseException):
            pending.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return False


class RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """For urllib clients: a redirect becomes an HTTPError, since following it would send the
    credential (SendGrid's key) or the message (a Slack 301/302 turns into a bodiless GET elsewhere)."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def refusing_opener() -> urllib.request.OpenerDirector:
    """A urllib opener that refuses redirects and shares the process's one TLS context.

    urllib's own HTTPS handler loads the CA store for every opener it builds (about 45 ms each here,
    three times in a first run); proxies are still read from the environment each time."""
    return urllib.request.build_opener(RefuseRedirects(), _SharedTLS())


class _SharedTLS(urllib.request.HTTPSHandler):
    """urllib's HTTPS handler with a verifying context made at the first https request, then kept."""

    def __init__(self) -> None:
        urllib.request.AbstractHTTPHandler.__init__(self)  # no context yet: plain-http runs never need one

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(http.client.HTTPSConnection, req, context=tls_context())


class _OneTLSContext:
    """The verifying TLS context urllib would make (certificates and hostnames checked, HTTP/1.1),
    made once under a lock: functools.cache does not lock, so racing first calls would each load it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None
        self.made = 0  # contexts made so far: 1 after any number of https requests

    def __call__(self) -> ssl.SSLContext:
        with self._lock:
            if self._context is None:
                context = ssl.create_default_context()
                context.set_alpn_protocols(["http/1.1"])
                context.post_handshake_auth = True  # as urllib's own context
                self._context = context
                self.made += 1
            return self._context

    def forget(self) -> None:
        """Drop the context, so the next request loads the CA store again (tests that change it)."""
        with self._lock:
            self._context = None
            self.made = 0


tls_context = _OneTLSContext()
