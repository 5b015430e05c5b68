"""A delivery's hold on its message is let go exactly once, whatever raises inside `with RunUnit()`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from notifier.channels import Delivery, DeliveryStatus
from notifier.decision import Disposition
from notifier.errors import InProgress, SourceUnavailable
from notifier.state import End, Intent, Start, StateStore, recipient_key
from notifier.state.firestore import open_firestore
from notifier.state.memory import MemoryStore
from notifier.unit_of_work import RunUnit
from sandbox.firestore import FirestoreFaults
from sandbox.server import Fault
from tests.conftest import CONTENDED, retrier
from tests.test_state_contract import tick


def test_a_bug_after_the_claim_keeps_the_message_open_for_the_redelivery(
    stores: Callable[[], StateStore],
) -> None:
    with RunUnit() as unit:
        unit.begin(stores(), tick(0, owner="a"))
        raise KeyError("a bug")
    assert isinstance(unit.error, KeyError)
    assert unit.decision is not None
    assert (unit.decision.end, unit.decision.disposition) == (End.KEEP_OPEN, Disposition.REDELIVER)
    assert stores().begin(tick(0, owner="b")).start is Start.RESUMED  # at once: the lease was let go


def test_the_outcomes_noted_go_with_the_ending(stores: Callable[[], StateStore]) -> None:
    with RunUnit() as unit:
        unit.begin(stores(), tick(0, owner="a"))
        assert unit.journal.note_sending("sms", ("+14155550100",))
        delivered = Delivery("sms", "+14155550100", DeliveryStatus.DELIVERED)
        unit.journal.note_outcome(delivered)
        unit.deliveries = (delivered,)
    assert unit.decision is not None
    assert unit.decision.end is End.CLOSE
    assert stores().begin(tick(0, owner="b")).start is Start.ENDED
    peek = stores().begin(tick(0, owner="b", intent=Intent.DRY_RUN))
    assert peek.notes == {"sms": {recipient_key("sms", "+14155550100"): "delivered"}}


def test_nothing_is_written_for_a_dry_run(stores: Callable[[], StateStore]) -> None:
    with RunUnit() as unit:
        unit.begin(stores(), tick(0, intent=Intent.DRY_RUN))
    assert unit.decision is not None
    assert unit.decision.end is None
    assert stores().begin(tick(0)).start is Start.FRESH


def test_an_interrupt_is_not_swallowed_and_writes_nothing() -> None:
    store = MemoryStore()
    unit = RunUnit()

    def interrupted() -> None:
        with unit:
            unit.begin(store, tick(0, owner="a"))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert unit.decision is None
    with pytest.raises(InProgress):
        store.begin(tick(0, owner="b"))  # still held: an interrupted process lets go by its lease


def test_an_ending_the_history_does_not_take_is_redelivered_and_the_lease_still_let_go(
    firestore: Any,
) -> None:
    with FirestoreFaults(firestore, only=":commit") as commits:
        store = open_firestore(database="(default)", retrier=retrier(CONTENDED), environ=commits.environ)
        commits.script(Fault(accept=True), *[Fault.status(503)] * CONTENDED.attempts)  # the closing fails
        with RunUnit() as unit:
            unit.begin(store, tick(0, owner="a"))
    assert unit.decision is not None
    assert (unit.decision.end, unit.decision.disposition) == (None, Disposition.REDELIVER)
    again = open_firestore(database="(default)", retrier=retrier(CONTENDED)).begin(tick(0, owner="b"))
    assert again.start is Start.RESUMED  # kept open instead, so the redelivery did not wait for the lease


def test_a_history_that_does_not_answer_the_claim_holds_nothing(firestore: Any) -> None:
    with FirestoreFaults(firestore, only=":batchGet") as reads:
        store = open_firestore(database="(default)", retrier=retrier(CONTENDED), environ=reads.environ)
        reads.script(*[Fault.status(503)] * CONTENDED.attempts)
        with RunUnit() as unit:
            unit.begin(store, tick(0))
    assert unit.hold is None
    assert isinstance(unit.error, SourceUnavailable)
    assert unit.decision is not None
    assert (unit.decision.end, unit.decision.disposition) == (None, Disposition.REDELIVER)
