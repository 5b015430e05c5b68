"""SPEC's failure table, row by row, end to end through the function's handler and the stand-ins."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient

from notifier.errors import TransientError
from notifier.outcome import Outcome
from sandbox.function import push_envelope
from sandbox.mixpanel import MixpanelStandIn, profile
from sandbox.secretmanager import SecretManagerStandIn
from sandbox.sendgrid import SendGridStandIn
from sandbox.server import Fault
from tests.conftest import EMAILS, MARKER, PHONES, PUBLISHED, LogLines, World


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- bad message, bad configuration, Mixpanel 400/401/402/403: ERROR log, ack, nothing sent ------


@pytest.mark.parametrize("status", [400, 401, 402, 403])
def test_mixpanel_refusing_the_query_is_logged_and_acked_with_nothing_sent(
    world: World, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    world.mixpanel.script(Fault.status(status))
    summary = world.deliver()
    assert summary.outcome is Outcome.SOURCE_REJECTED
    assert len(world.mixpanel.requests) == 1  # not retried
    assert (world.sendgrid.requests, world.twilio.requests) == ([], [])
    (error,) = errors(caplog)
    assert f"refused the query with {status}" in error.getMessage()
    cause = {400: "CREATED_PROPERTY", 401: "MIXPANEL_SECRET", 402: "plan", 403: "MIXPANEL_PROJECT_ID"}
    assert cause[status] in error.getMessage()
    assert world.log.summaries()[0]["service"] == "Mixpanel"
    assert world.log.summaries()[0]["status"] == status


def test_time_whose_run_was_refused_is_caught_up_by_the_next_run_after_the_fix(world: World) -> None:
    world.mixpanel.script(Fault.status(401))
    assert world.deliver().outcome is Outcome.SOURCE_REJECTED
    # The credentials are fixed; the next hourly tick covers its own hour and the refused one.
    world.users("2026-11-28T09:30:00")
    world.clock.advance(hours=1)
    summary = world.deliver(message_id="msg-2", published=datetime(2026, 11, 28, 10, 0, 3, tzinfo=UTC))
    assert summary.outcome is Outcome.SENT
    assert summary.users == 2
    assert summary.coverage[0].start == int(datetime(2026, 11, 28, 8, 0, tzinfo=UTC).timestamp())


def test_a_secret_manager_refusal_is_a_bad_configuration_naming_the_variable(
    world: World, secret_manager: SecretManagerStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    world.environ.update(
        SENDGRID_API_KEY="projects/t/secrets/missing/versions/1", SECRET_MANAGER_API_URL=secret_manager.url
    )
    summary = world.deliver()
    assert summary.outcome is Outcome.BAD_CONFIG
    assert world.mixpanel.requests == []
    assert world.sendgrid.requests == []
    assert "SENDGRID_API_KEY" in errors(caplog)[0].getMessage()
    assert world.log.summaries()[0]["variable"] == "SENDGRID_API_KEY"


# -- Mixpanel or Secret Manager still failing: raise for redelivery, nothing sent --------------


def test_mixpanel_still_failing_raises_for_redelivery_and_sends_nothing(world: World) -> None:
    attempts = world.services.policy.attempts
    world.mixpanel.script(*[Fault.status(503)] * attempts)
    assert world.redelivery()["error_type"] == "SourceUnavailable"
    assert len(world.mixpanel.requests) == attempts
    assert (world.sendgrid.requests, world.twilio.requests) == ([], [])
    # Pub/Sub redelivers the same message: same window, and this time it works.
    assert world.deliver().outcome is Outcome.SENT
    assert sorted(world.inboxes()) == sorted(EMAILS)
    assert world.texts() == list(PHONES)


def test_secret_manager_still_failing_raises_for_redelivery_and_sends_nothing(
    world: World, secret_manager: SecretManagerStandIn
) -> None:
    secret_manager.secrets["projects/t/secrets/mp/versions/1"] = world.environ["MIXPANEL_SECRET"]
    world.environ.update(
        MIXPANEL_SECRET="projects/t/secrets/mp/versions/1", SECRET_MANAGER_API_URL=secret_manager.url
    )
    secret_manager.script(*[Fault.status(500)] * world.services.policy.attempts)
    assert world.redelivery()["service"] == "Secret Manager"
    assert (world.mixpanel.requests, world.sendgrid.requests) == ([], [])


# -- a channel failing transiently: the others still send; the redelivery tells only those left --


def test_with_sendgrid_down_the_texts_go_out_and_the_redelivery_sends_only_the_email(world: World) -> None:
    world.sendgrid.script(*[Fault.status(503)] * world.services.policy.attempts)
    with pytest.raises(TransientError):
        world.deliver()
    assert world.inboxes() == []
    assert world.texts() == list(PHONES)  # a working channel is not held back
    assert world.deliver().outcome is Outcome.SENT
    assert sorted(world.inboxes()) == sorted(EMAILS)
    assert world.texts() == list(PHONES)  # nobody texted twice
    assert world.deliver().outcome is Outcome.ALREADY_SENT


def test_one_phone_failing_does_not_stop_the_others_and_a_redelivery_texts_only_it(world: World) -> None:
    world.twilio.script(*[Fault.status(503)] * world.services.policy.attempts)  # every try, first phone
    with pytest.raises(TransientError):
        world.deliver()
    assert world.texts() == [PHONES[1]]
    world.deliver()
    assert sorted(world.texts()) == sorted(PHONES)
    assert len(world.emails()) == 1


def test_a_redelivery_to_a_restarted_instance_repeats_nothing_with_memory_only_on_one_instance(
    world: World,
) -> None:
    # The memory store is this instance's: the README says a fresh instance starts from nothing.
    world.twilio.script(*[Fault.status(503)] * world.services.policy.attempts)
    with pytest.raises(TransientError):
        world.deliver()
    world.deliver()
    assert world.texts().count(PHONES[1]) == 1


def test_a_new_message_for_the_same_window_covers_nothing_already_covered(world: World) -> None:
    world.deliver()
    summary = world.deliver(message_id="msg-2")
    assert summary.outcome is Outcome.ALREADY_COVERED
    assert len(world.emails()) == 1


def test_an_explicit_window_reports_what_it_asks_for_even_when_covered(world: World) -> None:
    world.deliver()
    backfill = b'{"start": "2026-11-28T08:00:00Z", "end": "2026-11-28T09:00:00Z"}'
    assert world.deliver(backfill, message_id="msg-2").outcome is Outcome.SENT
    assert len(world.emails()) == 2


# -- a channel failing permanently: ERROR log, the other channels still send --------------------


def test_sendgrid_refusing_is_logged_and_the_sms_still_goes(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.sendgrid.script(Fault.status(400))
    summary = world.deliver()
    assert summary.outcome is Outcome.PARTIAL
    assert len(world.sendgrid.requests) == 1  # not retried
    assert world.texts() == list(PHONES)
    (error,) = errors(caplog)
    assert "SendGrid refused the email with 400" in error.fields["channels"]["email"]["error"]  # type: ignore[attr-defined]
    # Acked; a redelivery anyway (at-least-once) does not try the refused address again.
    assert world.deliver().outcome is Outcome.ALREADY_SENT
    assert len(world.sendgrid.requests) == 1


def test_twilio_refusing_is_logged_and_the_email_still_goes(world: World) -> None:
    world.environ["TWILIO_AUTH_TOKEN"] = f"wrong-{MARKER}"
    summary = world.deliver()
    assert summary.outcome is Outcome.PARTIAL
    assert len(world.emails()) == 1
    assert world.texts() == []
    assert len(world.twilio.requests) == 2  # one try per phone, no retries for a 401


def test_every_channel_refusing_is_a_failed_run_that_is_acked_and_gives_its_time_back(world: World) -> None:
    world.sendgrid.script(Fault.status(403))
    world.twilio.script(Fault.status(400), Fault.status(400))
    assert world.deliver().outcome is Outcome.FAILED
    # Nobody was told: the next scheduled run covers this hour again, so the users are not lost.
    world.clock.advance(hours=1)
    summary = world.deliver(message_id="msg-2", published=datetime(2026, 11, 28, 10, 0, 1, tzinfo=UTC))
    assert summary.outcome is Outcome.SENT
    assert summary.users == 1


# -- an unknown outcome: recorded unconfirmed, ERROR, never retried automatically ----------------


def test_a_lost_answer_is_unconfirmed_logged_and_never_sent_again(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.sendgrid.script(Fault.dropped(after_acting=True))
    summary = world.deliver()
    assert summary.outcome is Outcome.PARTIAL
    assert summary.channels[0].unconfirmed == 2
    assert any("unconfirmed" in r.getMessage() for r in errors(caplog))
    assert world.deliver().outcome is Outcome.ALREADY_SENT
    assert len(world.sendgrid.requests) == 1


def test_a_run_whose_every_send_went_unconfirmed_is_partial_not_failed(world: World) -> None:
    del world.environ["SMS_TO"]  # email alone
    world.sendgrid.script(Fault.dropped(after_acting=True))
    summary = world.deliver()
    assert summary.outcome is Outcome.PARTIAL  # they may well have it: "failed" would say nobody has
    assert summary.channels[0].unconfirmed == 2


# -- a message much older than the retry horizon: logged and acked ---------------------------


def test_a_message_past_the_retry_horizon_is_logged_and_acked(world: World) -> None:
    world.environ["MAX_MESSAGE_AGE_MINUTES"] = "60"
    world.clock.advance(minutes=61)
    assert world.deliver().outcome is Outcome.EXPIRED  # nothing of it was claimed: nothing lost
    assert world.mixpanel.requests == []
    line = world.log.summaries()[-1]
    assert line["severity"] == "WARNING"
    assert "nothing of it was claimed: the next scheduled run covers it" in line["error"]


def test_time_given_back_that_the_next_run_cannot_reach_is_said_by_that_run(world: World) -> None:
    world.environ.update(MAX_MESSAGE_AGE_MINUTES="120", MAX_CATCH_UP_MINUTES="60")
    world.mixpanel.script(*[Fault.status(503)] * world.services.policy.attempts)
    world.redelivery()  # 08:00-09:00 kept open: nobody told
    world.clock.advance(minutes=121)
    assert world.deliver().outcome is Outcome.EXPIRED  # given back, for the next run
    published = PUBLISHED + timedelta(hours=2)
    world.clock.now = published + timedelta(seconds=5)
    world.deliver(message_id="tick-11", published=published)  # reaches back to 10:00 only
    (said,) = [s for s in world.log.summaries() if s["severity"] == "ERROR"]
    assert said["outcome"] == "stale_message"
    assert '{"start": "2026-11-28T08:00:00+00:00", "end": "2026-11-28T09:00:00+00:00"}' in said["error"]
    assert said["window"] == {"start": "2026-11-28T08:00:00+00:00", "end": "2026-11-28T09:00:00+00:00"}


def test_a_backfill_past_the_retry_horizon_needs_a_person(world: World) -> None:
    world.environ["MAX_MESSAGE_AGE_MINUTES"] = "60"
    world.clock.advance(minutes=61)
    backfill = b'{"start": "2026-11-28T06:00:00Z", "end": "2026-11-28T07:00:00Z"}'
    assert world.deliver(backfill).outcome is Outcome.STALE_MESSAGE
    line = world.log.summaries()[-1]
    assert line["severity"] == "ERROR"
    assert "was never reported; to re-run a window, publish start/end" in line["error"]


def test_a_late_duplicate_of_a_message_that_was_sent_is_no_error(world: World) -> None:
    world.environ["MAX_MESSAGE_AGE_MINUTES"] = "90"
    assert world.deliver().outcome is Outcome.SENT
    world.clock.advance(minutes=91)  # Pub/Sub delivers it once more, late (at least once)
    assert world.deliver().outcome is Outcome.EXPIRED
    assert "it had ended" in (world.log.summaries()[-1]["error"])


def test_a_stale_redelivery_gives_up_on_the_recipients_left_naming_channel_and_count(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.environ["MAX_MESSAGE_AGE_MINUTES"] = "60"
    world.sendgrid.script(*[Fault.status(503)] * world.services.policy.attempts)
    with pytest.raises(TransientError):
        world.deliver()
    world.clock.advance(minutes=61)
    assert world.deliver().outcome is Outcome.STALE_MESSAGE
    assert "gave up on email (2 recipients)" in errors(caplog)[-1].getMessage()


# -- anything unexpected: one summary at ERROR with the type, no secret -----------------------


def test_a_bug_still_logs_one_summary_with_the_exception_type(world: World, log_lines: LogLines) -> None:
    world.environ["EXTRA_PROPERTIES"] = "plan"
    odd = [{"$distinct_id": {"a": n}} for n in range(3)]
    world.mixpanel.transform_next_page(lambda page: {**page, "results": odd, "total": 3})
    world.deliver()  # odd ids are made text, not a crash
    assert sum('"event": "run_summary"' in line for line in log_lines.lines) == 1


# -- through the deployed entry point: HTTP status is what Pub/Sub acts on -------------------


def test_the_function_answers_500_so_pubsub_redelivers_then_200_once_it_worked(
    function: FlaskClient,
    mixpanel: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUN_BUDGET_SECONDS", "5")
    now = datetime.now(UTC)
    mixpanel.profiles = [profile("u1", (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S"))]
    envelope = push_envelope({"lookback_minutes": 60}, publish_time=now)
    # Retry-After past the run's budget: the run gives up at once instead of waiting.
    mixpanel.script(Fault.status(503, retry_after="60"))
    assert function.post("/", json=envelope).status_code == 500
    assert sendgrid.requests == []
    assert function.post("/", json=envelope).status_code == 200
    assert len(sendgrid.mails()) == 1


def test_the_function_acks_a_bad_message_with_200(function: FlaskClient, mixpanel: MixpanelStandIn) -> None:
    response = function.post("/", json=push_envelope({"lookback_minutes": 0}))
    assert response.status_code == 200
    assert mixpanel.requests == []
