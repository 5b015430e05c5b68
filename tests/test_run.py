"""The run (SPEC: What is sent, Failures): what reaches whom, dry runs, subsets, the summary line."""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta

import pytest

from notifier.run import handle_message
from notifier.services import Services
from sandbox.mixpanel import MixpanelStandIn, profile
from sandbox.sendgrid import SendGridStandIn
from sandbox.twilio import TwilioStandIn
from tests.conftest import PUBLISHED, LogLines, World, run_once

NEW_USERS = [
    profile("u1", "2026-11-28T08:05:00", name="Ada Lovelace", email="ada@example.com"),
    profile("u2", "2026-11-28T08:50:00", first_name="Grace", last_name="Hopper", email="grace@example.com"),
    profile("old", "2026-11-28T07:59:59", name="Too Early", email="early@example.com"),
]


@pytest.fixture
def seeded(mixpanel: MixpanelStandIn) -> MixpanelStandIn:
    mixpanel.profiles = list(NEW_USERS)
    return mixpanel


def test_a_run_sends_one_email_and_one_sms_per_phone(
    seeded: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    environ: dict[str, str],
    services: Services,
) -> None:
    summary = run_once(environ, services)
    assert summary.outcome == "sent"
    assert summary.users == 2
    (mail,) = sendgrid.mails()
    assert mail["subject"] == "Mixpanel project 4242: 2 new users, 28 Nov 2026, 08:00–09:00 UTC"
    assert len(mail["personalizations"]) == 2
    html = mail["content"][1]["value"]
    assert html.index("Ada Lovelace") < html.index("Grace Hopper")
    assert "Too Early" not in html
    assert [m["To"] for m in twilio.messages()] == ["+14155550100", "+14155550101"]
    assert (
        twilio.messages()[0]["Body"]
        == "Mixpanel project 4242: 2 new users 28 Nov 08:00-09:00 UTC: Ada Lovelace, Grace Hopper"
    )


def test_dry_run_renders_but_sends_nothing(
    seeded: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    environ: dict[str, str],
    services: Services,
) -> None:
    summary = run_once(environ, services, b'{"dry_run": true}')
    assert summary.outcome == "dry_run"
    assert summary.rendered is not None
    assert summary.rendered.email is not None
    assert "Ada Lovelace" in summary.rendered.email.html
    assert summary.rendered.sms is not None
    assert [c.outcome for c in summary.channels] == ["dry_run", "dry_run"]
    assert sendgrid.requests == []
    assert twilio.requests == []


@pytest.mark.parametrize(
    ("channels", "emails", "texts"), [(["email"], 1, 0), (["sms"], 0, 2), (["sms", "email"], 1, 2)]
)
def test_channels_limits_the_run_to_a_subset(
    seeded: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    environ: dict[str, str],
    services: Services,
    channels: list[str],
    emails: int,
    texts: int,
) -> None:
    summary = run_once(environ, services, json.dumps({"channels": channels}).encode())
    assert summary.outcome == "sent"
    assert (len(sendgrid.requests), len(twilio.requests)) == (emails, texts)


def test_a_channel_that_is_not_configured_is_a_bad_message_and_nothing_is_sent(
    seeded: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    environ: dict[str, str],
    services: Services,
) -> None:
    del environ["SMS_TO"]
    summary = run_once(environ, services, b'{"channels": ["sms"]}')
    assert summary.outcome == "bad_message"
    assert summary.error is not None
    assert "SMS_TO" in summary.error
    assert (seeded.requests, sendgrid.requests, twilio.requests) == ([], [], [])


def test_an_empty_window_sends_nothing_by_default(
    mixpanel: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    environ: dict[str, str],
    services: Services,
) -> None:
    summary = run_once(environ, services)
    assert summary.outcome == "nothing_to_send"
    assert (sendgrid.requests, twilio.requests) == ([], [])
    assert len(mixpanel.requests) == 1


def test_notify_when_empty_sends_a_no_new_users_email_and_sms(
    mixpanel: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    environ: dict[str, str],
    services: Services,
) -> None:
    environ["NOTIFY_WHEN_EMPTY"] = "true"
    summary = run_once(environ, services)
    assert summary.outcome == "sent"
    assert (
        sendgrid.mails()[0]["subject"] == "Mixpanel project 4242: No new users, 28 Nov 2026, 08:00–09:00 UTC"
    )
    assert {m["Body"] for m in twilio.messages()} == {
        "Mixpanel project 4242: no new users 28 Nov 08:00-09:00 UTC"
    }


def test_a_bad_configuration_is_reported_once_and_nothing_is_called(
    seeded: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    environ: dict[str, str],
    services: Services,
    caplog: pytest.LogCaptureFixture,
) -> None:
    environ["SMS_TO"] = "+1 (415) 555-0100"
    summary = run_once(environ, services)
    assert summary.outcome == "bad_config"
    assert (seeded.requests, sendgrid.requests, twilio.requests) == ([], [], [])
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "SMS_TO" in errors[0].getMessage()


def test_a_bad_message_is_logged_and_acked(
    seeded: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    environ: dict[str, str],
    services: Services,
    log_lines: LogLines,
) -> None:
    summary = run_once(environ, services, b'{"lookback_minutes": "sixty"}')
    assert summary.outcome == "bad_message"
    (line,) = log_lines.summaries()
    assert line["severity"] == "ERROR"
    assert "lookback_minutes" in line["message"]
    assert (seeded.requests, sendgrid.requests) == ([], [])


def test_every_run_ends_with_one_structured_summary_without_names_or_emails(
    seeded: MixpanelStandIn, environ: dict[str, str], services: Services, log_lines: LogLines
) -> None:
    run_once(environ, services)
    (line,) = log_lines.summaries()
    assert line["severity"] == "INFO"
    assert line["window"] == {"start": "2026-11-28T08:00:00+00:00", "end": "2026-11-28T09:00:00+00:00"}
    assert (line["users"], line["pages"]) == (2, 1)
    assert line["channels"]["email"] == {"outcome": "sent", "recipients": 2, "delivered": 2}
    assert line["channels"]["sms"]["outcome"] == "sent"
    assert isinstance(line["duration_ms"], int)
    everything = "\n".join(log_lines.lines)
    for private in ("Ada", "Lovelace", "Grace", "ada@example.com", "grace@example.com"):
        assert private not in everything


def test_a_message_older_than_the_maximum_age_is_acked_without_running(
    seeded: MixpanelStandIn, environ: dict[str, str], services: Services
) -> None:
    services.now = lambda: PUBLISHED + timedelta(hours=25)
    summary = run_once(environ, services)
    assert summary.outcome == "expired"  # nothing of it was claimed: the next run covers its time
    assert seeded.requests == []


def test_handle_message_decodes_pubsub_data_and_uses_publish_time(
    seeded: MixpanelStandIn, sendgrid: SendGridStandIn, environ: dict[str, str], services: Services
) -> None:
    message = {
        "data": base64.b64encode(b'{"lookback_minutes": 30, "channels": ["email"]}').decode(),
        "publishTime": "2026-11-28T09:00:42.123456789Z",
        "messageId": "1",
    }
    summary = handle_message(message, event_time=None, environ=environ, services=services)
    assert summary.window is not None
    assert (summary.window.start_at.isoformat(), summary.users) == ("2026-11-28T08:30:00+00:00", 1)
    assert len(sendgrid.mails()) == 1


def test_handle_message_without_a_publish_time_uses_the_event_time(
    seeded: MixpanelStandIn, environ: dict[str, str], services: Services
) -> None:
    summary = handle_message({}, event_time="2026-11-28T09:00:05Z", environ=environ, services=services)
    assert summary.window is not None
    assert summary.window.end_at.isoformat() == "2026-11-28T09:00:00+00:00"


def test_handle_message_with_broken_base64_is_a_bad_message(
    environ: dict[str, str], services: Services
) -> None:
    summary = handle_message(
        {"data": "%%%", "publishTime": "2026-11-28T09:00:42Z"},
        event_time=None,
        environ=environ,
        services=services,
    )
    assert summary.outcome == "bad_message"


def test_a_configuration_without_any_channel_is_a_bad_configuration(
    seeded: MixpanelStandIn, environ: dict[str, str], services: Services
) -> None:
    del environ["EMAIL_TO"], environ["SMS_TO"]
    summary = run_once(environ, services)
    assert summary.outcome == "bad_config"
    assert summary.error is not None
    assert "EMAIL_TO, SMS_TO" in summary.error
    assert seeded.requests == []


def test_users_at_excluded_domains_appear_nowhere_and_are_counted(world: World) -> None:
    world.environ["EXCLUDE_EMAIL_DOMAINS"] = "example.com"
    world.mixpanel.profiles.append(
        profile("x", "2026-11-28T08:40:00", name="Outsider", email="o@outside.org")
    )
    world.mixpanel.profiles.append(
        profile("y", "2026-11-28T08:41:00", name="Staff", email="s@eng.EXAMPLE.com")
    )
    summary = world.deliver()
    assert (summary.users, summary.excluded) == (1, 2)
    (mail,) = world.emails()
    assert "Outsider" in mail["content"][1]["value"]
    assert "Ada" not in mail["content"][1]["value"]
    assert "Staff" not in json.dumps(world.twilio.messages())
