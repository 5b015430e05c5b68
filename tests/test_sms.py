"""The SMS channel: one Twilio message per number, from a number or a Messaging Service."""

from __future__ import annotations

from notifier.channels.sms import send_sms
from notifier.retry import Deadline, Retrier, RetryPolicy
from notifier.settings import SecretRef, SmsSettings
from sandbox.twilio import ACCOUNT_SID, TwilioStandIn
from tests.conftest import TWILIO_TOKEN

NUMBERS = ("+14155550100", "+447700900123", "+4915112345678")


def settings(sender: str = "+14155550199", to: tuple[str, ...] = NUMBERS) -> SmsSettings:
    return SmsSettings(
        to=to, sender=sender, account_sid=ACCOUNT_SID, auth_token=SecretRef("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
    )


def retrier() -> Retrier:
    return Retrier(RetryPolicy(attempts=2, base_delay=0.01), Deadline(30), sleep=lambda _s: None)


def test_one_message_per_number_with_the_same_body(twilio: TwilioStandIn) -> None:
    result = send_sms(
        "Mixpanel: 1 new user", settings(), auth_token=TWILIO_TOKEN, base_url=twilio.url, retrier=retrier()
    )
    assert (result.outcome, result.delivered) == ("sent", 3)
    messages = twilio.messages()
    assert [m["To"] for m in messages] == list(NUMBERS)
    assert {m["Body"] for m in messages} == {"Mixpanel: 1 new user"}
    assert all(m["From"] == "+14155550199" for m in messages)
    assert all("MessagingServiceSid" not in m for m in messages)
    assert twilio.requests[0].path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert twilio.requests[0].basic_auth() == (ACCOUNT_SID, TWILIO_TOKEN)


def test_a_messaging_service_sender_uses_messaging_service_sid(twilio: TwilioStandIn) -> None:
    service = "MG" + "ab" * 16
    send_sms("hi", settings(service), auth_token=TWILIO_TOKEN, base_url=twilio.url, retrier=retrier())
    (message,) = twilio.messages()[:1]
    assert message["MessagingServiceSid"] == service
    assert "From" not in message


def test_a_wrong_token_fails_every_number_permanently(twilio: TwilioStandIn) -> None:
    result = send_sms("hi", settings(), auth_token="wrong", base_url=twilio.url, retrier=retrier())
    assert (result.outcome, result.delivered, result.retryable) == ("failed", 0, False)
    assert result.error is not None
    assert "TWILIO_AUTH_TOKEN" in result.error
    assert "wrong" not in result.error
    assert len(twilio.requests) == 3


def test_the_token_travels_only_in_the_authorization_header(twilio: TwilioStandIn) -> None:
    send_sms("hi", settings(), auth_token=TWILIO_TOKEN, base_url=twilio.url, retrier=retrier())
    for request in twilio.requests:
        assert TWILIO_TOKEN not in request.body.decode()
        assert TWILIO_TOKEN not in request.path


def test_failure_messages_mask_the_phone_number(twilio: TwilioStandIn) -> None:
    result = send_sms("hi", settings(), auth_token="wrong", base_url=twilio.url, retrier=retrier())
    assert result.error is not None
    assert "0100" in result.error
    assert "4155550100" not in result.error
