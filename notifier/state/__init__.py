"""The run history: which time each scheduled digest covered, who each message has told, which users
were reported recently. One interface, two backends: `memory` (one instance, local runs and tests)
and `firestore` (shared by every instance, across restarts and deploys).

Nothing here holds a name or an email address: recipients and Mixpanel distinct ids are kept as
hashes (`recipient_key`, `user_key`); counts and times are kept as they are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from notifier.channels import DeliveryStatus


@dataclass(frozen=True, order=True)
class Span:
    """A half-open interval of time ``[start, end)`` in Unix seconds."""

    start: int
    end: int

    @property
    def seconds(self) -> int:
        """The span's length."""
        return self.end - self.start


@dataclass(frozen=True)
class RunRequest:
    """What one delivery of a message asks of the history."""

    message: str  # the message's key (Pub/Sub message id, or a hash of its data and publish time)
    owner: str  # this delivery's own token: two deliveries of one message never share it
    window: Span  # the window the message asks about
    scheduled: bool  # a lookback message: claims its time, catches up gaps, looks back for late arrivals
    now: int
    max_catch_up: int  # seconds: how far back a scheduled run extends over unclaimed time
    late_arrival: int  # seconds: how far before its coverage a scheduled run looks for late arrivals
    lease_seconds: int  # how long this delivery holds the message before another may take over
    keep_seconds: int  # how long the message's record lives (its TTL)
    peek: bool = False  # a dry run: work everything out, write nothing


class Start(StrEnum):
    """How a delivery starts."""

    FRESH = "fresh"  # first delivery of this message
    RESUMED = "resumed"  # an earlier delivery of this message left recipients untold
    ALREADY_COVERED = "already_covered"  # every instant of the window went to an earlier digest


@dataclass(frozen=True)
class RunState:
    """What the history says about this delivery: what to cover, who has been told already."""

    start: Start
    coverage: tuple[Span, ...] = ()  # reported as new: the window, plus unclaimed time caught up
    late: tuple[Span, ...] = ()  # claimed earlier, searched again for users that arrived late
    settled: Mapping[str, Mapping[str, DeliveryStatus]] = field(default_factory=dict)
    previous_users: int | None = None  # users of the previous window of the same length (the trend)
    reported: bytes | None = None  # a resumed message's own users (user keys), as it first reported them

    @property
    def heard(self) -> bool:
        """True when an earlier delivery told someone, or may have: the message's time is theirs."""
        return any(status.heard for marks in self.settled.values() for status in marks.values())


@dataclass(frozen=True)
class ReportedUsers:
    """The users a message reported and the range of their `$created`.

    `keys` is their `user_key`s joined: 8 bytes a user, 0.8 MB at 100,000, where a set of bytes
    objects would take ten times that at the run's peak (the end of fetching).
    """

    keys: bytes
    min_created: int
    max_created: int

    @classmethod
    def of(cls, keys: Iterable[bytes], min_created: int, max_created: int) -> ReportedUsers:
        """From any iterable of user keys, joined as they come (no list of them is ever held)."""
        blob = bytearray()
        for key in keys:
            blob += key
        return cls(bytes(blob), min_created, max_created)


def split_keys(blob: bytes) -> frozenset[bytes]:
    """8-byte user keys, joined, back as a set."""
    return frozenset(blob[i : i + 8] for i in range(0, len(blob) - len(blob) % 8, 8))


@dataclass(frozen=True)
class Ending:
    """How a delivery ended, for the history."""

    users_in_window: int | None = None  # the window's own users, for the next run's trend
    release: bool = False  # nobody could be told and retrying cannot help: give the time back
    covered: tuple[Span, ...] = ()  # the time the message claimed: settled now, open to late search


@dataclass(frozen=True)
class Mark:
    """One recipient's entry in a message's record; `status` None clears a SENDING mark (not sent)."""

    channel: str
    recipient: str  # recipient_key(...)
    status: DeliveryStatus | None


class StateStore(Protocol):
    """The run history; every method is one round trip or one transaction."""

    round_trips: int  # requests made to the store so far (0 for memory)
    waited: float  # seconds spent waiting on those requests' answers

    def begin(self, request: RunRequest) -> RunState:
        """Claim the message (and, when scheduled, its time) or resume it; InProgress if another holds it."""
        ...

    def reported(self, since: int, *, excluding: str) -> frozenset[bytes]:
        """Hashed ids of users created at or after `since` that other messages reported."""
        ...

    def write(
        self,
        request: RunRequest,
        marks: Sequence[Mark],
        *,
        reported: ReportedUsers | None = None,
        ending: Ending | None = None,
    ) -> None:
        """One commit: recipients' marks, the users the message reports (once), and how it ended.

        A SENDING mark is written before a request goes out: a delivery resumed after a crash sees it
        and never sends to that recipient again (it counts as unconfirmed).
        """
        ...

    def finish(self, request: RunRequest, ending: Ending) -> None:
        """Let go of the message's lease and store its count (as `write`), or give its time back."""
        ...

    def check(self) -> None:
        """One read and one write, for `python -m notifier check`."""
        ...


def recipient_key(channel: str, recipient: str) -> str:
    """A recipient as the history keeps it: a hash, never the address, number or webhook URL."""
    digest = hashlib.sha256(f"{channel}:{recipient.strip().lower()}".encode()).hexdigest()
    return "r" + digest[:24]


def user_key(distinct_id: str) -> bytes:
    """A Mixpanel distinct id as the history keeps it: 8 bytes of its hash (collisions ~1e-9 at 100k)."""
    return hashlib.sha256(b"notifierator-user:" + distinct_id.encode("utf-8", "replace")).digest()[:8]
