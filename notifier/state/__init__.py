"""The run history: which time each scheduled digest covered, who each message has told, which users
were reported recently. One interface (`StateStore`), two backends: `memory` (one instance, local
runs and tests) and `firestore` (shared by every instance, across restarts and deploys); both apply
the same rules (`notifier.state.rules`).

The history knows messages, recipients and users only by hashes (`recipient_key`, `user_key`), and
nothing of channels or rendering: what it keeps of a recipient is a `Note`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from notifier.span import Span


class Intent(StrEnum):
    """What a delivery asks of the history when it begins."""

    RUN = "run"  # claim the message (and, when scheduled, its time), or resume it
    DRY_RUN = "dry_run"  # work out what a run would cover; write nothing
    GIVE_UP = "give_up"  # a stale message: take over its record, if any, only to end it; claim nothing


@dataclass(frozen=True)
class RunRequest:
    """What one delivery of a message asks of the history."""

    message: str  # the message's key (Pub/Sub message id, or a hash of its data and publish time)
    owner: str  # this delivery's own token: two deliveries of one message never share it
    window: Span  # the window the message asks about
    published: int  # when the message was published (Unix seconds): how old it is, to later runs
    scheduled: bool  # a lookback message: claims its time, catches up gaps, looks back for late arrivals
    now: int
    max_catch_up: int  # seconds: how far back a scheduled run extends over unclaimed time
    late_arrival: int  # seconds: how long after its creation a profile may reach Mixpanel
    lease_seconds: int  # how long this delivery holds the message before another may take over
    runs_for: int  # seconds after its publishing that a delivery may still run (then it only gives up)
    keep_seconds: int  # how long the message's record lives (its TTL)
    intent: Intent = Intent.RUN
    takes_held: bool = False  # it tells what quiet runs held back: it takes their tallies at its claim
    channels: tuple[str, ...] = ()  # the channels it is for (kept for a later run that ends it)


class Start(StrEnum):
    """How a delivery starts."""

    FRESH = "fresh"  # the first delivery of this message: it holds the message now
    RESUMED = "resumed"  # an earlier delivery left the message open: this one holds it now
    ALREADY_COVERED = "already_covered"  # every instant of the window went to an earlier digest
    ENDED = "ended"  # an earlier delivery ended the message: nothing is left to do
    ABSENT = "absent"  # (giving up) the history has no record of the message
    LAPSED = "lapsed"  # (giving up) its record expired while it was open: who it told is unknown


@dataclass(frozen=True, order=True)
class Held:
    """A tally a quiet run held back: how many users it found, from when (Unix seconds)."""

    since: int
    users: int


class Note(StrEnum):
    """What the history keeps of one recipient of a message."""

    SENDING = "sending"  # a request to them was about to go out; found on resume, it may have arrived
    DELIVERED = "delivered"  # the provider took it
    UNCONFIRMED = "unconfirmed"  # the request went out and its answer was lost
    REJECTED = "rejected"  # the provider refused it

    @property
    def told(self) -> bool:
        """True when the recipient has, or may have, the digest."""
        return self is not Note.REJECTED


@dataclass(frozen=True)
class OpenClaim:
    """A message that has not ended: the time it claimed is its until it does (a backfill claims none,
    but is kept so that its recipients are not left untold unnoticed)."""

    message: str  # its key, as RunRequest.message
    published: int  # Unix seconds: once it is too old for any delivery to run, a later run ends it
    window: Span
    spans: tuple[Span, ...]  # the time it claimed: its window and the time it caught up (none: a backfill)
    scheduled: bool = True
    channels: tuple[str, ...] = ()  # the channels it is for


@dataclass(frozen=True)
class RunState:
    """What the history says about this delivery: what to cover and who was told already."""

    start: Start
    coverage: tuple[Span, ...] = ()  # reported as new: the window, plus unclaimed time caught up
    late: tuple[Span, ...] = ()  # covered earlier, searched again for users that reached Mixpanel late
    notes: Mapping[str, Mapping[str, Note]] = field(default_factory=dict)  # channel -> recipient key
    previous_users: int | None = None  # users of the previous window of the same length (the trend)
    reported: bytes | None = None  # a resumed message's own users (user keys), as it first reported them
    held: Mapping[str, Held] = field(default_factory=dict)  # quiet runs' tallies it tells, taken at its claim
    abandoned: tuple[OpenClaim, ...] = ()  # (a fresh claim) open messages no delivery can run any more
    lapsed: tuple[OpenClaim, ...] = ()  # (a fresh claim) time an earlier version left open: given up
    beyond_reach: tuple[Span, ...] = ()  # (a fresh claim) time given back, older than its catch-up reaches

    @property
    def holds_message(self) -> bool:
        """True when this delivery holds the message and so must end it."""
        return self.start in (Start.FRESH, Start.RESUMED)

    @property
    def told_anyone(self) -> bool:
        """True when an earlier delivery told someone, or may have: the message's time is theirs."""
        return any(note.told for notes in self.notes.values() for note in notes.values())


@dataclass(frozen=True)
class ReportedUsers:
    """The users a message reported and the latest of their created times.

    `keys` is their `user_key`s joined: 8 bytes a user, 0.8 MB at 100,000, where a set of bytes
    objects would take ten times that at the run's peak (the end of fetching).
    """

    keys: bytes
    max_created: int

    @classmethod
    def of(cls, keys: Iterable[bytes], max_created: int) -> ReportedUsers:
        """From any iterable of user keys, joined as they come (no list of them is ever held)."""
        blob = bytearray()
        for key in keys:
            blob += key
        return cls(bytes(blob), max_created)


USER_KEY_BYTES = 8


def split_keys(blob: bytes) -> frozenset[bytes]:
    """User keys, joined, back as a set."""
    size = USER_KEY_BYTES
    return frozenset(blob[i : i + size] for i in range(0, len(blob) - len(blob) % size, size))


@dataclass(frozen=True)
class Mark:
    """One recipient's note in a message's record; `note` None clears a SENDING note (not sent after all)."""

    channel: str
    recipient: str  # recipient_key(...)
    note: Note | None


class End(StrEnum):
    """How a message that a delivery holds is let go (`notifier.decision` picks one)."""

    CLOSE = "close"  # done: its time is final, searched later for late arrivals; redeliveries do nothing
    KEEP_OPEN = "keep_open"  # recipients are left: the lease is let go so a redelivery resumes at once
    RELEASE = "release"  # nobody was told for a reason a person must fix: its time is given back


@dataclass(frozen=True)
class Ending:
    """Everything the history takes when a delivery lets go of its message, in one write."""

    how: End
    covered: tuple[Span, ...]  # the message's coverage as `begin` gave it: closing opens it to late search
    marks: tuple[Mark, ...] = ()  # outcomes noted since the last write
    reported: ReportedUsers | None = None  # the users the message reports, when no write took them yet
    window_users: int | None = None  # the window's own users, when this delivery counted them (the trend)
    held_back: int | None = None  # a quiet run's users, kept as a tally for the next run that tells them
    held_returned: Mapping[str, Held] = field(default_factory=dict)  # tallies it took but did not tell


class StateStore(Protocol):
    """The run history."""

    round_trips: int  # requests made to the store so far (0 for memory)
    waited: float  # seconds spent waiting on those requests' answers

    def begin(self, request: RunRequest) -> RunState:
        """Claim the message (and, when scheduled, its time) or resume it; InProgress if another holds it."""
        ...

    def reported(self, since: int, *, excluding: str) -> frozenset[bytes]:
        """Hashed ids of users created at or after `since` that other messages reported."""
        ...

    def note(self, request: RunRequest, marks: Iterable[Mark], *, reported: ReportedUsers | None) -> None:
        """Write recipients' notes (and, the first time, the users the message reports) in one commit.

        A SENDING note is written before a request goes out: a delivery resumed after a crash sees it
        and never sends to that recipient again.
        """
        ...

    def end(self, request: RunRequest, ending: Ending) -> None:
        """Let go of the message as `ending` says, with the notes and users not yet written."""
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
    return hashlib.sha256(b"notifierator-user:" + distinct_id.encode("utf-8", "replace")).digest()[
        :USER_KEY_BYTES
    ]
