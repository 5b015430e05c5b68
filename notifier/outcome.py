"""The outcome of a run, as its summary line names it, and how loudly it is logged."""

from __future__ import annotations

import logging
from enum import StrEnum


class Outcome(StrEnum):
    """What a run came to; `severity` is the log level of its summary line."""

    SENT = "sent"  # everyone configured was told
    NOTHING_TO_SEND = "nothing_to_send"  # no users in the window, NOTIFY_WHEN_EMPTY off
    DRY_RUN = "dry_run"
    ALREADY_SENT = "already_sent"  # a redelivery of a message whose recipients were all told
    ALREADY_COVERED = "already_covered"  # every instant of the window went to an earlier digest
    IN_PROGRESS = "in_progress"  # another delivery of this message is running: redelivered later
    PARTIAL = "partial"  # some recipients told or maybe told (unconfirmed); the rest refused (acked)
    FAILED = "failed"  # nobody could be told, or something unexpected broke
    WILL_RETRY = "will_retry"  # a transient failure left recipients untold: redelivered
    BAD_MESSAGE = "bad_message"
    BAD_CONFIG = "bad_config"
    SOURCE_REJECTED = "source_rejected"
    STALE_MESSAGE = "stale_message"  # too old to run, and it gave something up: a person may re-run it
    EXPIRED = "expired"  # too old to run, giving nothing up: its time goes to the next run, or it had ended

    @property
    def severity(self) -> int:
        """The log level of the summary line: ERROR exactly when a person should look."""
        return SEVERITY[self]

    @property
    def needs_a_person(self) -> bool:
        """True for the outcomes "a run failed" opens for (docs/operations.md)."""
        return self.severity >= logging.ERROR

    @property
    def good(self) -> bool:
        """True for the outcomes "no successful run" counts: the digests work."""
        return self in _GOOD


# A transient failure is a warning: a redelivery usually completes it, and if none does, the
# "no successful run" alert tells. A stale message is an error: its time or its recipients were
# given up, and a person may want to re-run its window.
SEVERITY: dict[Outcome, int] = {
    Outcome.SENT: logging.INFO,
    Outcome.NOTHING_TO_SEND: logging.INFO,
    Outcome.DRY_RUN: logging.INFO,
    Outcome.ALREADY_SENT: logging.INFO,
    Outcome.ALREADY_COVERED: logging.INFO,
    Outcome.IN_PROGRESS: logging.WARNING,
    Outcome.EXPIRED: logging.WARNING,
    Outcome.WILL_RETRY: logging.WARNING,
    Outcome.PARTIAL: logging.ERROR,
    Outcome.FAILED: logging.ERROR,
    Outcome.BAD_MESSAGE: logging.ERROR,
    Outcome.BAD_CONFIG: logging.ERROR,
    Outcome.SOURCE_REJECTED: logging.ERROR,
    Outcome.STALE_MESSAGE: logging.ERROR,
}
_GOOD = frozenset({Outcome.SENT, Outcome.NOTHING_TO_SEND, Outcome.ALREADY_SENT, Outcome.ALREADY_COVERED})
