"""How a run ends, decided from what happened: one table, read top to bottom, the first row that
matches wins. It reads like the failure table in docs/failures.md; a new case is a new row.

Two answers: what the run history does with the message this delivery holds (close it, keep it
open for a redelivery, or give its time back), and what Pub/Sub does with the message (ack, or
redeliver). Redelivering is always safe: every request is noted in the history before it goes out,
so a redelivery never sends to anyone who may have the digest.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum

from notifier.errors import InProgress, PermanentError, StaleMessage, TransientError
from notifier.state import End


class Fault(StrEnum):
    """What went wrong, by what can be done about it."""

    NONE = "none"
    PERMANENT = "permanent"  # retrying cannot help: a bad message or configuration, a refusal
    TRANSIENT = "transient"  # may work later: a service unreachable, a 429 or 5xx, a lost race
    IN_PROGRESS = "in_progress"  # another delivery of the message holds it now
    STALE = "stale"  # the message is older than the redelivery horizon
    BUG = "bug"  # anything unexpected


class Disposition(StrEnum):
    """What Pub/Sub does with the message."""

    ACK = "ack"  # the function returns normally
    REDELIVER = "redeliver"  # the function raises


# Which fault an exception is, most specific first; anything else is a bug.
FAULTS: tuple[tuple[type[BaseException], Fault], ...] = (
    (InProgress, Fault.IN_PROGRESS),
    (StaleMessage, Fault.STALE),
    (TransientError, Fault.TRANSIENT),
    (PermanentError, Fault.PERMANENT),
)


def fault_of(error: BaseException | None) -> Fault:
    """The fault an exception that ended a run is."""
    if error is None:
        return Fault.NONE
    return next((fault for kind, fault in FAULTS if isinstance(error, kind)), Fault.BUG)


@dataclass(frozen=True)
class Happened:
    """What a delivery came to, as far as its ending is concerned."""

    holds_message: bool  # the delivery holds the message in the run history, so it must let it go
    fault: Fault
    told_anyone: bool  # someone has, or may have, the digest: from this delivery or an earlier one
    refused: bool  # a provider refused a recipient of the message, in this delivery or an earlier one
    left_after_transient: bool  # recipients this delivery could not tell for now (a transient failure)
    ending_lost: bool = False  # the history did not take the ending the table chose first


@dataclass(frozen=True)
class Row:
    """One line of the table: a pattern over `Happened` (None matches anything) and its answers."""

    meaning: str
    end: End | None  # None: the delivery holds nothing, so the history is not written
    disposition: Disposition
    holds_message: bool | None = None
    fault: frozenset[Fault] | None = None
    told_anyone: bool | None = None
    refused: bool | None = None
    left_after_transient: bool | None = None
    ending_lost: bool | None = None

    def matches(self, happened: Happened) -> bool:
        """True when every field the row names has happened's value (or holds it, for a set)."""
        for name in (f.name for f in fields(Happened)):
            wanted, value = getattr(self, name), getattr(happened, name)
            if wanted is None:
                continue
            if isinstance(wanted, frozenset) and value not in wanted:
                return False
            if not isinstance(wanted, frozenset) and wanted != value:
                return False
        return True


_MAY_PASS = frozenset({Fault.TRANSIENT, Fault.IN_PROGRESS, Fault.BUG})
ACK, REDELIVER = Disposition.ACK, Disposition.REDELIVER

TABLE: tuple[Row, ...] = (
    Row(
        "stale, and the history did not take its ending: acked all the same (no retry storm); the "
        "first scheduled run after its last lease ends it",
        None,
        ACK,
        fault=frozenset({Fault.STALE}),
        ending_lost=True,
    ),
    Row(
        "the history did not take the ending: the redelivery ends the message",
        None,
        REDELIVER,
        ending_lost=True,
    ),
    Row("nothing held yet, and it may work later", None, REDELIVER, holds_message=False, fault=_MAY_PASS),
    Row("nothing held: done, or past help", None, ACK, holds_message=False),
    Row(
        "recipients left after a transient failure: the redelivery tells only them",
        End.KEEP_OPEN,
        REDELIVER,
        left_after_transient=True,
    ),
    Row("a failure that may pass: the redelivery resumes", End.KEEP_OPEN, REDELIVER, fault=_MAY_PASS),
    Row(
        "too old to run and nobody told: the time is given back for the next run",
        End.RELEASE,
        ACK,
        fault=frozenset({Fault.STALE}),
        told_anyone=False,
    ),
    Row(
        "nobody told, for a reason a person must fix: the time is given back",
        End.RELEASE,
        ACK,
        fault=frozenset({Fault.PERMANENT}),
        told_anyone=False,
    ),
    Row(
        "nobody told: every recipient refused; the time is given back",
        End.RELEASE,
        ACK,
        told_anyone=False,
        refused=True,
    ),
    Row("done: its time is final, and later runs search it for late arrivals", End.CLOSE, ACK),
)


@dataclass(frozen=True)
class Decision:
    """The table's answer for one delivery."""

    end: End | None
    disposition: Disposition
    meaning: str


def decide(happened: Happened) -> Decision:
    """The first row of TABLE that matches `happened` (the last row matches everything)."""
    row = next(row for row in TABLE if row.matches(happened))
    return Decision(row.end, row.disposition, row.meaning)
