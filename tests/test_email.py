"""The email channel: one SendGrid call, one personalization per recipient, CSV when cut."""

from __future__ import annotations

import base64

from notifier.channels.email import build_mail, send_email
from notifier.digest import Attachment, EmailDigest
from notifier.retry import Deadline, Retrier, RetryPolicy
from notifier.settings import EmailSettings, SecretRef, Sender
from sandbox.sendgrid import SendGridStandIn
from tests.conftest import SENDGRID_KEY

DIGEST = EmailDigest(subject="2 new Mixpanel users", html="<p>hi</p>", text="hi", attachment=None)
SETTINGS = EmailSettings(
    to=("a@example.com", "b@example.com", "c@example.com"),
    sender=Sender("alerts@example.com", "Notifierator"),
    api_key=SecretRef("SENDGRID_API_KEY", SENDGRID_KEY),
)


def retrier() -> Retrier:
    return Retrier(RetryPolicy(attempts=2, base_delay=0.01), Deadline(30), sleep=lambda _s: None)


def test_one_call_carries_every_recipient_in_its_own_personalization(sendgrid: SendGridStandIn) -> None:
    result = send_email(
        build_mail(DIGEST, SETTINGS), SETTINGS, api_key=SENDGRID_KEY, base_url=sendgrid.url, retrier=retrier()
    )
    assert (result.outcome, result.delivered) == ("sent", 3)
    assert len(sendgrid.requests) == 1
    (mail,) = sendgrid.mails()
    assert [p["to"] for p in mail["personalizations"]] == [
        [{"email": "a@example.com"}],
        [{"email": "b@example.com"}],
        [{"email": "c@example.com"}],
    ]
    assert mail["from"] == {"email": "alerts@example.com", "name": "Notifierator"}
    assert mail["subject"] == "2 new Mixpanel users"
    assert mail["content"] == [
        {"type": "text/plain", "value": "hi"},
        {"type": "text/html", "value": "<p>hi</p>"},
    ]


def test_the_key_travels_only_as_a_bearer_header(sendgrid: SendGridStandIn) -> None:
    send_email(
        build_mail(DIGEST, SETTINGS), SETTINGS, api_key=SENDGRID_KEY, base_url=sendgrid.url, retrier=retrier()
    )
    request = sendgrid.requests[0]
    assert request.headers["authorization"] == f"Bearer {SENDGRID_KEY}"
    assert SENDGRID_KEY not in request.body.decode()
    assert SENDGRID_KEY not in request.path


def test_the_csv_travels_as_a_base64_attachment() -> None:
    digest = EmailDigest("s", "h", "t", Attachment("users.csv", b"name\r\nAda\r\n", "text/csv"))
    mail = build_mail(digest, SETTINGS)
    (attachment,) = mail["attachments"]
    assert attachment["filename"] == "users.csv"
    assert attachment["type"] == "text/csv"
    assert attachment["disposition"] == "attachment"
    assert base64.b64decode(attachment["content"]) == b"name\r\nAda\r\n"


def test_a_rejected_key_is_a_permanent_failure_naming_what_to_check(sendgrid: SendGridStandIn) -> None:
    result = send_email(
        build_mail(DIGEST, SETTINGS), SETTINGS, api_key="SG.wrong", base_url=sendgrid.url, retrier=retrier()
    )
    assert (result.outcome, result.delivered, result.retryable) == ("failed", 0, False)
    assert result.error is not None
    assert "401" in result.error
    assert "SENDGRID_API_KEY" in result.error
    assert len(sendgrid.requests) == 1
