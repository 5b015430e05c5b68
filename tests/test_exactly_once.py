"""Every user told exactly once, whatever happens (SPEC: Durable state), with the history in Firestore.

Each test drives the function's handler through the stand-ins with STATE_STORE=firestore against
the emulator; `world.restart()` is a fresh instance (the history is all that survives it).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notifier.errors import RedeliveryRequested, TransientError
from notifier.outcome import Outcome
from sandbox.firestore import FirestoreFaults
from sandbox.server import Fault
from tests.conftest import EMAILS, PHONES, PUBLISHED, World

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

    def deliver(world: World) -> None:
        with contextlib.suppress(RedeliveryRequested):
            world.deliver()

    threads = [threading.Thread(target=deliver, args=(w,)) for w in (durable, other)]
    threads[0].start()
    threads[0].join(0.5)
    threads[1].start()
    for thread in threads:
        thread.join()
    assert sorted(durable.inboxes()) == sorted(EMAILS)
    assert durable.texts() == list(PHONES)
    outcomes = sorted((s["outcome"], s["severity"]) for s in durable.log.summaries())
    assert outcomes == [("in_progress", "WARNING"), ("sent", "INFO")]


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


def test_state_costs_four_round_trips_plus_one_per_request_never_more_than_one_per_recipient(
    durable: World,
) -> None:
    durable.with_slack()
    assert durable.deliver().outcome is Outcome.SENT  # 08:00-09:00: no earlier digest to look back at
    durable.clock.advance(hours=1)
    durable.users("2026-11-28T09:30:00")
    summary = durable.deliver(message_id="msg-10", published=TEN)
    requests = 1 + len(PHONES) + 1  # one email for every address, one text per phone, one Slack post
    # begin (a read and a commit), the users others reported, a note before each request, the ending
    assert summary.state_round_trips == 4 + requests <= 4 + len(EMAILS) + len(PHONES) + 1
    # Their waiting is reported beside them (a few ms a round trip to the emulator at the least).
    state_ms = summary.log_fields()["state_ms"]
    assert state_ms == round(summary.state_seconds * 1000) >= summary.state_round_trips


@pytest.fixture
def commits(durable: World, firestore_emulator: Any) -> Iterator[FirestoreFaults]:
    """The history's commits pass through a proxy that plays scripted faults on them, in order."""
    with FirestoreFaults(firestore_emulator, only=":commit") as faults:
        durable.environ.update(faults.environ)
        yield faults


THROUGH = Fault(accept=True)  # a commit that goes through


def every_attempt(world: World, fault: Fault) -> list[Fault]:
    """`fault` for each attempt the retry policy makes of one call."""
    return [fault] * world.services.policy.attempts


def test_an_instance_killed_after_sending_never_sends_again_on_the_redelivery(
    durable: World, commits: FirestoreFaults
) -> None:
    durable.with_slack()
    # The claim and a note before each of the 4 requests go through; nothing after them arrives
    # (neither the ending nor, failing that, the outcomes), as when the instance dies right there.
    commits.script(*[THROUGH] * 5, *every_attempt(durable, Fault.dropped()) * 2)
    assert durable.redelivery()["history"] == {
        "end": "none",
        "why": "the history did not take the ending: the redelivery ends the message",
    }
    durable.restart()  # a fresh instance, once the dead one's lease has run out
    durable.clock.advance(minutes=10)
    assert durable.deliver().outcome is Outcome.ALREADY_SENT
    assert sorted(durable.inboxes()) == sorted(EMAILS)
    assert durable.texts() == list(PHONES)
    assert len(durable.slack.messages()) == 1
    assert any("stopped while sending" in line for line in durable.log.lines)


def test_a_profile_appearing_between_deliveries_of_one_message_waits_for_the_next_run(durable: World) -> None:
    durable.with_slack().twilio.script(*[Fault.status(503)] * (2 * durable.services.policy.attempts))
    with pytest.raises(TransientError):
        durable.deliver()  # email and Slack hear of Ada; the texts fail
    durable.users("2026-11-28T08:50:00")  # reaches Mixpanel now
    assert durable.deliver().outcome is Outcome.SENT
    assert {m["Body"].split(":")[1].strip()[:10] for m in durable.twilio.messages()} == {"1 new user"}
    durable.clock.advance(hours=1)
    summary = durable.deliver(message_id="msg-10", published=TEN)
    assert (summary.users, summary.late_users) == (1, 1)  # the newcomer, to everyone, once
    assert len(durable.emails()) == 2
    assert len(durable.slack.messages()) == 2
    assert len(durable.texts()) == 2 * len(PHONES)


def test_a_message_that_reported_nobody_reports_nobody_on_its_redelivery(durable: World) -> None:
    durable.environ["NOTIFY_WHEN_EMPTY"] = "true"
    durable.mixpanel.profiles.clear()
    durable.twilio.script(*[Fault.status(503)] * durable.services.policy.attempts)  # the first phone
    with pytest.raises(TransientError):
        durable.deliver()  # "no new users" to everyone but the first phone
    (late,) = durable.users("2026-11-28T08:30:00")  # reaches Mixpanel between the deliveries
    assert durable.deliver().users == 0  # the first phone hears what everyone heard
    durable.clock.advance(hours=1)
    summary = durable.deliver(message_id="msg-10", published=TEN)
    assert (summary.users, summary.late_users) == (1, 1)
    for phone in PHONES:
        texts = [m["Body"] for m in durable.twilio.messages() if m["To"] == phone]
        assert sum(f"User {late}" in text for text in texts) == 1, phone


def test_a_backfill_on_one_channel_changes_nothing_for_late_arrivals(durable: World) -> None:
    assert durable.deliver().outcome is Outcome.SENT
    late = durable.users("2026-11-28T08:45:00")
    backfill = b'{"start": "2026-11-28T08:00:00Z", "end": "2026-11-28T09:00:00Z", "channels": ["email"]}'
    durable.deliver(backfill, message_id="backfill")
    durable.clock.advance(hours=1)
    summary = durable.deliver(message_id="msg-10", published=TEN)
    assert (summary.users, summary.late_users) == (1, 1)
    assert all(f"User {late[0]}" in message["Body"] for message in durable.twilio.messages()[-2:])


def test_a_message_gone_stale_after_an_outage_gives_its_time_back(durable: World) -> None:
    durable.environ["MAX_MESSAGE_AGE_MINUTES"] = "90"
    durable.mixpanel.script(*[Fault.status(503)] * durable.services.policy.attempts)
    with pytest.raises(TransientError):
        durable.deliver()  # claims 08:00-09:00, tells nobody
    durable.clock.advance(minutes=91)
    assert durable.deliver().outcome is Outcome.EXPIRED  # Pub/Sub's last try, too late: nothing lost
    summary = durable.deliver(message_id="msg-11", published=ELEVEN - timedelta(hours=0.5))
    assert summary.outcome is Outcome.SENT
    assert summary.users == 1  # Ada, from the hour the stale message had claimed


def test_the_summary_tells_who_was_told_even_when_the_history_fails_at_the_end(
    durable: World, commits: FirestoreFaults
) -> None:
    commits.script(*[THROUGH] * 4, *every_attempt(durable, Fault.status(503)))
    line = durable.redelivery()
    assert line["outcome"] == "will_retry"
    assert line["users"] == 1
    assert line["channels"]["email"]["delivered"] == len(EMAILS)
    assert line["channels"]["sms"]["delivered"] == len(PHONES)
    durable.clock.advance(minutes=10)  # the history never heard the run end: its lease runs out first
    assert [c.outcome for c in durable.deliver().channels] == ["already_sent", "already_sent"]


def test_a_refusal_of_the_ending_after_the_sends_never_gives_their_time_back(
    durable: World, commits: FirestoreFaults
) -> None:
    commits.script(*[THROUGH] * 4, Fault.status(400))  # a bug: the history refuses the ending
    assert durable.redelivery()["outcome"] == "will_retry"
    assert sorted(durable.inboxes()) == sorted(EMAILS)
    durable.clock.advance(minutes=10)
    assert durable.deliver().outcome is Outcome.ALREADY_SENT  # the redelivery ends it
    (late,) = durable.users("2026-11-28T08:50:00")
    durable.clock.advance(hours=1)
    summary = durable.deliver(message_id="msg-10", published=TEN)
    # Ada's hour stays covered (nobody told twice) and closed: it is searched for late arrivals.
    assert (summary.users, summary.late_users) == (1, 1)
    assert sorted(durable.inboxes()) == sorted(EMAILS * 2)
    assert all(f"User {late}" in text["Body"] for text in durable.twilio.messages()[len(PHONES) :])


def test_a_history_refusing_before_any_send_gives_the_time_back(
    durable: World, firestore_emulator: Any
) -> None:
    with FirestoreFaults(firestore_emulator, only=":runQuery") as faults:
        durable.environ.update(faults.environ)
        assert durable.deliver().outcome is Outcome.SENT  # 08:00-09:00, Ada
        (cid,) = durable.users("2026-11-28T09:30:00")
        durable.clock.advance(hours=1)
        faults.script(Fault.status(400))  # the 10:00 run's search for late arrivals is refused
        summary = durable.deliver(message_id="msg-10", published=TEN)
        assert (summary.outcome, summary.error_type) == (Outcome.FAILED, "StateRejected")
        durable.clock.advance(hours=1)
        summary = durable.deliver(message_id="msg-11", published=ELEVEN)
    assert (summary.users, summary.late_users) == (1, 0)  # Cid, in the hour given back, not "late"
    assert summary.coverage[0].start == int(datetime(2026, 11, 28, 9, 0, tzinfo=UTC).timestamp())
    assert sum(f"User {cid}" in text["Body"] for text in durable.twilio.messages()) == len(PHONES)


def test_recipients_left_when_the_history_then_refuses_are_still_the_redeliverys(
    durable: World, commits: FirestoreFaults
) -> None:
    # The claim goes through, the email's note is refused, the texts' notes go through, and the
    # ending is refused as well.
    commits.script(THROUGH, Fault.status(400), THROUGH, THROUGH, Fault.status(400))
    durable.redelivery()
    assert (durable.inboxes(), durable.texts()) == ([], list(PHONES))
    durable.clock.advance(minutes=10)  # the ending never landed: the lease runs out first
    summary = durable.deliver()  # Pub/Sub's redelivery
    assert summary.outcome is Outcome.SENT
    assert sorted(durable.inboxes()) == sorted(EMAILS)
    assert durable.texts() == list(PHONES)


def test_a_stale_message_whose_time_cannot_be_given_back_now_is_ended_by_a_later_run(
    durable: World, firestore_emulator: Any
) -> None:
    durable.environ["MAX_MESSAGE_AGE_MINUTES"] = "90"
    durable.users("2026-11-28T08:30:00")
    durable.mixpanel.script(*every_attempt(durable, Fault.status(503)))
    durable.redelivery()  # claims 08:00-09:00, tells nobody
    durable.clock.advance(minutes=91)
    with FirestoreFaults(firestore_emulator, only=":commit") as commits:
        durable.environ.update(commits.environ)
        commits.script(*every_attempt(durable, Fault.status(503)))  # giving the time back fails
        assert durable.deliver().outcome is Outcome.EXPIRED  # acked all the same
    (line,) = [s for s in durable.log.summaries() if s["outcome"] == "expired"]
    assert line["severity"] == "WARNING"
    assert "the run history did not answer (SourceUnavailable)" in line["error"]
    assert "a later scheduled run ends it" in line["error"]
    for hour in (1, 2, 3):  # the schedule runs on: one run ends it, the next catches its hour up
        published = PUBLISHED + timedelta(hours=hour)
        durable.clock.now = max(durable.clock.now, published + timedelta(seconds=5))
        durable.deliver(message_id=f"tick-{hour}", published=published)
    assert sorted(durable.inboxes()) == sorted(EMAILS)
    assert not [s for s in durable.log.summaries() if s["severity"] == "ERROR"]


def test_when_everyone_refused_the_time_is_given_back_even_if_that_first_fails(
    durable: World, commits: FirestoreFaults
) -> None:
    durable.sendgrid.script(Fault.status(401))
    durable.twilio.script(*[Fault.status(400)] * len(PHONES))
    # The claim and the three notes go through; giving the time back meets 503s.
    commits.script(*[THROUGH] * 4, *every_attempt(durable, Fault.status(503)))
    durable.redelivery()  # every channel refused; giving the time back did not get through
    durable.clock.advance(minutes=10)
    summary = durable.deliver()  # the redelivery gives it back
    assert summary.outcome is Outcome.FAILED
    assert summary.history["end"] == "release"
    durable.clock.advance(hours=1)  # the keys are fixed
    summary = durable.deliver(message_id="msg-10", published=TEN)
    assert summary.users == 1  # Ada, once, to everyone
    assert sorted(durable.inboxes()) == sorted(EMAILS)
    assert durable.texts() == list(PHONES)


def test_refusals_spread_over_two_deliveries_give_the_time_back_too(durable: World) -> None:
    durable.sendgrid.script(Fault.status(401))
    durable.twilio.script(*[Fault.status(503)] * (len(PHONES) * durable.services.policy.attempts))
    with pytest.raises(TransientError):
        durable.deliver()  # email refused, texts left for the redelivery
    durable.twilio.script(*[Fault.status(400)] * len(PHONES))
    assert durable.deliver().outcome is Outcome.FAILED  # now the texts are refused too: nobody told
    durable.clock.advance(hours=1)  # the keys are fixed
    assert durable.deliver(message_id="msg-10", published=TEN).users == 1  # Ada, in the time given back
    assert sorted(durable.inboxes()) == sorted(EMAILS)
    assert durable.texts() == list(PHONES)


def test_a_late_profile_in_time_still_being_retried_is_reported_once_it_is_done(durable: World) -> None:
    durable.with_slack().twilio.script(*[Fault.status(503)] * (2 * durable.services.policy.attempts))
    with pytest.raises(TransientError):
        durable.deliver()  # 08:00-09:00: email and Slack hear of Ada, the texts fail
    late = durable.users("2026-11-28T08:40:00")
    durable.clock.advance(hours=1)
    # The 10:00 tick: 08:00-09:00 is still being retried, so it is not searched for late arrivals.
    assert durable.deliver(message_id="msg-10", published=TEN).outcome is Outcome.NOTHING_TO_SEND
    assert durable.deliver().outcome is Outcome.SENT  # the 09:00 message's redelivery: Ada by text
    durable.clock.advance(hours=1)
    summary = durable.deliver(message_id="msg-11", published=ELEVEN)
    assert (summary.users, summary.late_users) == (1, 1)  # the newcomer, now, to everyone
    assert all(f"User {late[0]}" in m["Body"] for m in durable.twilio.messages()[-2:])
    assert len(durable.emails()) == 2
    assert len(durable.slack.messages()) == 2


def test_time_given_back_is_caught_up_with_its_users(durable: World) -> None:
    assert durable.deliver().outcome is Outcome.SENT  # 08:00-09:00, finished: searched later
    durable.users("2026-11-28T09:30:00")
    durable.sendgrid.script(Fault.status(401))
    durable.twilio.script(Fault.status(400), Fault.status(400))
    durable.clock.advance(hours=1)
    assert durable.deliver(message_id="msg-10", published=TEN).outcome is Outcome.FAILED  # nobody told
    durable.clock.advance(hours=1)
    summary = durable.deliver(message_id="msg-11", published=ELEVEN)
    assert summary.users == 1  # the 09:30 sign-up, whose time was given back
    assert summary.coverage[0].start == int(datetime(2026, 11, 28, 9, 0, tzinfo=UTC).timestamp())


def test_a_sending_note_that_landed_though_its_answer_was_lost_is_cleared_and_sent_later(
    durable: World, commits: FirestoreFaults
) -> None:
    # The email's note lands but its answer is lost, and every retry meets a 503.
    attempts = durable.services.policy.attempts
    commits.script(THROUGH, Fault.dropped(after_acting=True), *[Fault.status(503)] * (attempts - 1))
    durable.redelivery()  # so the email is not sent; the texts' notes go through, clearing the email's
    assert durable.inboxes() == []
    assert durable.texts() == list(PHONES)
    durable.restart()
    assert durable.deliver().outcome is Outcome.SENT
    assert sorted(durable.inboxes()) == sorted(EMAILS)


def test_a_channel_left_untold_stays_left_even_when_the_ending_cannot_be_written(
    durable: World, commits: FirestoreFaults
) -> None:
    durable.with_slack().slack.script(*every_attempt(durable, Fault.status(503)))
    commits.script(*[THROUGH] * 5, *every_attempt(durable, Fault.status(503)))
    durable.redelivery()
    durable.restart()
    durable.clock.advance(minutes=10)
    assert durable.deliver().outcome is Outcome.SENT
    assert len(durable.slack.messages()) == 1
    assert len(durable.emails()) == 1


def test_a_message_that_found_nobody_stays_ended_when_a_late_arrival_was_reported_since(
    backend: World,
) -> None:
    backend.mixpanel.profiles.clear()
    assert backend.deliver().outcome is Outcome.NOTHING_TO_SEND  # tick A, 08:00-09:00: nobody
    (larry,) = backend.users("2026-11-28T08:45:00")  # reaches Mixpanel after A ran
    backend.clock.advance(hours=1)
    summary = backend.deliver(message_id="msg-10", published=TEN)  # tick B reports him, late
    assert (summary.users, summary.late_users) == (1, 1)
    assert backend.deliver().outcome is Outcome.ALREADY_SENT  # Pub/Sub delivers A again
    for phone in PHONES:
        assert sum(larry in m["Body"] for m in backend.twilio.messages() if m["To"] == phone) == 1


def test_with_windows_that_overlap_a_late_arrival_in_the_overlap_is_told(backend: World) -> None:
    # Hourly ticks with a 90-minute lookback: 07:30-09:00, then 08:30-10:00 (new: 09:00-10:00).
    ninety = b'{"lookback_minutes": 90}'
    backend.mixpanel.profiles.clear()
    assert backend.deliver(ninety).outcome is Outcome.NOTHING_TO_SEND
    (late,) = backend.users("2026-11-28T08:45:00")  # created 08:45, reaches Mixpanel at 09:10
    backend.clock.advance(hours=1)
    summary = backend.deliver(ninety, message_id="msg-10", published=TEN)
    assert (summary.users, summary.late_users) == (1, 1)
    assert all(late in m["Body"] for m in backend.twilio.messages())


def test_a_daily_schedule_across_the_spring_change_of_clocks_loses_no_late_arrival(backend: World) -> None:
    # A daily 09:00 Europe/Berlin schedule: on the night the clocks go forward the ticks are 23 hours
    # apart, so the second day's window (24 hours) overlaps the first by an hour.
    daily = b'{"lookback_minutes": 1440}'
    backend.mixpanel.profiles.clear()
    first = datetime(2026, 3, 28, 8, 0, 30, tzinfo=UTC)  # 09:00 CET
    backend.clock.now = first + timedelta(seconds=5)
    assert backend.deliver(daily, message_id="day-1", published=first).outcome is Outcome.NOTHING_TO_SEND
    (late,) = backend.users("2026-03-28T07:30:00")  # created 08:30 CET, reaches Mixpanel at 09:10
    second = datetime(2026, 3, 29, 7, 0, 30, tzinfo=UTC)  # 09:00 CEST, 23 hours later
    backend.clock.now = second + timedelta(seconds=5)
    summary = backend.deliver(daily, message_id="day-2", published=second)
    assert (summary.users, summary.late_users) == (1, 1)
    assert all(late in m["Body"] for m in backend.twilio.messages())


def test_a_late_sign_up_is_told_once_when_two_runs_are_in_flight_at_once(backend: World) -> None:
    # Quarter-hour ticks (shorter than LATE_ARRIVAL_MINUTES): after a backlog, the 10:00 and 10:15
    # ticks run at the same moment, and both would search 09:10 for late arrivals.
    quarter, start = b'{"lookback_minutes": 15}', datetime(2026, 11, 28, 8, 0, 30, tzinfo=UTC)
    backend.mixpanel.profiles.clear()
    for minutes in range(15, 106, 15):  # 08:15 ... 09:45, each in time
        backend.clock.now = start + timedelta(minutes=minutes)
        backend.deliver(quarter, message_id=f"t{minutes}", published=backend.clock.now)
    (zed,) = backend.users("2026-11-28T09:10:00")  # reaches Mixpanel at 09:50, 40 minutes late
    backend.clock.now = start + timedelta(minutes=135)  # 10:15

    def tick(minutes: int) -> None:
        with contextlib.suppress(RedeliveryRequested):
            backend.deliver(quarter, message_id=f"t{minutes}", published=start + timedelta(minutes=minutes))

    backend.mixpanel.script(Fault(hang_seconds=0.8, accept=True))  # the 10:00 run's query is slow
    first = threading.Thread(target=tick, args=(120,))
    first.start()
    threading.Event().wait(0.3)
    tick(135)
    first.join()
    assert sum(zed in m["Body"] for m in backend.twilio.messages() if m["To"] == PHONES[0]) == 1


def test_a_time_given_back_whose_answer_was_lost_leaves_no_record_behind(
    durable: World, commits: FirestoreFaults, firestore_emulator: Any
) -> None:
    durable.sendgrid.script(Fault.status(401))
    durable.twilio.script(*[Fault.status(400)] * len(PHONES))
    # The claim and three notes go through; giving the time back lands but its answer is lost, and
    # its retries meet 503s; the outcomes, written instead, find no record to write to.
    lost = Fault.truncated(keep=0)
    commits.script(*[THROUGH] * 4, lost, *[Fault.status(503)] * (durable.services.policy.attempts - 1))
    assert durable.redelivery()["history"]["end"] == "none"
    assert firestore_emulator.documents("runs") == []  # no record without window, claim or expiry
    durable.clock.advance(hours=1)  # the keys are fixed
    summary = durable.deliver(message_id="msg-10", published=TEN)
    assert summary.users == 1  # Ada, in the time given back, to everyone once
    assert sorted(durable.inboxes()) == sorted(EMAILS)
