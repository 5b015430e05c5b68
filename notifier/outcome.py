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
    STALE_MESSAGE = "stale_message"

    @property
    def severity(self) -> int:
        """INFO for outcomes that need nobody; WARNING for a harmless race; ERROR for a person to look."""
        if self in _QUIET:
            return logging.INFO
        if self is Outcome.IN_PROGRESS:
            return logging.WARNING
        return logging.ERROR


_QUIET = frozenset(
    {Outcome.SENT, Outcome.NOTHING_TO_SEND, Outcome.DRY_RUN, Outcome.ALREADY_SENT, Outcome.ALREADY_COVERED}
)
