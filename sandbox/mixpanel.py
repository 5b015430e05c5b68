"""Mixpanel Engage API stand-in: ``POST /api/query/engage?project_id=ID``.

Checks HTTP Basic auth (service account or legacy secret) and the project id, evaluates the
``where`` the client sends as Mixpanel documents it (sandbox/where.py: a bare string comparison
matches nothing), and serves pages with a ``session_id``. It counts as Mixpanel counts: only the
first page of a query counts against the hourly limit (later pages, fetched with its session_id,
do not, and neither does a 429), every request counts against the 5 at once, and a 429 carries
``Retry-After`` and ``RateLimit-Policy``. Each page can be answered after a delay, as real pages
take hundreds of milliseconds.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from sandbox.server import Fault, Recorded, Reply, StandIn
from sandbox.where import compile_where, created_ranges, created_seconds

PAGE_SIZE = 1000
QUERIES_PER_HOUR = 60
AT_ONCE = 5
RATE_LIMIT_MESSAGE = (
    "Query rate limit exceeded: your project has exceeded the limit of 60 queries per hour. "
    "Please retry later."
)
PageTransform = Callable[[dict[str, Any]], dict[str, Any]]


class MixpanelStandIn(StandIn):
    """Serves `profiles` (Engage result objects) to clients with the right credentials."""

    name = "mixpanel"

    def __init__(
        self,
        profiles: Iterable[dict[str, Any]] = (),
        *,
        project_id: int = 4242,
        username: str | None = "notifier.sa",
        secret: str = "mixpanel-secret",
        page_size: int = PAGE_SIZE,
        queries_per_hour: int | None = None,
        at_once: int | None = AT_ONCE,
        page_delay: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        project_timezone: str = "UTC",
    ) -> None:
        super().__init__()
        self.profiles = list(profiles)
        self.project_id = project_id
        self.username = username
        self.secret = secret
        self.page_size = page_size
        self.queries_per_hour = queries_per_hour  # None: no hourly limit
        self.at_once = at_once  # None: no limit on requests at once
        self.page_delay = page_delay  # seconds before each page is answered
        self.sleep = sleep
        self.clock = clock
        self.project_timezone = project_timezone  # how Mixpanel reads datetime("...") literals
        self.page_transforms: deque[PageTransform] = deque()
        self.most_at_once = 0  # the most requests it was answering at one time
        self._sessions: dict[str, list[dict[str, Any]]] = {}
        self._query_times: deque[float] = deque()
        self._in_flight = 0
        self._counted = 0
        self._session_lock = threading.Lock()

    @property
    def counted(self) -> int:
        """The queries that counted against the hourly limit: first pages answered, not 429s."""
        with self._session_lock:
            return self._counted

    def transform_next_page(self, *transforms: PageTransform) -> None:
        """Rewrite the next good pages (e.g. drop session_id), one transform per page."""
        self.page_transforms.extend(transforms)

    def forget_sessions(self) -> None:
        """Expire every session, as Mixpanel does after a while: later pages of them are refused."""
        with self._session_lock:
            self._sessions.clear()

    def respond(self, request: Recorded) -> Reply:
        if request.method != "POST" or request.path != "/api/query/engage":
            return Reply.json(404, {"error": "not found", "status": "error"})
        expected = (self.username, self.secret) if self.username else (self.secret, "")
        if request.basic_auth() != expected:
            return Reply.json(401, {"error": "Invalid credentials", "status": "error"})
        if request.query.get("project_id") != str(self.project_id):
            return Reply.json(
                403, {"error": "service account lacks access to this project", "status": "error"}
            )
        form = request.form()
        limited = self._admit(counted=not form.get("session_id"))
        if limited is not None:
            return limited
        try:
            if self.page_delay:
                self.sleep(self.page_delay)
            return self._page(form)
        finally:
            with self._session_lock:
                self._in_flight -= 1

    def fault_reply(self, fault: Fault, request: Recorded) -> Reply:
        # A scripted 429 says what Mixpanel's does: the limit and when room returns.
        if fault.status_code == 429 and fault.reply is None and not fault.headers:
            body = fault.body if fault.body is not None else self.error_body(429)
            return Reply.json(429, body, self._limit_headers("project", 60))
        return super().fault_reply(fault, request)

    def error_body(self, status: int) -> Any:
        if status == 429:
            return {"error": RATE_LIMIT_MESSAGE, "status": "error"}
        return {"error": f"scripted error {status}", "status": "error"}

    def _page(self, form: dict[str, str]) -> Reply:
        session_id = form.get("session_id")
        page = int(form.get("page", "0") or 0)
        if page > 0 and not session_id:
            return Reply.json(400, {"error": "page requires session_id", "status": "error"})
        with self._session_lock:
            if session_id:
                matching = self._sessions.get(session_id)
                if matching is None:
                    return Reply.json(400, {"error": "unknown or expired session_id", "status": "error"})
            else:
                try:
                    matching = self._select(form.get("where", ""))
                except ValueError as error:
                    return Reply.json(400, {"error": str(error), "status": "error"})
                session_id = uuid.uuid4().hex
                self._sessions[session_id] = matching
        wanted = _output_properties(form.get("output_properties"))
        chunk = matching[page * self.page_size : (page + 1) * self.page_size]
        payload: dict[str, Any] = {
            "page": page,
            "page_size": self.page_size,
            "results": [_project(profile, wanted) for profile in chunk],
            "session_id": session_id,
            "status": "ok",
            "total": len(matching),
        }
        with self._session_lock:
            transform = self.page_transforms.popleft() if self.page_transforms else None
        if transform is not None:
            payload = transform(payload)
        return Reply.json(200, payload)

    def _select(self, where: str) -> list[dict[str, Any]]:
        # Evaluated as Mixpanel documents it, in this project's timezone (sandbox/where.py).
        if not where:
            return list(self.profiles)
        quick = created_ranges(where)
        if quick is not None:  # the client's own form: the same rules, compared quickly
            name, ranges = quick
            return [
                p
                for p in self.profiles
                if _in_ranges(created_seconds(p.get("$properties", {}), name), ranges)
            ]
        matches = compile_where(where, project_timezone=self.project_timezone)
        return [p for p in self.profiles if matches(p.get("$properties", {}))]

    def _admit(self, *, counted: bool) -> Reply | None:
        """Take a place among the requests at once, and a first page's place in the hour; or a 429."""
        now = self.clock()
        with self._session_lock:
            if self.at_once is not None and self._in_flight >= self.at_once:
                return Reply.json(
                    429,
                    {"error": "too many concurrent queries", "status": "error"},
                    self._limit_headers("project-concurrency", 1),
                )
            while self._query_times and now - self._query_times[0] >= 3600:
                self._query_times.popleft()
            full = self.queries_per_hour is not None and len(self._query_times) >= self.queries_per_hour
            if counted and full:
                wait = math.ceil(3600 - (now - self._query_times[0]))
                return Reply.json(
                    429,
                    {"error": RATE_LIMIT_MESSAGE, "status": "error"},
                    self._limit_headers("project", max(wait, 1)),
                )
            if counted:
                self._query_times.append(now)
                self._counted += 1
            self._in_flight += 1
            self.most_at_once = max(self.most_at_once, self._in_flight)
        return None

    def _limit_headers(self, tripped: str, retry_after: int) -> dict[str, str]:
        hourly = self.queries_per_hour or QUERIES_PER_HOUR
        at_once = self.at_once or AT_ONCE
        return {
            "Retry-After": str(retry_after),
            "RateLimit-Policy": (
                f'"project";q={hourly};w=3600, "project-concurrency";q={at_once};qu="concurrent-requests"'
            ),
            "RateLimit": f'"{tripped}";r=0;t={retry_after}',
        }


def _in_ranges(seconds: float | None, ranges: list[tuple[float, float]]) -> bool:
    return seconds is not None and any(start <= seconds < end for start, end in ranges)


def _output_properties(raw: str | None) -> set[str] | None:
    if not raw:
        return None
    names = json.loads(raw)
    return set(names) if isinstance(names, list) else None


def _project(profile: dict[str, Any], wanted: set[str] | None) -> dict[str, Any]:
    props = profile.get("$properties", {})
    if wanted is not None:
        props = {k: v for k, v in props.items() if k in wanted}
    return {"$distinct_id": profile.get("$distinct_id"), "$properties": props}


def profile(distinct_id: str, created: str, **properties: Any) -> dict[str, Any]:
    """An Engage result object; `properties` use names without the `$` (name=, email=...)."""
    props = {"$created": created} if created else {}
    props.update({f"${key}": value for key, value in properties.items()})
    return {"$distinct_id": distinct_id, "$properties": props}
