"""Every user told exactly once, whatever happens (SPEC: Durable state), with the history in Firestore.

Each test drives the function's handler through the stand-ins with STATE_STORE=firestore against
the emulator; `world.restart()` is a fresh instance (the history is all that survives it).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from notifier.errors import TransientError
from notifier.outcome import Outcome
from notifier.run import RunSummary
from sandbox.server import Fault
from tests.conftest import EMAILS, PHONES, World

TEN = datetime(2026, 11, 28, 10, 0, 2, tzinfo=UTC)
ELEVEN = datetime(2026, 11, 28, 11, 0, 1, tzinfo=UTC)


@pytest.fixture
def durable(world: World, firestore: Any) -> World:
    world.environ.update({"STATE_STORE": "firestore", **firestore.environ})
    return world


def test_a_redelivery_to_a_restarted_function_sends_nothing_twice(durable: World) -> None:
    assert durable.deliver().outcome is Outcome.SENT
    durable.restart()  # the ack was lost; Pub/Sub redelivers to a fresh instance
    assert durable.deliver().outcome is Outcome.ALREADY_SENT
    assert sorted(durable.inboxes()) == sorted(EMAILS)
    assert durable.texts() == list(PHONES)


def test_with_sendgrid_down_both_texts_go_first_and_the_email_after_it_recovers(durable: World) -> None:
    durable.sendgrid.script(*[Fault.status(503)] * durable.services.policy.attempts)
    with pytest.raises(TransientError):
        durable.deliver()
    assert durable.texts() == list(PHONES)
    assert durable.inboxes() == []
    durable.restart()
    assert durable.deliver().outcome is Outcome.SENT
    assert sorted(durable.inboxes()) == sorted(EMAILS)
    assert durable.texts() == list(PHONES)  # nobody texted twice


def test_a_lost_tick_is_covered_by_the_next_and_arriving_late_sends_nothing_new(durable: World) -> None:
    assert durable.deliver().outcome is Outcome.SENT  # 08:00-09:00
    durable.users("2026-11-28T09:20:00", "2026-11-28T10:40:00")
    durable.clock.advance(hours=2)
    # The 10:00 tick is lost; the 11:00 one covers 09:00-11:00 and says so.
    summary = durable.deliver(message_id="msg-11", published=ELEVEN)
    assert summary.outcome is Outcome.SENT
    assert summary.users == 2
    assert summary.rendered is not None
    assert summary.rendered.email is not None
    assert "missed" in summary.rendered.email.text
    # The lost 10:00 message finally arrives: its hour went to the 11:00 digest already.
    assert durable.deliver(message_id="msg-10", published=TEN).outcome is Outcome.ALREADY_COVERED
    assert len(durable.emails()) == 2


def test_a_profile_that_arrives_after_its_window_ran_is_reported_once_by_a_later_run(durable: World) -> None:
    assert durable.deliver().outcome is Outcome.SENT  # 08:00-09:00: Ada only
    late = durable.users("2026-11-28T08:45:00")  # created in that hour, reached Mixpanel after it ran
    durable.clock.advance(hours=1)
    summary = durable.deliver(message_id="msg-10", published=TEN)
    assert (summary.outcome, summary.users, summary.late_users) == (Outcome.SENT, 1, 1)
    assert summary.rendered is not None
    assert summary.rendered.email is not None
    assert f"User {late[0]}" in summary.rendered.email.html
    durable.restart()
    durable.clock.advance(hours=1)
    again = durable.deliver(message_id="msg-11", published=ELEVEN)
    assert again.users == 0  # looked at 09:00-10:00 again; nobody new, and the late one not twice
    assert again.outcome is Outcome.NOTHING_TO_SEND


def test_two_instances_racing_for_one_message_send_once(durable: World) -> None:
    # The first instance's email is slow; a second delivery of the same message lands meanwhile.
    durable.sendgrid.script(Fault.hang(1.0))
    other = World(**{**durable.__dict__})
    other.restart()
    results: list[RunSummary | BaseException] = []

    def deliver(world: World) -> None:
        try:
            results.append(world.deliver())
        except TransientError as error:
            results.append(error)

    threads = [threading.Thread(target=deliver, args=(w,)) for w in (durable, other)]
    threads[0].start()
    threads[0].join(0.5)
    threads[1].start()
    for thread in threads:
        thread.join()
    assert sorted(durable.inboxes()) == sorted(EMAILS)
    assert durable.texts() == list(PHONES)
    outcomes = sorted(r.outcome.value if isinstance(r, RunSummary) else type(r).__name__ for r in results)
    assert outcomes == ["InProgress", "sent"]


def test_records_of_a_delivery_hold_across_restarts_for_every_channel(durable: World) -> None:
    durable.with_slack()
    durable.twilio.script(*[Fault.status(503)] * durable.services.policy.attempts)
    with pytest.raises(TransientError):
        durable.deliver()
    durable.restart()
    assert durable.deliver().outcome is Outcome.SENT
    assert len(durable.slack.messages()) == 1
    assert len(durable.emails()) == 1
    assert sorted(durable.texts()) == sorted(PHONES)


def test_state_costs_four_round_trips_plus_one_per_recipient(durable: World) -> None:
    durable.with_slack()
    assert durable.deliver().outcome is Outcome.SENT  # 08:00-09:00: no earlier digest to look back at
    durable.clock.advance(hours=1)
    durable.users("2026-11-28T09:30:00")
    summary = durable.deliver(message_id="msg-10", published=TEN)
    recipients = len(EMAILS) + len(PHONES) + 1
    assert summary.state_round_trips == 4 + recipients  # begin (read, commit), reported, finish
