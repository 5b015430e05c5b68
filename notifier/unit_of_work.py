"""A delivery's hold on its message in the run history, let go exactly once.

The run's steps execute inside ``with RunUnit() as unit:``. Whatever they reach and whatever
raises, on the way out the decision table (`notifier.decision`) picks how the message ends, and
the ending is written here and nowhere else; the run then acks or asks for a redelivery as the
table says. In the manner of cosmicpython's unit of work, but the end is decided, not just
committed or rolled back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from types import TracebackType

from notifier.channels import Delivery, DeliveryStatus
from notifier.decision import Decision, Happened, decide, fault_of
from notifier.errors import NotifierError
from notifier.journal import StoreJournal
from notifier.state import End, Ending, Held, Intent, Note, ReportedUsers, RunRequest, RunState, StateStore

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hold:
    """The message as this delivery holds it: the store, what was asked, what the history said."""

    store: StateStore
    request: RunRequest
    state: RunState
    journal: StoreJournal | None  # None: a dry run, or nothing held (nothing is written)


class RunUnit:
    """Runs the steps, then decides and writes the message's ending once; never swallows a
    KeyboardInterrupt or SystemExit, and records every other exception as the run's error."""

    def __init__(self) -> None:
        self.hold: Hold | None = None
        self.deliveries: tuple[Delivery, ...] = ()
        self.window_users: int | None = None  # the window's own users, once fetched
        self.held_back: int | None = None  # a quiet message's users, held for the next text
        self.held_told_on: str | None = None  # the channel that tells the tallies the message took
        self.error: Exception | None = None
        self.decision: Decision | None = None
        self.ending_lost = False  # the history did not take the ending the table chose

    def begin(
        self, store: StateStore, request: RunRequest, reported: ReportedUsers | None = None
    ) -> RunState:
        """Ask the history for the message; from here on, the unit lets go of whatever it holds."""
        state = store.begin(request)
        holds = state.holds_message and request.intent is not Intent.DRY_RUN
        self.hold = Hold(store, request, state, StoreJournal(store, request, reported) if holds else None)
        return state

    @property
    def journal(self) -> StoreJournal:
        """Where the channels note their sends; only a delivery that holds its message has one."""
        if self.hold is None or self.hold.journal is None:
            raise RuntimeError("this delivery holds no message, so it has nothing to note")
        return self.hold.journal

    def reports(self, reported: ReportedUsers) -> None:
        """The users this message reports, written with its first note (or its ending)."""
        if self.hold is not None and self.hold.journal is not None:
            self.hold.journal.reported = reported

    def __enter__(self) -> RunUnit:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> bool:
        if error is not None and not isinstance(error, Exception):
            return False
        self.error = error
        happened = self.happened()
        self.decision = decide(happened)
        end = self.decision.end
        if end is not None and not self._write_ending(end):
            # Failing that, once more, what is known of the recipients with the lease let go, so
            # that the redelivery resumes at once from the truth and ends the message itself.
            self._write_ending(End.KEEP_OPEN)
            self.ending_lost = True
            self.decision = decide(replace(happened, ending_lost=True))
        return True

    def happened(self) -> Happened:
        """What this delivery came to, for the decision table."""
        state = self.hold.state if self.hold else None
        earlier = [note for notes in state.notes.values() for note in notes.values()] if state else []
        statuses = [delivery.status for delivery in self.deliveries]
        return Happened(
            holds_message=self.hold is not None and self.hold.journal is not None,
            fault=fault_of(self.error),
            told_anyone=any(note.told for note in earlier) or any(status.told for status in statuses),
            refused=Note.REJECTED in earlier or DeliveryStatus.REJECTED in statuses,
            left_after_transient=DeliveryStatus.UNAVAILABLE in statuses,
        )

    def _held_untold(self) -> dict[str, Held]:
        """The tallies this message took and did not tell, to go back: none when its text was heard,
        and never one without users (nothing is owed for it; kept, such tallies would pile up)."""
        if self.hold is None or self._told_on(self.held_told_on):
            return {}
        return {key: tally for key, tally in self.hold.state.held.items() if tally.users}

    def _told_on(self, channel: str | None) -> bool:
        """True when someone on `channel` has, or may have, the message: in this delivery or before."""
        if channel is None or self.hold is None:
            return False
        earlier = self.hold.state.notes.get(channel, {}).values()
        return any(note.told for note in earlier) or any(
            d.status.told for d in self.deliveries if d.channel == channel
        )

    def _write_ending(self, how: End) -> bool:
        """The one write of a delivery's ending; False when the history did not take it."""
        journal, hold = self.journal, self.hold
        assert hold is not None  # the journal is the hold's
        ending = Ending(
            how=how,
            covered=hold.state.coverage,
            marks=tuple(journal.pending),
            reported=journal.reported,
            window_users=self.window_users,
            held_back=self.held_back,
            held_returned=self._held_untold(),
        )
        try:
            hold.store.end(hold.request, ending)
        except NotifierError as error:
            LOG.warning("the run history did not take the run's ending (%s)", type(error).__name__)
            return False
        journal.pending, journal.reported = [], None
        return True
