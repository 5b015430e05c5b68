"""The failure table (SPEC: Failures; docs/failures.md), row for row, through the function's handler
on every run-history backend: what was logged, whether Pub/Sub acks, who was told, and what the
history did with the message's time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from notifier.errors import RedeliveryRequested
from sandbox.server import Fault
from tests.conftest import EMAILS, PHONES, World

Setup = Callable[[World], Any]


def mixpanel_fails(fault: Fault, times: int = 1) -> Setup:
    return lambda world: world.mixpanel.script(*[fault] * (times or world.services.policy.attempts))


def sendgrid_fails(fault: Fault, times: int = 1) -> Setup:
    return lambda world: world.sendgrid.script(*[fault] * (times or world.services.policy.attempts))


def everyone_refuses(world: World) -> None:
    world.sendgrid.script(Fault.status(401))
    world.twilio.script(*[Fault.status(400)] * len(PHONES))


def environ(**changes: str) -> Setup:
    return lambda world: world.environ.update(changes)


def late_by_two_minutes(world: World) -> None:
    world.environ["MAX_MESSAGE_AGE_MINUTES"] = "1"
    world.clock.advance(minutes=2)


@dataclass(frozen=True)
class Row:
    """One line of the failure table and what the run must come to."""

    what: str
    setup: Setup
    outcome: str
    severity: str
    acked: bool
    emails: int  # inboxes told
    texts: int  # phones texted
    history: str | None  # how the message ended in the history ("release", ...); None: nothing held
    data: bytes = b'{"lookback_minutes": 60}'


TABLE = [
    Row("everyone told", lambda world: None, "sent", "INFO", True, 2, 2, "close"),
    Row("a bad message", lambda world: None, "bad_message", "ERROR", True, 0, 0, None, data=b"[1]"),
    Row("a bad configuration", environ(EMAIL_FROM="not an address"), "bad_config", "ERROR", True, 0, 0, None),
    *(
        Row(f"Mixpanel answers {status}", mixpanel_fails(Fault.status(status)), "source_rejected", "ERROR",
            True, 0, 0, "release")
        for status in (400, 401, 402, 403)
    ),
    Row("Mixpanel still failing (5xx)", mixpanel_fails(Fault.status(503), times=0), "will_retry", "WARNING",
        False, 0, 0, "keep_open"),
    Row("Mixpanel still rate limited (429)", mixpanel_fails(Fault.status(429, retry_after="0"), times=0),
        "will_retry", "WARNING", False, 0, 0, "keep_open"),
    Row("a channel still failing: the others send", sendgrid_fails(Fault.status(503), times=0), "will_retry",
        "WARNING", False, 0, 2, "keep_open"),
    Row("a channel refuses: the others send", sendgrid_fails(Fault.status(401)), "partial", "ERROR", True,
        0, 2, "close"),
    Row("a send's answer lost: unconfirmed, never retried", sendgrid_fails(Fault.dropped(after_acting=True)),
        "partial", "ERROR", True, 2, 2, "close"),
    Row("every recipient refuses: the time is given back", everyone_refuses, "failed", "ERROR", True, 0, 0,
        "release"),
    Row("a message past the retry horizon, nothing of it claimed", late_by_two_minutes, "expired", "WARNING",
        True, 0, 0, None),
]  # fmt: skip


@pytest.mark.parametrize("row", TABLE, ids=[row.what for row in TABLE])
def test_the_failure_table(backend: World, row: Row) -> None:
    world = backend
    row.setup(world)
    try:
        world.deliver(row.data)
        acked = True
    except RedeliveryRequested:
        acked = False
    summary = world.log.summaries()[-1]
    assert (summary["outcome"], summary["severity"], acked) == (row.outcome, row.severity, row.acked)
    assert (len(set(world.inboxes())), len(set(world.texts()))) == (row.emails, row.texts)
    assert summary.get("history", {}).get("end") == row.history
    assert summary["message"].startswith(f"run {row.outcome}")
    assert len(world.inboxes()) <= len(EMAILS)  # nobody told twice
    assert len(world.texts()) <= len(PHONES)
