"""Mixpanel Engage API stand-in: ``POST /api/query/engage?project_id=ID``.

Checks HTTP Basic auth (service account or legacy secret) and the project id, evaluates the
``where`` the client sends as Mixpanel documents it (sandbox/where.py: a bare string comparison
matches nothing), and serves pages with a ``session_id``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from sandbox.server import Recorded, Reply, StandIn
from sandbox.where import compile_where, created_ranges, created_seconds

PAGE_SIZE = 1000
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
        clock: Callable[[], float] = time.monotonic,
        project_timezone: str = "UTC",
    ) -> None:
        super().__init__()
        self.profiles = list(profiles)
        self.project_id = project_id
        self.username = username
        self.secret = secret
        self.page_size = page_size
        self.queries_per_hour = queries_per_hour
        self.clock = clock
        self.project_timezone = project_timezone  # how Mixpanel reads datetime("...") literals
        self.page_transforms: deque[PageTransform] = deque()
        self._sessions: dict[str, list[dict[str, Any]]] = {}
        self._query_times: deque[float] = deque()
        self._session_lock = threading.Lock()

    def transform_next_page(self, *transforms: PageTransform) -> None:
        """Rewrite the next good pages (e.g. drop session_id), one transform per page."""
        self.page_transforms.extend(transforms)

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
        if self._rate_limited():
            return Reply.json(429, {"error": RATE_LIMIT_MESSAGE, "status": "error"})
        form = request.form()
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

    def error_body(self, status: int) -> Any:
        if status == 429:
            return {"error": RATE_LIMIT_MESSAGE, "status": "error"}
        return {"error": f"scripted error {status}", "status": "error"}

    def _select(self, where: str) -> list[dict[str, Any]]:
        # Evaluated as Mixpanel documents it, in this project's timezone (sandbox/where.py).
        if not where:
            return list(self.profiles)
        ranges = created_ranges(where)
        if ranges is not None:  # the client's own form: the same rules, compared quickly
            return [p for p in self.profiles if _in_ranges(created_seconds(p.get("$properties", {})), ranges)]
        matches = compile_where(where, project_timezone=self.project_timezone)
        return [p for p in self.profiles if matches(p.get("$properties", {}))]

    def _rate_limited(self) -> bool:
        if self.queries_per_hour is None:
            return False
        now = self.clock()
        with self._session_lock:
            while self._query_times and now - self._query_times[0] >= 3600:
                self._query_times.popleft()
            if len(self._query_times) >= self.queries_per_hour:
                return True
            self._query_times.append(now)
        return False


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
