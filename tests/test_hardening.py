"""The holes a hostile tester found (issue 8), each kept as a named regression test.

Every test here failed on the code before the hardening; the class of bug behind each is covered
more widely elsewhere (the channel contract, the chaos test, the fault tests).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from notifier.errors import TransientError
from notifier.outcome import Outcome
from notifier.replies import error_detail
from notifier.retry import RetryPolicy
from notifier.run import handle_message
from notifier.summary import RunSummary
from notifier.trigger import parse_bound
from sandbox.function import push_envelope
from sandbox.mixpanel import profile
from sandbox.secretmanager import SecretManagerStandIn
from sandbox.server import Fault, Reply, StandIn
from tests.conftest import EMAILS, MARKER, PHONES, LogLines, World

VERSION = "projects/t/secrets/{}/versions/1"


# 1. The same phone texted on every redelivery --------------------------------------------------


@pytest.mark.parametrize(
    "second",
    [
        Fault(
            reply=Reply.json(400, {"type": "about:blank", "title": "Bad To", "status": 400, "code": 21211})
        ),
        Fault(reply=Reply(201, b"null", {"Content-Type": "application/json"}), accept=True),
        Fault(reply=Reply(201, b"[]", {"Content-Type": "application/json"}), accept=True),
    ],
    ids=["problem+json", "201 null", "201 []"],
)
def test_a_phone_texted_once_is_never_texted_again_whatever_the_next_answer(
    world: World, second: Fault, log_lines: LogLines
) -> None:
    world.twilio.script(Fault(accept=True), second)
    for _ in range(4):
        with contextlib.suppress(TransientError):
            world.deliver()
    assert world.texts().count(PHONES[0]) == 1
    assert len(log_lines.summaries()) == 4  # one summary per delivery, never a bare 500


# 2. and 3. A secret that cannot travel in a header -----------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SENDGRID_API_KEY", f"SG.{MARKER}\nsecond-line"),
        ("TWILIO_AUTH_TOKEN", f"\ufefftw-{MARKER}"),
        ("MIXPANEL_SECRET", f"\ufeffmp-{MARKER}"),
        ("SENDGRID_API_KEY", f"SG.{MARKER}é"),
        ("TWILIO_AUTH_TOKEN", "   "),
    ],
    ids=["newline", "twilio BOM", "mixpanel BOM", "non-ASCII", "whitespace only"],
)
def test_a_bad_secret_value_is_bad_config_naming_the_variable_never_the_value(
    world: World, secret_manager: SecretManagerStandIn, variable: str, value: str, log_lines: LogLines
) -> None:
    secret_manager.secrets[VERSION.format("s")] = value
    world.environ.update({variable: VERSION.format("s"), "SECRET_MANAGER_API_URL": secret_manager.url})
    summary = world.deliver()
    assert summary.outcome is Outcome.BAD_CONFIG
    assert summary.error is not None
    assert variable in summary.error
    assert (world.emails(), world.texts()) == ([], [])
    assert log_lines.summaries()[0]["variable"] == variable  # the conftest checks no line has the marker


def test_delivered_only_ever_comes_from_a_providers_answer(world: World) -> None:
    world.environ["TWILIO_AUTH_TOKEN"] = f"\ufefftw-{MARKER}"
    summary = world.deliver()
    assert summary.outcome is Outcome.BAD_CONFIG
    assert all(c.delivered == 0 for c in summary.channels)
    assert world.twilio.requests == []


# 4. Everything twice after an ambiguous answer ------------------------------------------------


@pytest.mark.parametrize(
    "fault", [Fault.truncated(keep=0), Fault.dropped(after_acting=True)], ids=["cut", "reset"]
)
def test_an_accepted_email_whose_answer_breaks_is_never_sent_again(world: World, fault: Fault) -> None:
    world.sendgrid.script(fault)
    world.deliver()
    world.deliver()
    assert sorted(world.inboxes()) == sorted(EMAILS)


# 5. Bad messages that crash-looped ------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b'{"lookback_minutes": ' + b"9" * 5000 + b"}",
        b'{"start": "0001-01-01T00:00:00+01:00", "end": "0001-01-01T01:00:00Z"}',
        b'{"start": "9999-12-31T23:00:00Z", "end": "9999-12-31T23:59:59-01:00"}',
        b"[" * 100_000,
    ],
    ids=["4,300+ digits", "year 1", "year 9999", "deep nesting"],
)
def test_a_message_that_cannot_be_read_is_a_bad_message_and_acked(world: World, data: bytes) -> None:
    assert world.deliver(data).outcome is Outcome.BAD_MESSAGE


@pytest.mark.parametrize("publish_time", ["0001-01-01T00:00:00+00:30", "9999-12-31T23:59:59-23:59"])
def test_a_publish_time_at_the_edge_of_the_calendar_is_a_bad_message(world: World, publish_time: str) -> None:
    message = {"data": "", "messageId": "m", "publishTime": publish_time}
    summary = handle_message(message, event_time=None, environ=world.environ, services=world.services)
    assert summary.outcome in (Outcome.BAD_MESSAGE, Outcome.STALE_MESSAGE)


@pytest.mark.parametrize("data", [5, [1, 2], {"a": 1}, True])
def test_a_push_envelope_whose_data_is_not_a_string_is_acked(function: FlaskClient, data: object) -> None:
    envelope = push_envelope(b"{}")
    envelope["message"]["data"] = data
    assert function.post("/", json=envelope).status_code == 200


# 6. One half-emoji stopped the window for good ------------------------------------------------


def test_a_lone_surrogate_in_a_name_past_the_row_limit_still_sends(world: World) -> None:
    world.environ["EMAIL_ROW_LIMIT"] = "1"
    world.mixpanel.profiles += [
        profile("half", "2026-11-28T08:40:00", name="Ada \ud83d", email="a@example.com")
    ]
    assert world.deliver().outcome is Outcome.SENT
    (mail,) = world.emails()
    assert mail["attachments"]


# 7. An odd SendGrid error body --------------------------------------------------------------


@pytest.mark.parametrize(
    "body", [{"errors": 5}, {"errors": [5, None, {"message": 7}]}, [1, 2], "x" * 100_000]
)
def test_an_error_body_of_any_shape_is_read(world: World, body: object) -> None:
    world.sendgrid.script(Fault(reply=Reply.json(400, body)))
    summary = world.deliver()
    assert summary.outcome is Outcome.PARTIAL
    assert len(summary.channels[0].error or "") < 400


# 8. One bad Secret Manager answer cached for the instance's life ------------------------------


def test_a_malformed_secret_manager_answer_is_transient_and_never_cached(
    world: World, secret_manager: SecretManagerStandIn
) -> None:
    secret_manager.secrets[VERSION.format("sendgrid")] = world.environ["SENDGRID_API_KEY"]
    world.environ.update(
        SENDGRID_API_KEY=VERSION.format("sendgrid"), SECRET_MANAGER_API_URL=secret_manager.url
    )
    world.services.policy = RetryPolicy(attempts=1)
    secret_manager.script(Fault(reply=Reply.json(200, {})))
    with pytest.raises(TransientError):
        world.deliver()
    assert world.deliver().outcome is Outcome.SENT
    assert sorted(world.inboxes()) == sorted(EMAILS)


# 9. A slow, steady trickle held the run past its budget: test_faults.py, and the channel contract.
# 10. Users silently dropped when paging fields are off ----------------------------------------


def test_pages_without_page_size_are_followed_to_the_total(world: World) -> None:
    world.mixpanel.page_size = 500
    world.users(*[f"2026-11-28T08:{n % 60:02d}:{n // 60:02d}" for n in range(2499)])
    world.mixpanel.transform_next_page(
        *[lambda page: {k: v for k, v in page.items() if k != "page_size"}] * 5
    )
    summary = world.deliver()
    assert (summary.outcome, summary.users) == (Outcome.SENT, 2500)


def test_a_total_smaller_than_the_real_count_stops_the_run_to_try_again(world: World) -> None:
    world.mixpanel.page_size = 1000
    world.users(*[f"2026-11-28T08:{n % 60:02d}:{n // 60:02d}" for n in range(2499)])
    world.mixpanel.transform_next_page(*[lambda page: {**page, "total": 1500}] * 4)
    assert "promised" in world.redelivery()["error"]
    assert world.emails() == []
    world.mixpanel.page_transforms.clear()  # Mixpanel's pages agree again
    assert world.deliver().users == 2500


def test_a_total_larger_than_what_comes_is_a_loud_failure(world: World) -> None:
    world.mixpanel.transform_next_page(
        lambda page: {**page, "total": 5}, lambda page: {**page, "results": []}
    )
    assert "5 were promised" in world.redelivery()["error"]
    assert world.emails() == []


# The lower items ----------------------------------------------------------------------------


def test_fractions_past_microseconds_of_a_bound_are_rounded_up_not_dropped() -> None:
    assert parse_bound("2026-11-28T08:00:00.0000001Z", field="start") > datetime(2026, 11, 28, 8, tzinfo=UTC)


def test_two_deliveries_of_one_message_at_once_on_one_instance_send_once(world: World) -> None:
    world.sendgrid.script(Fault.hang(0.8))
    results: list[RunSummary | BaseException] = []

    def deliver() -> None:
        try:
            results.append(world.deliver())
        except TransientError as error:
            results.append(error)

    first = threading.Thread(target=deliver)
    first.start()
    first.join(0.3)
    deliver()
    first.join()
    assert sorted(world.inboxes()) == sorted(EMAILS)
    assert sum(isinstance(r, TransientError) for r in results) == 1


def test_a_huge_bad_message_makes_a_small_log_line(world: World, log_lines: LogLines) -> None:
    data = base64.b64encode(b"x" * 1_300_000).decode()
    message = {"data": data + "!", "messageId": "m", "publishTime": "2026-11-28T09:00:42Z"}
    handle_message(message, event_time=None, environ=world.environ, services=world.services)
    assert max(len(line) for line in log_lines.lines) < 10_000


def test_a_log_line_is_capped_whatever_it_carries(log_lines: LogLines) -> None:
    logging.getLogger("notifier.test").error("x", extra={"fields": {"blob": "y" * 1_000_000}})
    assert len(log_lines.lines[-1]) < 40_000


# The second attack (a fresh-eyes review of the hardened function) ------------------------------


def test_a_provider_echoing_the_key_back_cannot_carry_it_into_a_log(
    world: World, log_lines: LogLines
) -> None:
    echo = {"errors": [{"message": f"bad key {world.environ['SENDGRID_API_KEY']} for this account"}]}
    world.sendgrid.script(Fault(reply=Reply.json(400, echo)))
    world.deliver()
    assert any("[secret]" in line for line in log_lines.lines)  # and the conftest finds no marker


def test_half_an_emoji_in_a_providers_error_still_leaves_a_summary(world: World, log_lines: LogLines) -> None:
    world.sendgrid.script(Fault(reply=Reply(400, b'{"errors": [{"message": "bad \\ud800 thing"}]}')))
    world.deliver()
    assert len(log_lines.summaries()) == 1


def test_a_service_account_that_cannot_travel_in_a_header_is_bad_config(world: World) -> None:
    world.environ["MIXPANEL_SERVICE_ACCOUNT"] = "notifier.sa-ü"
    summary = world.deliver()
    assert summary.outcome is Outcome.BAD_CONFIG
    assert summary.error_fields == {"variable": "MIXPANEL_SERVICE_ACCOUNT"}


@pytest.mark.parametrize("data", [{"not": "a pubsub push"}, {"message": "text"}, [1, 2]])
def test_an_event_without_a_pubsub_message_is_a_bad_message_and_sends_nothing(
    function: FlaskClient, world: World, data: object
) -> None:
    headers = {
        "ce-id": "1",
        "ce-specversion": "1.0",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-time": "2026-11-28T09:00:42Z",
    }
    assert function.post("/", json=data, headers=headers).status_code == 200
    assert world.mixpanel.requests == []


def test_many_refused_phones_make_a_short_summary(world: World, log_lines: LogLines) -> None:
    world.environ["SMS_TO"] = ",".join(f"+1415555{n:04d}" for n in range(100))
    world.environ["EMAIL_TO"] = ""
    world.twilio.script(
        *[Fault(reply=Reply.json(400, {"code": 21211, "message": f"bad number {n}"})) for n in range(100)]
    )
    world.deliver()
    assert max(len(line) for line in log_lines.lines) < 5_000


def test_more_phones_than_a_run_can_text_is_bad_config(world: World) -> None:
    world.environ["SMS_TO"] = ",".join(f"+1415555{n:04d}" for n in range(101))
    assert world.deliver().outcome is Outcome.BAD_CONFIG


# The third look (the history's journal, Slack behind a proxy, short numbers) ------------------


class RedirectingProxy(StandIn):
    """A forward proxy whose upstream answers a redirect the first time, then "ok" to anything."""

    name = "proxy"

    def respond(self, request: Any) -> Reply:
        if len(self.requests) == 1:
            return Reply(302, b"", {"Location": "http://127.0.0.1:9/elsewhere"})
        return Reply(200, b"ok")


def test_a_slack_redirect_is_refused_behind_a_proxy_too(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    with RedirectingProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("http_proxy", proxy.url)
        # Only Slack goes through the proxy: the other stand-ins are reached as 127.0.0.1, Slack as localhost.
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        world.environ["SLACK_WEBHOOK_URL"] = world.slack.webhook_url.replace("127.0.0.1", "localhost")
        summary = world.deliver(b'{"channels": ["slack"]}')
    assert len(proxy.requests) == 1  # the post went through the proxy, and the redirect was not followed
    assert summary.channels[0].rejected == 1


@pytest.mark.parametrize("number", ["+6834002", "+12", "+44 7700 900123", "0044-7700-900123"])
def test_phone_numbers_of_any_e164_length_are_masked_in_provider_text(number: str) -> None:
    detail = error_detail(f"The 'To' number {number} is not a valid phone number.")
    assert number not in detail
    assert re.sub(r"\D", "", number) not in re.sub(r"\D", "", detail)
    assert "•" in detail
