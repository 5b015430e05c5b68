"""Every user told exactly once, whatever happens (SPEC: Durable state), with the history in Firestore.

Each test drives the function's handler through the stand-ins with STATE_STORE=firestore against
the emulator; `world.restart()` is a fresh instance (the history is all that survives it).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notifier.errors import NotifierError, SourceRejected, SourceUnavailable, StateRejected, TransientError
from notifier.outcome import Outcome
from notifier.summary import RunSummary
from sandbox.firestore import FirestoreFaults
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


class FailsAtTheEnd:
    """A run history that raises `error` once, as the run writes its ending after every send;
    SystemExit is what kill -9 does between the providers' answers and the last commit."""

    def __init__(self, store: Any, error: BaseException | None = None) -> None:
        self.store = store
        self.error: BaseException | None = error or SystemExit("killed")
        self.round_trips = 0
        self.waited = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def write(self, request: Any, marks: Any, *, reported: Any = None, ending: Any = None) -> None:
        if ending is not None and self.error is not None:
            error, self.error = self.error, None
            raise error
        self.store.write(request, marks, reported=reported, ending=ending)


def test_an_instance_killed_after_sending_never_sends_again_on_the_redelivery(
    durable: World, monkeypatch: pytest.MonkeyPatch, log_lines: Any
) -> None:
    durable.with_slack()
    real = durable.services.store
    monkeypatch.setattr(durable.services, "store", lambda *args: FailsAtTheEnd(real(*args)))
    with pytest.raises(SystemExit):
        durable.deliver()
    durable.restart()  # a fresh instance, once the dead one's lease has run out
    durable.clock.advance(minutes=10)
    assert durable.deliver().outcome is Outcome.ALREADY_SENT
    assert sorted(durable.inboxes()) == sorted(EMAILS)
    assert durable.texts() == list(PHONES)
    assert len(durable.slack.messages()) == 1
    assert any("stopped while sending" in line for line in log_lines.lines)


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
    assert durable.deliver().outcome is Outcome.STALE_MESSAGE  # Pub/Sub's last try, too late
    summary = durable.deliver(message_id="msg-11", published=ELEVEN - timedelta(hours=0.5))
    assert summary.outcome is Outcome.SENT
    assert summary.users == 1  # Ada, from the hour the stale message had claimed


def test_the_summary_tells_who_was_told_even_when_the_history_fails_at_the_end(
    durable: World, monkeypatch: pytest.MonkeyPatch, log_lines: Any
) -> None:
    real = durable.services.store
    unavailable = SourceUnavailable("Firestore answered 503", service="Firestore")
    monkeypatch.setattr(durable.services, "store", lambda *args: FailsAtTheEnd(real(*args), unavailable))
    with pytest.raises(TransientError):
        durable.deliver()
    (line,) = [json.loads(line) for line in log_lines.lines if '"event": "run_summary"' in line]
    assert line["outcome"] == "will_retry"
    assert line["users"] == 1
    assert line["channels"]["email"]["delivered"] == len(EMAILS)
    assert line["channels"]["sms"]["delivered"] == len(PHONES)
    monkeypatch.undo()
    durable.clock.advance(minutes=10)  # the history never heard the run end: its lease runs out first
    assert [c.outcome for c in durable.deliver().channels] == ["already_sent", "already_sent"]


@pytest.mark.parametrize(
    "refusal",
    [
        StateRejected("Firestore refused the request with 400: invalid argument", status=400),
        SourceRejected("refused with 403", service="Mixpanel", status=403),
    ],
    ids=["history", "source"],
)
def test_a_refusal_after_the_sends_never_gives_their_time_back(
    durable: World, monkeypatch: pytest.MonkeyPatch, refusal: NotifierError
) -> None:
    real = durable.services.store
    monkeypatch.setattr(durable.services, "store", lambda *args: FailsAtTheEnd(real(*args), refusal))
    assert durable.deliver().outcome is refusal.outcome  # acked (ERROR): a person must look
    assert sorted(durable.inboxes()) == sorted(EMAILS)
    monkeypatch.undo()
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
    durable: World, firestore_emulator: Any
) -> None:
    with FirestoreFaults(firestore_emulator, only=":commit") as faults:
        durable.environ.update(faults.environ)
        through = Fault(accept=True)
        # The claim goes through, the email's note is refused, the texts' notes go through, and the
        # ending is refused as well.
        faults.script(through, Fault.status(400), through, through, Fault.status(400))
        with pytest.raises(TransientError):
            durable.deliver()
        assert (durable.inboxes(), durable.texts()) == ([], list(PHONES))
        summary = durable.deliver()  # Pub/Sub's redelivery
    assert summary.outcome is Outcome.SENT
    assert sorted(durable.inboxes()) == sorted(EMAILS)
    assert durable.texts() == list(PHONES)


class ReleaseFails(FailsAtTheEnd):
    """A run history on which giving back a message's time fails with `errors`, one a try, across
    instances; its writes go through."""

    def __init__(self, store: Any, errors: list[BaseException]) -> None:
        super().__init__(store)
        self.errors = errors

    def write(self, request: Any, marks: Any, *, reported: Any = None, ending: Any = None) -> None:
        self.store.write(request, marks, reported=reported, ending=ending)

    def finish(self, request: Any, ending: Any) -> None:
        if ending.release and self.errors:
            raise self.errors.pop(0)
        self.store.finish(request, ending)


def test_a_stale_message_whose_time_cannot_be_given_back_says_so(
    durable: World, monkeypatch: pytest.MonkeyPatch, log_lines: Any
) -> None:
    durable.environ["MAX_MESSAGE_AGE_MINUTES"] = "90"
    durable.mixpanel.script(*[Fault.status(503)] * durable.services.policy.attempts)
    with pytest.raises(TransientError):
        durable.deliver()  # claims 08:00-09:00, tells nobody
    real = durable.services.store
    errors: list[BaseException] = [SourceUnavailable("Firestore answered 503", service="Firestore")]
    monkeypatch.setattr(durable.services, "store", lambda *args: ReleaseFails(real(*args), errors))
    durable.clock.advance(minutes=91)
    assert durable.deliver().outcome is Outcome.STALE_MESSAGE  # acked all the same
    (line,) = [json.loads(line) for line in log_lines.lines if '"stale_message"' in line]
    assert line["severity"] == "ERROR"
    assert "could not be read or updated (SourceUnavailable)" in line["error"]
    assert "re-run with start/end" in line["error"]


def test_when_everyone_refused_the_time_is_given_back_even_if_that_first_fails(
    durable: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = durable.services.store
    errors: list[BaseException] = [SourceUnavailable("Firestore answered 503", service="Firestore")]
    monkeypatch.setattr(durable.services, "store", lambda *args: ReleaseFails(real(*args), errors))
    durable.sendgrid.script(Fault.status(401))
    durable.twilio.script(*[Fault.status(400)] * len(PHONES))
    with pytest.raises(TransientError):
        durable.deliver()  # every channel refused; giving the time back met a 503
    summary = durable.deliver()  # the redelivery gives it back
    assert summary.outcome is Outcome.FAILED
    assert "given back" in (summary.error or "")
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


class LosesAnswers(FailsAtTheEnd):
    """A history that loses commits' answers: the first one's (it landed), or every ending's."""

    def __init__(self, store: Any, *, endings_only: bool = False) -> None:
        super().__init__(store)
        self.writes, self.endings_only = 0, endings_only

    def write(self, request: Any, marks: Any, *, reported: Any = None, ending: Any = None) -> None:
        self.writes += 1
        if self.endings_only and ending is not None:
            raise SourceUnavailable("Firestore answered 503", service="Firestore")
        self.store.write(request, marks, reported=reported, ending=ending)
        if self.writes == 1 and not self.endings_only:
            raise SourceUnavailable("Firestore's answer was lost", service="Firestore")

    def finish(self, request: Any, ending: Any) -> None:
        raise SourceUnavailable("Firestore answered 503", service="Firestore")


def test_a_sending_note_that_landed_though_its_answer_was_lost_is_cleared_and_sent_later(
    durable: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = durable.services.store
    monkeypatch.setattr(durable.services, "store", lambda *args: LosesAnswers(real(*args)))
    with pytest.raises(TransientError):
        durable.deliver()  # the email's note landed and its answer was lost: the email is not sent
    assert durable.inboxes() == []
    assert durable.texts() == list(PHONES)  # the texts' notes went through, clearing the email's
    monkeypatch.undo()
    durable.restart()
    durable.clock.advance(minutes=10)
    assert durable.deliver().outcome is Outcome.SENT
    assert sorted(durable.inboxes()) == sorted(EMAILS)


def test_a_channel_left_untold_stays_left_even_when_the_ending_cannot_be_written(
    durable: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    durable.with_slack().slack.script(*[Fault.status(503)] * durable.services.policy.attempts)
    real = durable.services.store
    monkeypatch.setattr(durable.services, "store", lambda *args: LosesAnswers(real(*args), endings_only=True))
    with pytest.raises(TransientError):
        durable.deliver()
    monkeypatch.undo()
    durable.restart()
    durable.clock.advance(minutes=10)
    assert durable.deliver().outcome is Outcome.SENT
    assert len(durable.slack.messages()) == 1
    assert len(durable.emails()) == 1
