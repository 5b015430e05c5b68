"""SPEC's failure table, row by row, end to end through the function's handler and stand-ins."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient

from notifier.errors import ChannelUnavailable, SourceUnavailable
from notifier.run import RunSummary, Services, handle_message
from sandbox.function import push_envelope
from sandbox.mixpanel import MixpanelStandIn, profile
from sandbox.secretmanager import SecretManagerStandIn
from sandbox.sendgrid import SendGridStandIn
from sandbox.server import Fault
from sandbox.twilio import TwilioStandIn
from tests.conftest import MARKER, PUBLISHED

MESSAGE = {
    "data": base64.b64encode(b'{"lookback_minutes": 60}').decode(),
    "messageId": "msg-1",
    "publishTime": PUBLISHED.isoformat().replace("+00:00", "Z"),
}


@pytest.fixture(autouse=True)
def one_new_user(mixpanel: MixpanelStandIn) -> None:
    mixpanel.profiles = [profile("u1", "2026-11-28T08:30:00", name="Ada", email="ada@example.com")]


def deliver(environ: dict[str, str], services: Services, message: dict[str, str] = MESSAGE) -> RunSummary:
    return handle_message(message, event_time=None, environ=environ, services=services)


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- bad message, bad configuration, Mixpanel 400/401/402/403: ERROR log, ack, nothing sent ------


@pytest.mark.parametrize("status", [400, 401, 402, 403])
def test_mixpanel_refusing_the_query_is_logged_and_acked_with_nothing_sent(
    status: int,
    mixpanel: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    environ: dict[str, str],
    services: Services,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mixpanel.script(Fault.status(status))
    summary = deliver(environ, services)
    assert summary.outcome == "source_rejected"
    assert len(mixpanel.requests) == 1  # not retried
    assert (sendgrid.requests, twilio.requests) == ([], [])
    (error,) = errors(caplog)
    assert f"refused the query with {status}" in error.getMessage()
    assert "MIXPANEL_SECRET" in error.getMessage()


def test_a_secret_manager_refusal_is_a_bad_configuration_naming_the_variable(
    mixpanel: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    secret_manager: SecretManagerStandIn,
    environ: dict[str, str],
    services: Services,
    caplog: pytest.LogCaptureFixture,
) -> None:
    environ.update(
        SENDGRID_API_KEY="projects/t/secrets/missing/versions/1", SECRET_MANAGER_API_URL=secret_manager.url
    )
    summary = deliver(environ, services)
    assert summary.outcome == "bad_config"
    assert mixpanel.requests == []
    assert sendgrid.requests == []
    assert "SENDGRID_API_KEY" in errors(caplog)[0].getMessage()


# -- Mixpanel or Secret Manager still failing: raise for redelivery, nothing sent --------------


def test_mixpanel_still_failing_raises_for_redelivery_and_sends_nothing(
    mixpanel: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    environ: dict[str, str],
    services: Services,
) -> None:
    mixpanel.script(*[Fault.status(503)] * services.policy.attempts)
    with pytest.raises(SourceUnavailable):
        deliver(environ, services)
    assert len(mixpanel.requests) == services.policy.attempts
    assert (sendgrid.requests, twilio.requests) == ([], [])
    # Pub/Sub redelivers the same message: same window, and this time it works.
    summary = deliver(environ, services)
    assert summary.outcome == "sent"
    assert len(sendgrid.mails()) == 1
    assert len(twilio.messages()) == 2


def test_secret_manager_still_failing_raises_for_redelivery_and_sends_nothing(
    mixpanel: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    secret_manager: SecretManagerStandIn,
    environ: dict[str, str],
    services: Services,
) -> None:
    secret_manager.secrets["projects/t/secrets/mp/versions/1"] = environ["MIXPANEL_SECRET"]
    environ.update(
        MIXPANEL_SECRET="projects/t/secrets/mp/versions/1", SECRET_MANAGER_API_URL=secret_manager.url
    )
    secret_manager.script(*[Fault.status(500)] * services.policy.attempts)
    with pytest.raises(SourceUnavailable):
        deliver(environ, services)
    assert (mixpanel.requests, sendgrid.requests) == ([], [])


# -- a channel failing transiently -------------------------------------------------------------


def test_email_still_failing_with_nothing_delivered_raises_and_the_redelivery_sends_once(
    sendgrid: SendGridStandIn, twilio: TwilioStandIn, environ: dict[str, str], services: Services
) -> None:
    sendgrid.script(*[Fault.status(503)] * services.policy.attempts)
    with pytest.raises(ChannelUnavailable):
        deliver(environ, services)
    assert sendgrid.mails() == []
    assert twilio.requests == []  # nobody was told, so the whole window can be redelivered
    assert deliver(environ, services).outcome == "sent"
    assert len(sendgrid.mails()) == 1
    assert len(twilio.messages()) == 2


def test_sms_still_failing_after_the_email_went_out_is_logged_and_acked(
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    environ: dict[str, str],
    services: Services,
    caplog: pytest.LogCaptureFixture,
) -> None:
    twilio.script(*[Fault.status(503)] * (2 * services.policy.attempts))
    summary = deliver(environ, services)
    assert summary.outcome == "partial"
    assert len(sendgrid.mails()) == 1
    assert twilio.messages() == []
    (error,) = errors(caplog)
    assert error.fields["channels"]["sms"]["outcome"] == "failed"  # type: ignore[attr-defined]


def test_a_redelivered_message_after_a_partial_failure_never_sends_a_second_email(
    sendgrid: SendGridStandIn, twilio: TwilioStandIn, environ: dict[str, str], services: Services
) -> None:
    twilio.script(*[Fault.status(503)] * (2 * services.policy.attempts))
    assert deliver(environ, services).outcome == "partial"
    # Pub/Sub is at-least-once: the acked message may still come back.
    again = deliver(environ, services)
    assert len(sendgrid.mails()) == 1
    assert [m["To"] for m in twilio.messages()] == ["+14155550100", "+14155550101"]
    assert [c.outcome for c in again.channels] == ["already_sent", "sent"]
    third = deliver(environ, services)
    assert third.outcome == "already_sent"
    assert (len(sendgrid.mails()), len(twilio.messages())) == (1, 2)


def test_one_phone_failing_does_not_stop_the_others_and_a_redelivery_texts_only_it(
    sendgrid: SendGridStandIn, twilio: TwilioStandIn, environ: dict[str, str], services: Services
) -> None:
    twilio.script(*[Fault.status(503)] * services.policy.attempts)  # every try for the first phone
    summary = deliver(environ, services)
    assert summary.outcome == "partial"
    assert [m["To"] for m in twilio.messages()] == ["+14155550101"]
    deliver(environ, services)
    assert sorted(m["To"] for m in twilio.messages()) == ["+14155550100", "+14155550101"]
    assert len(sendgrid.mails()) == 1


def test_a_new_message_for_the_same_window_sends_again(
    sendgrid: SendGridStandIn, environ: dict[str, str], services: Services
) -> None:
    # A manual re-run publishes a new message; only redeliveries of one message are deduplicated.
    deliver(environ, services)
    deliver(environ, services, {**MESSAGE, "messageId": "msg-2"})
    assert len(sendgrid.mails()) == 2


# -- a channel failing permanently: ERROR log, the other channel still sends ------------------


def test_sendgrid_refusing_is_logged_and_the_sms_still_goes(
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    environ: dict[str, str],
    services: Services,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sendgrid.script(Fault.status(400))
    summary = deliver(environ, services)
    assert summary.outcome == "partial"
    assert len(sendgrid.requests) == 1  # not retried
    assert len(twilio.messages()) == 2
    (error,) = errors(caplog)
    assert "SendGrid refused the email with 400" in error.fields["channels"]["email"]["error"]  # type: ignore[attr-defined]


def test_twilio_refusing_is_logged_and_the_email_still_goes(
    sendgrid: SendGridStandIn, twilio: TwilioStandIn, environ: dict[str, str], services: Services
) -> None:
    environ["TWILIO_AUTH_TOKEN"] = f"wrong-{MARKER}"
    summary = deliver(environ, services)
    assert summary.outcome == "partial"
    assert len(sendgrid.mails()) == 1
    assert twilio.messages() == []
    assert len(twilio.requests) == 2  # one try per phone, no retries for a 401


def test_every_channel_refusing_is_a_failed_run_that_is_still_acked(
    sendgrid: SendGridStandIn, twilio: TwilioStandIn, environ: dict[str, str], services: Services
) -> None:
    sendgrid.script(Fault.status(403))
    twilio.script(Fault.status(400), Fault.status(400))
    assert deliver(environ, services).outcome == "failed"


# -- a message much older than the retry horizon: logged and acked ---------------------------


def test_a_message_past_the_retry_horizon_is_logged_and_acked(
    mixpanel: MixpanelStandIn, environ: dict[str, str], services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    environ["MAX_MESSAGE_AGE_MINUTES"] = "60"
    services.now = lambda: PUBLISHED + timedelta(minutes=61)
    assert deliver(environ, services).outcome == "stale_message"
    assert mixpanel.requests == []
    assert "start/end" in errors(caplog)[0].getMessage()


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
