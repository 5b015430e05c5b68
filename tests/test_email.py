"""The email channel: one SendGrid call, one personalization per recipient, CSV when cut."""

from __future__ import annotations

import base64

from notifier.channels import Delivery, DeliveryStatus
from notifier.channels.email import EmailChannel, build_mail
from notifier.render.csv import Attachment
from notifier.render.email import EmailDigest
from notifier.settings import EmailSettings, SecretRef, Sender
from sandbox.sendgrid import SendGridStandIn
from tests.conftest import SENDGRID_KEY, NoteBook, retrier

DIGEST = EmailDigest(subject="2 new Mixpanel users", html="<p>hi</p>", text="hi", attachment=None)
SETTINGS = EmailSettings(
    to=("a@example.com", "b@example.com", "c@example.com"),
    sender=Sender("alerts@example.com", "Notifierator"),
    api_key=SecretRef("SENDGRID_API_KEY", SENDGRID_KEY),
)


def send(sendgrid: SendGridStandIn, api_key: str = SENDGRID_KEY) -> tuple[Delivery, ...]:
    channel = EmailChannel(DIGEST, SETTINGS, api_key, sendgrid.url, retrier())
    return channel.send(SETTINGS.to, NoteBook())


def test_one_call_carries_every_recipient_in_its_own_personalization(sendgrid: SendGridStandIn) -> None:
    deliveries = send(sendgrid)
    assert [(d.recipient, d.status) for d in deliveries] == [
        (a, DeliveryStatus.DELIVERED) for a in SETTINGS.to
    ]
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
    send(sendgrid)
    request = sendgrid.requests[0]
    assert request.headers["authorization"] == f"Bearer {SENDGRID_KEY}"
    assert SENDGRID_KEY not in request.body.decode()
    assert SENDGRID_KEY not in request.path


def test_the_csv_travels_as_a_base64_attachment() -> None:
    digest = EmailDigest("s", "h", "t", Attachment("users.csv", b"name\r\nAda\r\n", "text/csv"))
    mail = build_mail(digest, SETTINGS, SETTINGS.to)
    (attachment,) = mail["attachments"]
    assert attachment["filename"] == "users.csv"
    assert attachment["type"] == "text/csv"
    assert attachment["disposition"] == "attachment"
    assert base64.b64decode(attachment["content"]) == b"name\r\nAda\r\n"


def test_a_rejected_key_is_a_permanent_failure_naming_what_to_check(sendgrid: SendGridStandIn) -> None:
    deliveries = send(sendgrid, api_key="SG.wrong")
    assert {d.status for d in deliveries} == {DeliveryStatus.REJECTED}
    detail = deliveries[0].detail or ""
    assert "401" in detail
    assert "SENDGRID_API_KEY" in detail
    assert len(sendgrid.requests) == 1


def test_only_the_recipients_given_are_sent_to(sendgrid: SendGridStandIn) -> None:
    EmailChannel(DIGEST, SETTINGS, SENDGRID_KEY, sendgrid.url, retrier()).send(("b@example.com",), NoteBook())
    (mail,) = sendgrid.mails()
    assert [p["to"] for p in mail["personalizations"]] == [[{"email": "b@example.com"}]]
