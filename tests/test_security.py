"""Security promises that cut across modules: TLS, where secrets may travel, injection."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from notifier.errors import NotifierError
from notifier.services import Services
from sandbox.mixpanel import MixpanelStandIn, profile
from sandbox.sendgrid import SendGridStandIn
from sandbox.server import Fault
from sandbox.twilio import TwilioStandIn
from tests.conftest import MARKER, run_once

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = [ROOT / "main.py", *sorted((ROOT / "notifier").rglob("*.py"))]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_tls_verification_is_never_turned_off(path: Path) -> None:
    source = path.read_text()
    for pattern in (
        r"verify\s*=\s*False",
        r"CERT_NONE",
        r"_create_unverified_context",
        r"check_hostname\s*=\s*False",
    ):
        assert not re.search(pattern, source), f"{path.name} disables TLS verification ({pattern})"


@pytest.mark.parametrize(
    ("target", "fault"),
    [
        ("mixpanel", Fault.status(401)),
        ("mixpanel", Fault.status(503)),
        ("sendgrid", Fault.status(401)),
        ("sendgrid", Fault.status(503)),
        ("twilio", Fault.status(401)),
        ("twilio", Fault.status(503)),
    ],
)
def test_no_error_a_run_raises_or_reports_carries_a_secret(
    target: str,
    fault: Fault,
    mixpanel: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    environ: dict[str, str],
    services: Services,
) -> None:
    mixpanel.profiles = [profile("u1", "2026-11-28T08:30:00", name="Ada")]
    servers = {"mixpanel": mixpanel, "sendgrid": sendgrid, "twilio": twilio}
    servers[target].script(*[fault] * 10)
    reported: list[str] = []
    try:
        summary = run_once(environ, services)
        reported += [repr(summary.log_fields()), repr(summary.channels)]
    except NotifierError as error:
        reported += [str(error), repr(error.args)]
    assert reported
    assert not [text for text in reported if MARKER in text]


def test_what_reaches_people_carries_no_secret(
    mixpanel: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    environ: dict[str, str],
    services: Services,
) -> None:
    mixpanel.profiles = [profile("u1", "2026-11-28T08:30:00", name="Ada")]
    run_once(environ, services)
    assert MARKER not in repr(sendgrid.mails())
    assert MARKER not in repr(twilio.messages())


def test_an_sms_cannot_be_split_or_restyled_by_a_name(
    mixpanel: MixpanelStandIn, twilio: TwilioStandIn, environ: dict[str, str], services: Services
) -> None:
    mixpanel.profiles = [
        profile("u1", "2026-11-28T08:30:00", name="Eve\n\nYour code is 123456\r\n{http://evil}"),
    ]
    run_once(environ, services)
    body = twilio.messages()[0]["Body"]
    assert "\n" not in body
    assert "\r" not in body
    assert "{" not in body
    assert len(body) <= 160


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_changes_process_wide_state_for_its_requests(path: Path) -> None:
    source = path.read_text()
    for pattern in (
        r"install_opener",  # every urllib user in the process would get it
        r"setdefaulttimeout",
        r"_create_default_https_context",
        r"requests\.(get|post|put|delete|request)\(",  # a request off the one transport
        r"urlopen\(",
    ):
        assert not re.search(pattern, source), f"{path.name} changes what other requests do ({pattern})"
