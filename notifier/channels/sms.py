"""The SMS channel: one Twilio message per number, from a number or a Messaging Service."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from notifier.answers import error_detail, mask_phone, requests_request_was_sent
from notifier.channels import Delivery, DeliveryStatus, Journal, not_sent, refusal, transport_failure
from notifier.errors import ChannelError, ChannelUnavailable, OutcomeUnknown
from notifier.retry import DeadlinePassed, Retrier
from notifier.settings import SmsSettings

CHANNEL = "sms"
TWILIO_RATE_LIMITED = 20429  # Twilio's error code for "Too Many Requests"
_HINT = "(check TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, SMS_FROM and SMS_TO)"


@dataclass
class _Seen:
    """What the last response said before its body was read: its status and headers."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SmsChannel:
    """The rendered SMS body, ready for Twilio."""

    body: str
    settings: SmsSettings
    auth_token: str
    base_url: str | None
    retrier: Retrier
    name: str = CHANNEL

    def send(self, recipients: tuple[str, ...], journal: Journal) -> tuple[Delivery, ...]:
        """Each number in turn, noted before and after; one failing stops no other."""
        if not recipients:
            return ()
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        seen = _Seen()

        def note(response: Any, *_args: Any, **_kwargs: Any) -> Any:
            # A requests response hook runs before the body is read: the status survives a broken body.
            seen.status, seen.headers = response.status_code, dict(response.headers or {})
            return response

        http_client = TwilioHttpClient(timeout=self.retrier.timeout(), request_hooks={"response": [note]})
        client = Client(self.settings.account_sid, self.auth_token, http_client=http_client)
        if self.base_url:
            client.api.base_url = self.base_url
        sender: dict[str, str] = (
            {"messaging_service_sid": self.settings.sender}
            if self.settings.uses_messaging_service
            else {"from_": self.settings.sender}
        )
        outcome: list[Delivery] = []
        for number in recipients:

            def attempt(number: str = number) -> None:
                seen.status, seen.headers = None, {}
                # One number, used by requests for connecting and for each read; set per message so
                # each gets what is left of the run's budget.
                http_client.timeout = self.retrier.timeout()
                with _translate(seen, number):
                    self.retrier.bounded(lambda: client.messages.create(to=number, body=self.body, **sender))

            if not journal.sending(CHANNEL, (number,)):
                outcome.extend(not_sent(CHANNEL, (number,)))
                continue
            try:
                self.retrier.call(attempt, name="Twilio message")
                delivery = Delivery(CHANNEL, number, DeliveryStatus.DELIVERED)
            except ChannelError as error:
                delivery = Delivery.failed(CHANNEL, number, error)
            journal.settled(delivery)
            outcome.append(delivery)
        return tuple(outcome)


@contextmanager
def _translate(seen: _Seen, number: str) -> Iterator[None]:
    """The one place that turns what the twilio library and requests can raise into channel errors.

    The status the response hook saw decides: a 2xx is delivered whatever its body, 429/5xx (or
    Twilio's 20429) is retried, any other answer is a refusal; with no answer at all, a request
    that may have gone out is OutcomeUnknown and one that never left is retried.
    """
    from twilio.base.exceptions import TwilioException

    masked = mask_phone(number)
    try:
        yield
    except DeadlinePassed:
        raise OutcomeUnknown(
            f"Twilio had not answered for {masked} when the run's time ran out; it may have been sent",
            channel=CHANNEL,
        ) from None
    except Exception as error:
        status = seen.status
        if status is not None and 200 <= status < 300:
            return  # accepted; only reading the answer failed
        if status is not None:
            raise _refusal(status, error, seen, masked) from None
        if isinstance(error, TwilioException):
            raise  # an answer without a status: cannot happen through the hook; a bug if it does
        import requests

        if not isinstance(error, requests.RequestException):
            raise  # not the transport: a bug, for the run's edge to report
        translated = transport_failure(
            f"Twilio (for {masked})", CHANNEL, error, sent=requests_request_was_sent(error)
        )
        raise translated or ChannelUnavailable(f"Twilio failed for {masked}", channel=CHANNEL) from None


def _refusal(status: int, error: Exception, seen: _Seen, masked: str) -> ChannelError:
    code = getattr(error, "code", None)
    message = getattr(error, "msg", None) or getattr(error, "detail", None) or getattr(error, "title", None)
    text = error_detail(message if isinstance(message, str) else None)
    detail = f"error {code} for {masked}: {text}" if isinstance(code, int) else f"for {masked}: {text}"
    rate_limited = True if code == TWILIO_RATE_LIMITED else None
    return refusal(
        "Twilio", CHANNEL, status, detail, headers=seen.headers, hint=_HINT, transient=rate_limited
    )
