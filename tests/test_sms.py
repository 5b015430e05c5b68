"""The SMS channel: one Twilio message per number, from a number or a Messaging Service."""

from __future__ import annotations

import pytest

from notifier.channels import Delivery, DeliveryStatus
from notifier.channels.sms import SmsChannel
from notifier.errors import TransientError
from notifier.outcome import Outcome
from notifier.settings import SecretRef, SmsSettings
from sandbox.server import Fault, Reply
from sandbox.twilio import ACCOUNT_SID, TwilioStandIn
from tests.conftest import TWILIO_TOKEN, NoteBook, World, retrier

NUMBERS = ("+14155550100", "+447700900123", "+4915112345678")


def settings(sender: str = "+14155550199", to: tuple[str, ...] = NUMBERS) -> SmsSettings:
    return SmsSettings(
        to=to, sender=sender, account_sid=ACCOUNT_SID, auth_token=SecretRef("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
    )


def send(
    twilio: TwilioStandIn, body: str = "hi", sms: SmsSettings | None = None, token: str = TWILIO_TOKEN
) -> tuple[Delivery, ...]:
    sms = sms or settings()
    return SmsChannel(body, sms, token, twilio.url, retrier()).send(sms.to, NoteBook())


def test_one_message_per_number_with_the_same_body(twilio: TwilioStandIn) -> None:
    deliveries = send(twilio, "Mixpanel: 1 new user")
    assert [d.status for d in deliveries] == [DeliveryStatus.DELIVERED] * 3
    messages = twilio.messages()
    assert [m["To"] for m in messages] == list(NUMBERS)
    assert {m["Body"] for m in messages} == {"Mixpanel: 1 new user"}
    assert all(m["From"] == "+14155550199" for m in messages)
    assert all("MessagingServiceSid" not in m for m in messages)
    assert twilio.requests[0].path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert twilio.requests[0].basic_auth() == (ACCOUNT_SID, TWILIO_TOKEN)


def test_a_messaging_service_sender_uses_messaging_service_sid(twilio: TwilioStandIn) -> None:
    service = "MG" + "ab" * 16
    send(twilio, sms=settings(service))
    (message,) = twilio.messages()[:1]
    assert message["MessagingServiceSid"] == service
    assert "From" not in message


def test_a_wrong_token_fails_every_number_permanently(twilio: TwilioStandIn) -> None:
    deliveries = send(twilio, token="wrong")
    assert {d.status for d in deliveries} == {DeliveryStatus.REJECTED}
    assert all("TWILIO_AUTH_TOKEN" in (d.detail or "") for d in deliveries)
    assert all("wrong" not in (d.detail or "") for d in deliveries)
    assert len(twilio.requests) == 3


def test_the_token_travels_only_in_the_authorization_header(twilio: TwilioStandIn) -> None:
    send(twilio)
    for request in twilio.requests:
        assert TWILIO_TOKEN not in request.body.decode()
        assert TWILIO_TOKEN not in request.path


def test_failure_messages_mask_the_phone_number(twilio: TwilioStandIn) -> None:
    deliveries = send(twilio, token="wrong")
    assert "0100" in (deliveries[0].detail or "")
    assert "4155550100" not in (deliveries[0].detail or "")


def test_an_rfc9457_problem_for_one_number_leaves_the_others_delivered(twilio: TwilioStandIn) -> None:
    # twilio raises TwilioServiceException for a problem+json body, not TwilioRestException.
    problem = {
        "type": "https://www.twilio.com/docs/errors/21211",
        "title": "Invalid To",
        "status": 400,
        "code": 21211,
    }
    twilio.script(Fault(accept=True), Fault(reply=Reply.json(400, problem)))
    deliveries = send(twilio)
    assert [d.status for d in deliveries] == [
        DeliveryStatus.DELIVERED,
        DeliveryStatus.REJECTED,
        DeliveryStatus.DELIVERED,
    ]
    assert "Invalid To" in (deliveries[1].detail or "")


def test_twilio_error_20429_with_another_status_is_retried(twilio: TwilioStandIn) -> None:
    twilio.script(
        Fault(reply=Reply.json(400, {"code": 20429, "message": "Too Many Requests", "status": 400}))
    )
    deliveries = send(twilio)
    assert [d.status for d in deliveries] == [DeliveryStatus.DELIVERED] * 3
    assert len(twilio.requests) == 4


def test_a_trickling_twilio_cannot_hold_many_numbers_past_the_run_budget(world: World) -> None:
    # Twilio answering a byte at a time: the first number uses the whole budget, and no other request
    # starts once it is spent; they are left for the redelivery, the first stays unconfirmed.
    numbers = [f"+1415555{n:04d}" for n in range(12)]
    world.environ.update(SMS_TO=",".join(numbers), EMAIL_TO="", RUN_BUDGET_SECONDS="2")
    world.twilio.script(*[Fault.trickle(0.2)] * 12)
    with pytest.raises(TransientError):
        world.deliver()
    assert len(world.twilio.requests) == 1
    world.twilio.faults.clear()
    assert world.deliver().outcome is Outcome.SENT  # the eleven left; the first is never sent again
    assert sorted(world.texts()) == sorted(numbers)
