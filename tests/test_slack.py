"""The Slack channel end to end (issue 11): one webhook post per run beside the email and the SMS,
its failures, its URL a secret checked to be Slack's, and user data that can never ping or link.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier.errors import TransientError
from notifier.outcome import Outcome
from sandbox.mixpanel import profile
from sandbox.secretmanager import SecretManagerStandIn
from sandbox.server import Fault
from tests.conftest import EMAILS, MARKER, PHONES, LogLines, World

HOSTILE = [
    "<!channel>",
    "<!here>",
    "<@U123>",
    "<#C1|general>",
    "<https://evil.example|Click>",
    "*bold*",
    "a&b",
]


def test_a_run_with_all_three_channels_posts_one_slack_message_beside_the_email_and_texts(
    world: World,
) -> None:
    summary = world.with_slack().deliver()
    assert summary.outcome is Outcome.SENT
    (message,) = world.slack.messages()
    assert message["text"] == "Mixpanel project 4242: 1 new user, 28 Nov 2026, 08:00–09:00 UTC"
    assert any("Ada" in json.dumps(block) for block in message["blocks"])
    assert sorted(world.inboxes()) == sorted(EMAILS)
    assert world.texts() == list(PHONES)
    assert [c.channel for c in summary.channels] == ["email", "sms", "slack"]


def test_channels_slack_sends_only_slack(world: World) -> None:
    assert world.with_slack().deliver(b'{"channels": ["slack"]}').outcome is Outcome.SENT
    assert len(world.slack.messages()) == 1
    assert (world.sendgrid.requests, world.twilio.requests) == ([], [])


def test_channels_slack_without_a_webhook_is_a_bad_message(world: World) -> None:
    summary = world.deliver(b'{"channels": ["slack"]}')
    assert summary.outcome is Outcome.BAD_MESSAGE
    assert summary.error is not None
    assert "SLACK_WEBHOOK_URL" in summary.error


def test_a_dry_run_shows_the_slack_payload_and_posts_nothing(world: World) -> None:
    summary = world.with_slack().deliver(b'{"dry_run": true}')
    assert summary.outcome is Outcome.DRY_RUN
    assert summary.rendered is not None
    assert summary.rendered.slack is not None
    assert summary.rendered.slack["blocks"][0]["type"] == "header"
    assert world.slack.requests == []


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, "invalid_payload"),
        (403, "action_prohibited"),
        (404, "channel_not_found"),
        (410, "channel_is_archived"),
    ],
)
def test_a_permanent_refusal_is_logged_with_slacks_reason_and_the_others_still_send(
    world: World, status: int, reason: str, log_lines: LogLines
) -> None:
    world.with_slack().slack.script(Fault.status(status))
    summary = world.deliver()
    assert summary.outcome is Outcome.PARTIAL
    assert len(world.slack.requests) == 1  # not retried
    assert reason in (summary.channels[2].error or "")
    assert sorted(world.inboxes()) == sorted(EMAILS)
    assert world.deliver().outcome is Outcome.ALREADY_SENT  # a redelivery does not try Slack again


def test_slack_down_leaves_it_for_the_redelivery_and_nobody_else_is_told_twice(world: World) -> None:
    world.with_slack().slack.script(*[Fault.status(503)] * world.services.policy.attempts)
    with pytest.raises(TransientError):
        world.deliver()
    assert world.deliver().outcome is Outcome.SENT
    assert len(world.slack.messages()) == 1
    assert sorted(world.inboxes()) == sorted(EMAILS)


def test_a_rate_limit_is_retried_after_slacks_retry_after(world: World) -> None:
    world.with_slack().slack.script(Fault.status(429, retry_after="3"))
    assert world.deliver().outcome is Outcome.SENT
    assert 3.0 in world.sleeps.calls


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com.evil.example/services/T/B/x",
        "http://hooks.slack.com/services/T/B/x",
        "https://example.com/services/T/B/x",
        "https://hooks.slack.com/api/chat.postMessage",
        "ftp://hooks.slack.com/services/T/B/x",
    ],
)
def test_a_webhook_url_that_is_not_slacks_is_bad_config_never_echoed(
    world: World, url: str, log_lines: LogLines
) -> None:
    world.environ["SLACK_WEBHOOK_URL"] = url + MARKER
    summary = world.deliver()
    assert summary.outcome is Outcome.BAD_CONFIG
    assert summary.error is not None
    assert "SLACK_WEBHOOK_URL" in summary.error
    assert world.emails() == []


def test_a_webhook_read_from_secret_manager_is_checked_once_read(
    world: World, secret_manager: SecretManagerStandIn
) -> None:
    secret_manager.secrets["projects/t/secrets/slack/versions/1"] = f"https://example.com/services/{MARKER}"
    world.environ.update(
        SLACK_WEBHOOK_URL="projects/t/secrets/slack/versions/1", SECRET_MANAGER_API_URL=secret_manager.url
    )
    assert world.deliver().outcome is Outcome.BAD_CONFIG
    secret_manager.secrets["projects/t/secrets/slack/versions/1"] = world.slack.webhook_url
    world.restart()  # a fresh instance reads the secret again
    assert world.deliver().outcome is Outcome.SENT
    assert len(world.slack.messages()) == 1


hostile_text = (
    st.sampled_from(HOSTILE) | st.text(max_size=40) | st.lists(st.sampled_from(HOSTILE)).map(" ".join)
)


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=st.lists(st.tuples(hostile_text, hostile_text), min_size=1, max_size=8))
def test_no_name_or_email_reaches_slack_as_markup_a_mention_or_a_link(
    world: World, people: list[tuple[str, str]]
) -> None:
    world.slack.requests.clear()
    world.mixpanel.profiles = [
        profile(f"h{n}", "2026-11-28T08:30:00", name=name, email=email)
        for n, (name, email) in enumerate(people)
    ]
    backfill = b'{"start": "2026-11-28T08:00:00Z", "end": "2026-11-28T09:00:00Z", "channels": ["slack"]}'
    world.examples += 1  # a message of its own per example: a backfill claims no time
    world.with_slack().deliver(backfill, message_id=f"example-{world.examples}")
    for message in world.slack.messages():
        for block in message["blocks"]:
            raw = json.dumps(block)
            assert '"type": "mrkdwn"' not in raw
            for item in _texts(block):
                assert "<" not in item
                assert ">" not in item
        assert "link_names" not in message


def _texts(value: object) -> list[str]:
    if isinstance(value, dict):
        found = [value["text"]] if isinstance(value.get("text"), str) else []
        return found + [text for item in value.values() for text in _texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    return []
