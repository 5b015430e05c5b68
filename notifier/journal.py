"""The journal a delivery's channels note their sends in, kept in the run history.

Before each request goes out, a SENDING note for its recipients is committed (with the outcomes
noted since the last commit and, the first time, the users this message reports), so a crash at
any moment leaves either no note (never sent: the redelivery sends) or one (maybe sent: the
redelivery does not). Outcomes wait for the next commit, or for the ending (`pending`).
"""

from __future__ import annotations

import logging

from notifier.channels import Delivery, DeliveryStatus
from notifier.errors import NotifierError
from notifier.state import Mark, Note, ReportedUsers, RunRequest, StateStore, recipient_key

LOG = logging.getLogger(__name__)
# What the history keeps of each outcome; None clears the SENDING note (the request never went out).
NOTES: dict[DeliveryStatus, Note | None] = {
    DeliveryStatus.DELIVERED: Note.DELIVERED,
    DeliveryStatus.UNCONFIRMED: Note.UNCONFIRMED,
    DeliveryStatus.REJECTED: Note.REJECTED,
    DeliveryStatus.UNAVAILABLE: None,
}


class StoreJournal:
    """Notes into the run history; the ending takes what is still `pending` (see RunUnit)."""

    def __init__(self, store: StateStore, request: RunRequest, reported: ReportedUsers | None) -> None:
        self._store = store
        self._request = request
        self.reported = reported  # written with the first commit, then None
        self.pending: list[Mark] = []

    def note_sending(self, channel: str, recipients: tuple[str, ...]) -> bool:
        """Commit a SENDING note for `recipients` (and what is pending); False: do not send."""
        marks = [*self.pending, *(Mark(channel, recipient_key(channel, r), Note.SENDING) for r in recipients)]
        try:
            self._store.note(self._request, marks, reported=self.reported)
        except NotifierError as error:
            LOG.error(
                "the run history could not note a send to %d %s recipient(s) (%s): not sent, left for later",
                len(recipients),
                channel,
                type(error).__name__,
            )
            # The commit may have landed though its answer was lost: the notes are cleared with the
            # next commit that gets through, so a redelivery still sends to them.
            self.pending += [Mark(channel, recipient_key(channel, r), None) for r in recipients]
            return False
        self.pending, self.reported = [], None
        return True

    def note_outcome(self, delivery: Delivery) -> None:
        """Note an outcome, for the next commit; one whose request never went out is cleared at once,
        so no later failure can strand its SENDING note."""
        note = NOTES[delivery.status]
        self.pending.append(Mark(delivery.channel, recipient_key(delivery.channel, delivery.recipient), note))
        if note is None:
            self._flush()

    def _flush(self) -> None:
        try:
            self._store.note(self._request, self.pending, reported=None)
        except NotifierError as error:
            LOG.warning(
                "the run history could not take %d note(s) yet (%s)", len(self.pending), type(error).__name__
            )
            return
        self.pending = []


class NoHistory:
    """A journal that notes nothing: for test messages (`check --send-test`), which the history ignores."""

    def note_sending(self, channel: str, recipients: tuple[str, ...]) -> bool:
        """Always go ahead."""
        del channel, recipients
        return True

    def note_outcome(self, delivery: Delivery) -> None:
        """Nothing to note."""
        del delivery
