"""The journal a run's channels note their sends in, written to the run history.

Before each request goes out, a SENDING mark for its recipients is committed (with the outcomes
noted since the last commit, and, the first time, the users this message reports); the last
outcomes are committed with the run's ending. So a crash at any moment leaves either no mark (never
sent: the redelivery sends) or a mark (maybe sent: the redelivery does not), and a run costs one
commit per request plus one, never two per recipient.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from notifier.channels import Delivery, DeliveryStatus
from notifier.errors import NotifierError
from notifier.state import Ending, Mark, ReportedUsers, RunRequest, Span, StateStore, recipient_key

LOG = logging.getLogger(__name__)


@dataclass
class StoreJournal:
    """Notes into the run history; `close` commits what is left with the run's ending."""

    store: StateStore
    request: RunRequest
    reported: ReportedUsers | None  # written with the first commit, then never again
    pending: list[Mark] = field(default_factory=list)

    def sending(self, channel: str, recipients: tuple[str, ...]) -> bool:
        """Commit a SENDING mark for `recipients` (and what is pending); False: do not send."""
        marks = [
            *self.pending,
            *(Mark(channel, recipient_key(channel, r), DeliveryStatus.SENDING) for r in recipients),
        ]
        try:
            self.store.write(self.request, marks, reported=self.reported)
        except NotifierError as error:
            LOG.error(
                "the run history could not note a send to %d %s recipient(s) (%s): not sent, left for later",
                len(recipients),
                channel,
                type(error).__name__,
            )
            # The commit may have landed though its answer was lost: what is known not sent is cleared
            # with the next commit that gets through, so a redelivery still sends it.
            self.pending += [Mark(channel, recipient_key(channel, r), None) for r in recipients]
            return False
        self.pending, self.reported = [], None
        return True

    def settled(self, delivery: Delivery) -> None:
        """Note an outcome: written with the next commit (its SENDING mark already guards it), except
        that a recipient not sent after all is cleared at once, so no later failure can strand it."""
        status = delivery.status if delivery.status.settled else None  # None: not sent after all
        key = recipient_key(delivery.channel, delivery.recipient)
        self.pending.append(Mark(delivery.channel, key, status))
        if status is None:
            self.flush()

    def flush(self) -> None:
        """Commit what is pending now; kept pending when the history does not answer."""
        if not self.pending:
            return
        try:
            self.store.write(self.request, self.pending)
        except NotifierError as error:
            LOG.warning(
                "the run history could not take %d note(s) yet (%s)", len(self.pending), type(error).__name__
            )
            return
        self.pending = []

    def close(self, ending: Ending) -> None:
        """Commit the outcomes left and the run's ending; raises what the store raises."""
        if ending.release:
            self.store.finish(self.request, ending)
            return
        self.store.write(self.request, self.pending, reported=self.reported, ending=ending)
        self.pending, self.reported = [], None

    def abandon(self, covered: tuple[Span, ...] = ()) -> None:
        """After a failure: let go of the message with what is pending, closing `covered` when no
        redelivery will (best effort; logged if not)."""
        try:
            self.store.write(self.request, self.pending, ending=Ending(covered=covered))
            self.pending = []
        except NotifierError as error:
            LOG.warning("could not update the run history after a failure (%s)", type(error).__name__)


class Unrecorded:
    """A journal that notes nothing: for test messages (`check --send-test`), which the history ignores."""

    def sending(self, channel: str, recipients: tuple[str, ...]) -> bool:
        """Always go ahead."""
        del channel, recipients
        return True

    def settled(self, delivery: Delivery) -> None:
        """Nothing to note."""
        del delivery
