"""How a run ends (notifier.decision), as a table that reads like the failure table in
docs/failures.md: what happened -> what the run history does with the message, and ack or redeliver.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.decision import TABLE, Disposition, Fault, Happened, decide, fault_of
from notifier.errors import (
    BadMessage,
    ConfigError,
    InProgress,
    RedeliveryRequested,
    SourceRejected,
    SourceUnavailable,
    StaleMessage,
    StateRejected,
)
from notifier.state import End

ACK, REDELIVER = Disposition.ACK, Disposition.REDELIVER
CLOSE, KEEP_OPEN, RELEASE = End.CLOSE, End.KEEP_OPEN, End.RELEASE


def happened(
    *,
    holds: bool = True,
    fault: Fault = Fault.NONE,
    told: bool = False,
    refused: bool = False,
    left: bool = False,
    ending_lost: bool = False,
) -> Happened:
    return Happened(holds, fault, told, refused, left, ending_lost)


ROWS = [
    # what happened                                                   the history, Pub/Sub
    ("a bad message or configuration: nothing held", happened(holds=False, fault=Fault.PERMANENT), None, ACK),
    ("Secret Manager still failing, before anything is held", happened(holds=False, fault=Fault.TRANSIENT),
     None, REDELIVER),
    ("another delivery holds the message", happened(holds=False, fault=Fault.IN_PROGRESS), None, REDELIVER),
    ("a bug before anything is held", happened(holds=False, fault=Fault.BUG), None, REDELIVER),
    ("already covered, already ended, or a dry run", happened(holds=False), None, ACK),
    ("a stale message nothing was recorded for", happened(holds=False, fault=Fault.STALE), None, ACK),
    ("Mixpanel refuses the query (400-403): nobody told", happened(fault=Fault.PERMANENT), RELEASE, ACK),
    ("Mixpanel still failing after the claim", happened(fault=Fault.TRANSIENT), KEEP_OPEN, REDELIVER),
    ("a channel still failing; the others told", happened(told=True, left=True), KEEP_OPEN, REDELIVER),
    ("a channel refuses; the others told", happened(told=True, refused=True), CLOSE, ACK),
    ("every recipient refuses", happened(refused=True), RELEASE, ACK),
    ("a send's outcome unknown (unconfirmed)", happened(told=True), CLOSE, ACK),
    ("everyone told", happened(told=True), CLOSE, ACK),
    ("nobody to tell: nothing to send", happened(), CLOSE, ACK),
    ("a bug after some were told", happened(fault=Fault.BUG, told=True), KEEP_OPEN, REDELIVER),
    ("recipients left, then a permanent failure", happened(fault=Fault.PERMANENT, told=True, left=True),
     KEEP_OPEN, REDELIVER),
    ("stale, and an earlier delivery told someone", happened(fault=Fault.STALE, told=True), CLOSE, ACK),
    ("stale, and nobody was told", happened(fault=Fault.STALE), RELEASE, ACK),
    ("the history does not take the ending", happened(told=True, ending_lost=True), None, REDELIVER),
    ("stale, and the history does not take the ending", happened(fault=Fault.STALE, ending_lost=True),
     None, ACK),
]  # fmt: skip


@pytest.mark.parametrize(("case", "what", "end", "disposition"), ROWS, ids=[row[0] for row in ROWS])
def test_how_a_run_ends(case: str, what: Happened, end: End | None, disposition: Disposition) -> None:
    decision = decide(what)
    assert (decision.end, decision.disposition) == (end, disposition), case


def test_every_row_of_the_table_is_reached_by_a_case() -> None:
    reached = {decide(what).meaning for _case, what, _end, _disposition in ROWS}
    assert reached == {row.meaning for row in TABLE}


@given(
    holds=st.booleans(),
    fault=st.sampled_from(Fault),
    told=st.booleans(),
    refused=st.booleans(),
    left=st.booleans(),
    ending_lost=st.booleans(),
)
def test_the_table_answers_everything_and_never_writes_what_it_does_not_hold(
    holds: bool, fault: Fault, told: bool, refused: bool, left: bool, ending_lost: bool
) -> None:
    what = happened(holds=holds, fault=fault, told=told, refused=refused, left=left, ending_lost=ending_lost)
    decision = decide(what)
    if not holds or ending_lost:
        assert decision.end is None
    if told:
        assert decision.end is not RELEASE, "time someone was told about is never given back"
    if left and holds and not ending_lost:
        assert decision.disposition is REDELIVER, "recipients left are the redelivery's"


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        (None, Fault.NONE),
        (BadMessage("no"), Fault.PERMANENT),
        (ConfigError("no", variable="EMAIL_TO"), Fault.PERMANENT),
        (SourceRejected("no", service="Mixpanel"), Fault.PERMANENT),
        (StateRejected("no", status=400), Fault.PERMANENT),
        (SourceUnavailable("no", service="Mixpanel"), Fault.TRANSIENT),
        (RedeliveryRequested("no"), Fault.TRANSIENT),
        (InProgress("no"), Fault.IN_PROGRESS),
        (StaleMessage("no"), Fault.STALE),
        (KeyError("x"), Fault.BUG),
    ],
)
def test_what_each_error_is(error: BaseException | None, fault: Fault) -> None:
    assert fault_of(error) is fault
