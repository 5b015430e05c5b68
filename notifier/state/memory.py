"""The `memory` backend: the history in this instance's memory, for local runs and tests.

It keeps the same records as Firestore with the same rules (`notifier.state.rules`), but only as
long as the instance lives: a redelivery that lands on a fresh instance starts from nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import replace

from notifier.state import Ending, Intent, Mark, ReportedUsers, RunRequest, RunState, Start, split_keys
from notifier.state.rules import Coverage, RunRecord, claim, ended, noted, reported_expiry


class MemoryStore:
    """The history in dicts, one lock making each method atomic, as a Firestore transaction is."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.round_trips = 0  # nothing leaves the process
        self.waited = 0.0
        self._coverage = Coverage()
        self._records: dict[str, RunRecord] = {}
        self._reported: dict[str, tuple[ReportedUsers, int]] = {}  # message -> users, expire_at

    def begin(self, request: RunRequest) -> RunState:
        """Claim or resume the message; see StateStore."""
        with self._lock:
            self._expire(request.now)
            key = request.message
            state, record, coverage = claim(key, self._records.get(key), self._coverage, request)
            if request.intent is not Intent.DRY_RUN:
                if record is not None:
                    self._records[request.message] = record
                self._coverage = coverage
            if state.start is Start.RESUMED and request.message in self._reported:
                state = replace(state, reported=self._reported[request.message][0].keys)
            return state

    def reported(self, since: int, *, excluding: str) -> frozenset[bytes]:
        """Hashed ids other messages reported, created at or after `since`."""
        with self._lock:
            found: set[bytes] = set()
            for message, (users, _expire) in self._reported.items():
                if message != excluding and users.max_created >= since:
                    found |= split_keys(users.keys)
            return frozenset(found)

    def note(self, request: RunRequest, marks: Iterable[Mark], *, reported: ReportedUsers | None) -> None:
        """Notes and, the first time, the users reported, at once; see StateStore."""
        with self._lock:
            record = self._records.get(request.message)
            if record is not None:
                self._records[request.message] = self._with_reported(request, noted(record, marks), reported)

    def end(self, request: RunRequest, ending: Ending) -> None:
        """Let go of the message; see StateStore."""
        with self._lock:
            record = self._records.get(request.message)
            if record is None:
                return
            record = self._with_reported(request, record, ending.reported)
            after, self._coverage = ended(request.message, record, self._coverage, ending)
            if after is None:
                del self._records[request.message]
                self._reported.pop(request.message, None)  # nobody heard of them: not reported after all
            else:
                self._records[request.message] = after

    def check(self) -> None:
        """Memory always answers."""

    def _with_reported(
        self, request: RunRequest, record: RunRecord, reported: ReportedUsers | None
    ) -> RunRecord:
        if reported is None:
            return record
        self._reported[request.message] = (reported, reported_expiry(request, reported))
        return replace(record, reported_chunks=1)

    def _expire(self, now: int) -> None:
        # What Firestore's TTL policy does for the other backend.
        self._records = {key: r for key, r in self._records.items() if r.expire_at > now}
        self._reported = {key: entry for key, entry in self._reported.items() if entry[1] > now}
