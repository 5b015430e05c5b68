"""What reaches a log line: every secret blanked in every form the run sends it in, however a provider
or a proxy echoes the request back, and no person's name quoted back from a provider's error.

conftest's leak check (no log line may carry MARKER) runs on every test here as everywhere.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from urllib.parse import quote, quote_plus

import pytest

from notifier import logs
from notifier.outcome import Outcome
from notifier.replies import ECHO, error_detail
from sandbox.mixpanel import profile
from sandbox.server import Fault, Reply
from sandbox.twilio import ACCOUNT_SID
from tests.conftest import MARKER, MIXPANEL_SECRET, SERVICE_ACCOUNT, SLACK_PATH, TWILIO_TOKEN, LogLines, World

LOG = logging.getLogger("notifier.test")


def logged(log_lines: LogLines, text: str) -> str:
    LOG.error("%s", text)
    return log_lines.lines[-1]


@pytest.mark.parametrize(
    "form",
    [
        lambda s: s,
        lambda s: quote(s, safe=""),
        lambda s: quote_plus(s),
        lambda s: json.dumps(s)[1:-1],
        lambda s: s.replace("/", "\\/"),
        lambda s: html.escape(s),
    ],
    ids=["as is", "percent-encoded", "form-encoded", "JSON-escaped", "escaped slashes", "HTML-escaped"],
)
def test_a_hidden_value_is_blanked_in_every_form_it_may_be_echoed_in(
    form: object, log_lines: LogLines
) -> None:
    secret = f'https://hooks.example/services/T1/B2/{MARKER}+/&="x'
    logs.hide(secret)
    line = logged(log_lines, f"upstream said: {form(secret)} (end)")  # type: ignore[operator]
    assert "[secret]" in line
    assert "(end)" in line


def test_a_secret_urls_path_and_last_segment_are_blanked_too(log_lines: LogLines) -> None:
    logs.hide(f"https://hooks.example/services/T1/B2/{MARKER}")
    assert "[secret]" in logged(log_lines, f"Cannot POST /services/T1/B2/{MARKER}")
    assert "[secret]" in logged(log_lines, f"unknown token {MARKER}")


def test_short_forms_are_never_blanked_so_ordinary_words_survive(log_lines: LogLines) -> None:
    logs.hide("https://example.org/a")  # its last segment "a" is no secret of its own
    assert "a plain line" in logged(log_lines, "a plain line")


def test_mixpanels_basic_header_echoed_in_an_error_never_reaches_a_log(
    world: World, log_lines: LogLines
) -> None:
    header = base64.b64encode(f"{SERVICE_ACCOUNT}:{MIXPANEL_SECRET}".encode()).decode()
    world.mixpanel.script(Fault(reply=Reply.json(401, {"error": f"bad Authorization: Basic {header}"})))
    assert world.deliver().outcome is Outcome.SOURCE_REJECTED
    assert not [line for line in log_lines.lines if header in line]
    assert any("[secret]" in line for line in log_lines.lines)


def test_twilios_basic_header_echoed_in_an_error_never_reaches_a_log(
    world: World, log_lines: LogLines
) -> None:
    header = base64.b64encode(f"{ACCOUNT_SID}:{TWILIO_TOKEN}".encode()).decode()
    echo = {"code": 20003, "message": f"Authenticate: Basic {header} was refused", "status": 401}
    world.twilio.script(*[Fault(reply=Reply.json(401, echo))] * 2)
    world.deliver()
    assert not [line for line in log_lines.lines if header in line]
    assert any("[secret]" in line for line in log_lines.lines)


def test_a_proxys_page_quoting_the_slack_webhook_path_never_reaches_a_log(
    world: World, log_lines: LogLines
) -> None:
    page = f"<html><body>404 Not Found: Cannot POST {SLACK_PATH}</body></html>".encode()
    world.with_slack().slack.script(Fault(reply=Reply(404, page, {"Content-Type": "text/html"})))
    summary = world.deliver()
    assert summary.channels[2].rejected == 1
    assert "[secret]" in (summary.channels[2].error or "")  # and conftest finds no marker in any line


def test_a_providers_error_quoting_a_persons_name_logs_the_reason_without_the_name(
    world: World, log_lines: LogLines
) -> None:
    world.mixpanel.profiles = [
        profile("u1", "2026-11-28T08:30:00", name="Zebulon Quux-Ferreira", email="zq@example.com")
    ]
    problem = {"errors": [{"message": "Content near 'Zebulon Quux-Ferreira' was flagged as spam"}]}
    world.sendgrid.script(Fault(reply=Reply.json(400, problem)))
    summary = world.deliver()
    assert summary.channels[0].rejected == 2
    error = summary.channels[0].error or ""
    assert "flagged as spam" in error
    assert ECHO in error
    for part in ("Zebulon", "Quux", "Ferreira"):
        assert not [line for line in log_lines.lines if part in line]


def test_a_providers_own_words_survive_the_echo_mask() -> None:
    sent = json.dumps({"text": "Acme: 1 new user", "blocks": [{"text": "Ada Lovelace"}]}).encode()
    assert error_detail(b"invalid_blocks", sent=sent) == "invalid_blocks"
    assert error_detail(b"bad name Ada Lovelace here", sent=sent) == f"bad name {ECHO} {ECHO} here"
    form = b"To=%2B14155550100&Body=Hi+Grace+Hopper&From=%2B14155550199"
    assert (
        error_detail("Body 'Hi Grace Hopper' rejected", sent=form) == f"Body '{ECHO} {ECHO} {ECHO}' rejected"
    )
