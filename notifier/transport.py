"""The one HTTP stack every outbound call goes through: Mixpanel, Secret Manager, Firestore, SendGrid,
Twilio, Slack, and the check's own questions.

One `requests.Session` per instance, so connections outlive a run; no redirect is ever followed (a
3xx is an answer for the caller to refuse); requests' own TLS verification; Google's OAuth token
added by google-auth on the same session. Each call's whole time (token, connect, headers, body) is
bounded by what is left of the run's budget, and none starts without useful time left.

What a call can fail with before any answer is one table, `FAILURES`, read as httpx reads its
transport's exceptions (the first match names it), and one rule, `left`, says whether the request
may have reached the server: only a failure while connecting means it did not.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode

import requests
import urllib3.exceptions
from requests.auth import AuthBase

from notifier import logs
from notifier.retry import MIN_USEFUL_SECONDS, Deadline, RetryPolicy

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

GOOGLE_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
CHUNK_BYTES = 64 * 1024
# No answer here is near this (a Mixpanel page is about 1 MB): past it, reading stops (`complete`
# False), so a proxy streaming without end cannot fill the function's memory.
MAX_BODY_BYTES = 32 * 2**20
ACCEPT_JSON: Mapping[str, str] = MappingProxyType({"Accept": "application/json"})


@dataclass(frozen=True)
class Request:
    """One request as the caller means it; the transport adds the credentials and sends it."""

    method: str
    url: str
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    basic: tuple[str, str] | None = None  # HTTP Basic user and password
    bearer: str | None = None  # an API key sent as a bearer token
    google: bool = False  # add the instance's Google OAuth token
    secret_url: bool = False  # the URL is itself a secret (a Slack webhook)

    @classmethod
    def json(cls, method: str, url: str, payload: Any, **options: Any) -> Request:
        """A request whose body is `payload` as JSON."""
        headers = {"Content-Type": "application/json", **options.pop("headers", {})}
        return cls(method, url, json.dumps(payload).encode(), headers=headers, **options)

    @classmethod
    def form(cls, method: str, url: str, fields: Mapping[str, Any], **options: Any) -> Request:
        """A request whose body is `fields` form-encoded (a list value repeats its field)."""
        headers = {"Content-Type": "application/x-www-form-urlencoded", **options.pop("headers", {})}
        return cls(method, url, urlencode(fields, doseq=True).encode(), headers=headers, **options)


@dataclass(frozen=True)
class Answer:
    """What the server answered; `complete` is False when its body broke or stalled past the budget."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    complete: bool = True

    @property
    def accepted(self) -> bool:
        """True for a 2xx: the server took the request, whatever became of the body."""
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError when it is not."""
        return json.loads(self.body)


class Unanswered(Exception):
    """No answer came back: `reason` says why, `sent` whether the request may have reached the server."""

    def __init__(self, reason: str, *, sent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sent = sent


class NoCredentials(Unanswered):
    """There are no Google credentials to add: a configuration matter, nothing was sent."""

    def __init__(self) -> None:
        super().__init__("found no Google credentials", sent=False)


# What was raised before any answer, and what it means before and after the request left (see
# `left`); the first match names it, so the most specific come first.
FAILURES: tuple[tuple[type[BaseException], str, str], ...] = (
    (requests.exceptions.ConnectTimeout, "did not accept a connection in time", "did not answer in time"),
    (requests.exceptions.ProxyError, "could not be reached through the proxy", "broke the proxy's tunnel"),
    (requests.exceptions.SSLError, "failed the TLS handshake (an untrusted certificate?)", "broke TLS"),
    (requests.exceptions.ReadTimeout, "did not answer in time", "did not answer in time"),
    (requests.exceptions.ConnectionError, "is unreachable", "dropped the connection"),
    (
        requests.exceptions.InvalidURL,
        "has an address that cannot be used",
        "has an address that cannot be used",
    ),
    (requests.exceptions.RequestException, "could not be asked", "failed"),
    (urllib3.exceptions.HTTPError, "could not be asked", "broke the connection"),
    (http.client.HTTPException, "could not be asked", "broke the exchange"),
    (OSError, "is unreachable", "broke the connection"),
)
# Raised only while connecting (DNS, TCP, TLS handshake, proxy tunnel, a token): nothing left.
_BEFORE_SENDING: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectTimeout,
    requests.exceptions.ProxyError,
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
    urllib3.exceptions.ConnectTimeoutError,  # NewConnectionError and NameResolutionError too
    urllib3.exceptions.ProxyError,
    ssl.SSLCertVerificationError,
    ConnectionRefusedError,
)
_HANDSHAKE_REASONS = ("HANDSHAKE", "VERSION", "PROTOCOL")


def unanswered(error: BaseException) -> Unanswered | None:
    """The Unanswered a transport failure means, or None when `error` is not one (a bug)."""
    if isinstance(error, Unanswered):
        return error
    google = _google_failure(error)
    if google is not None:
        return google
    meaning = next((said for kind, *said in FAILURES if isinstance(error, kind)), None)
    if meaning is None:
        return None
    sent = left(error)
    return Unanswered(f"{meaning[sent]} ({type(error).__name__})", sent=sent)


def left(error: BaseException) -> bool:
    """The one rule: did the request leave? Not when it failed while connecting; maybe, otherwise."""
    for cause in _causes(error):
        if isinstance(cause, _BEFORE_SENDING):
            return False
        if isinstance(cause, ssl.SSLError) and any(
            word in str(cause.reason or "") for word in _HANDSHAKE_REASONS
        ):
            return False
    return True


def _causes(error: BaseException) -> Iterator[object]:
    """`error` and everything it wraps: causes, contexts, urllib3's reasons and arguments."""
    seen: set[int] = set()
    pending: list[object] = [error]
    while pending:
        item = pending.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        if isinstance(item, BaseException):
            pending += [item.__cause__, item.__context__, getattr(item, "reason", None), *item.args]


def _google_failure(error: BaseException) -> Unanswered | None:
    module = type(error).__module__
    if not module.startswith("google.auth"):
        return None
    from google.auth import exceptions

    if isinstance(error, exceptions.DefaultCredentialsError):
        return NoCredentials()
    if isinstance(error, exceptions.GoogleAuthError):
        return Unanswered(f"could not get a Google access token ({type(error).__name__})", sent=False)
    return None


class Transport:
    """One requests.Session for every call of an instance; thread-safe, as requests' pool is."""

    def __init__(self, session: requests.Session | None = None) -> None:
        self._session = session or requests.Session()
        # No cookie is kept: nothing one service sets may travel to another.
        self._session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self._google: tuple[Credentials, str | None] | None = None
        self._google_lock = threading.Lock()

    def send(
        self, request: Request, deadline: Deadline, policy: RetryPolicy, *, reserve: float = 0.0
    ) -> Answer:
        """Send `request` once within the deadline (plus `reserve`); raises Unanswered without an answer.
        A status that arrived stands, even if the body then breaks or outlasts the time (`complete`)."""
        left_seconds = deadline.remaining() + reserve
        if left_seconds < MIN_USEFUL_SECONDS:
            raise Unanswered("was not asked: the run's time had run out", sent=False)
        exchange = _Exchange(lambda timeouts: self._open(request, timeouts), deadline, reserve, policy)
        worker = threading.Thread(target=exchange.run, name="transport-call", daemon=True)
        worker.start()
        finished = exchange.done.wait(left_seconds)
        return exchange.outcome(finished)

    def google_project(self) -> str | None:
        """The project of the instance's Google credentials; raises NoCredentials without any."""
        return self._google_credentials()[1]

    def _google_credentials(self) -> tuple[Credentials, str | None]:
        with self._google_lock:
            if self._google is None:
                import google.auth
                from google.auth import exceptions

                try:
                    self._google = google.auth.default(scopes=[GOOGLE_SCOPE])
                except exceptions.DefaultCredentialsError:
                    raise NoCredentials() from None
            return self._google

    def _authorization(self, request: Request) -> str | None:
        """The Authorization header `request` travels with; every credential in it is hidden from logs."""
        if request.basic is not None:
            token = base64.b64encode(":".join(request.basic).encode()).decode()
            logs.hide(token)
            return f"Basic {token}"
        if request.bearer is not None:
            logs.hide(request.bearer)
            return f"Bearer {request.bearer}"
        if request.google:
            return self._google_token(request)
        return None

    def _google_token(self, request: Request) -> str | None:
        from google.auth.transport.requests import Request as GoogleRequest

        credentials, _project = self._google_credentials()
        headers: dict[str, str] = {}
        with self._google_lock:  # one refresh at a time; the token is then shared
            credentials.before_request(
                # google-auth calls only `request` on what it is given.
                GoogleRequest(cast(requests.Session, _NoRedirects(self._session))),
                request.method,
                request.url,
                headers,
            )  # type: ignore[no-untyped-call]
        value = headers.get("authorization") or headers.get("Authorization")
        if value:
            logs.hide(value.partition(" ")[2] or value)
        return value

    def _open(self, request: Request, timeouts: tuple[float, float]) -> requests.Response:
        if request.secret_url:
            logs.hide(request.url)
        return self._session.request(
            request.method,
            request.url,
            params=dict(request.params) or None,
            data=request.body or None,
            headers=dict(request.headers),
            # Always set, so requests never falls back to a ~/.netrc password.
            auth=_Authorization(self._authorization(request)),
            timeout=timeouts,
            allow_redirects=False,
            stream=True,
        )


class _NoRedirects:
    """The session as google-auth's token calls use it, with redirects never followed there either."""

    def __init__(self, session: requests.Session) -> None:
        self.session = session

    def request(self, method: str, url: str, **options: Any) -> requests.Response:
        return self.session.request(method, url, allow_redirects=False, **options)

    def close(self) -> None:
        """google-auth closes its session when done with it; this one is the instance's, and stays."""


class _Authorization(AuthBase):
    """Sets the Authorization header the transport built (or none)."""

    def __init__(self, value: str | None) -> None:
        self.value = value

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.value is not None:
            prepared.headers["Authorization"] = self.value
        return prepared


class _Exchange:
    """One request in flight on a worker thread, and what the caller's thread can see of it."""

    def __init__(
        self,
        open_: Callable[[tuple[float, float]], requests.Response],
        deadline: Deadline,
        reserve: float,
        policy: RetryPolicy,
    ) -> None:
        self.open, self.deadline, self.reserve, self.policy = open_, deadline, reserve, policy
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.status: int | None = None
        self.headers: Mapping[str, str] = {}
        self.chunks: list[bytes] = []
        self.complete = False
        self.abandoned = False
        self.error: BaseException | None = None

    def time_left(self) -> float:
        return self.deadline.remaining() + self.reserve

    def run(self) -> None:
        """Open the request and read its answer; whatever happens, the caller's thread is told."""
        left_seconds = max(self.time_left(), MIN_USEFUL_SECONDS)
        timeouts = (
            min(self.policy.connect_timeout, left_seconds),
            min(self.policy.read_timeout, left_seconds),
        )
        try:
            response = self.open(timeouts)
            with self.lock:
                self.status, self.headers = response.status_code, response.headers
            with response:  # closed whatever the body does: a broken one is never reused
                self._read(response)
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread, which maps it
            self.error = error
        finally:
            self.done.set()

    def _read(self, response: requests.Response) -> None:
        # read1 returns what one read brings: a body trickled a byte at a time is seen to outlast the time.
        size = 0
        while chunk := response.raw.read1(CHUNK_BYTES, decode_content=True):
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return
            with self.lock:
                self.chunks.append(chunk)
            if self.abandoned or self.time_left() <= 0:
                return
        self.complete = True

    def outcome(self, finished: bool) -> Answer:
        with self.lock:
            self.abandoned = not finished
            if self.status is not None:
                body = b"".join(self.chunks)
                return Answer(self.status, self.headers, body, complete=finished and self.complete)
        if not finished:
            raise Unanswered("had not answered when the run's time ran out", sent=True)
        assert self.error is not None, "a finished exchange has a status or an error"
        mapped = unanswered(self.error)
        if mapped is None:
            raise self.error  # not the transport: a bug, for the run's edge to report
        raise mapped from None
