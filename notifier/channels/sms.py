"""The SMS channel: one Twilio message per number, from a number or a Messaging Service.

twilio-python's `Client` signs each request (its `request`, which adds the credentials and Twilio's
headers); `TwilioTransport`, its documented `HttpClient` interface over the run's transport, sends it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from notifier.channels import NO_TIME, Delivery, DeliveryStatus, Journal, lost, not_sent, refusal
from notifier.errors import ChannelError
from notifier.replies import error_detail, mask_phone
from notifier.retry import Retrier
from notifier.settings import SmsSettings
from notifier.transport import Answer, Request, Unanswered

CHANNEL = "sms"
TWILIO_API = "https://api.twilio.com"
TWILIO_RATE_LIMITED = 20429  # Twilio's error code for "Too Many Requests"
_HINT = "(check TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, SMS_FROM and SMS_TO)"
LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Exchanged:
    """One request twilio-python made and the answer it got."""

    request: Request
    answer: Answer


def twilio_transport(send: Callable[[Request], Answer]) -> Any:
    """A twilio `HttpClient` that sends through `send` and keeps the last exchange (`last`)."""
    from twilio.http import HttpClient
    from twilio.http.response import Response

    class TwilioTransport(HttpClient):  # type: ignore[misc]
        """twilio-python's HttpClient interface over the run's transport."""

        def __init__(self) -> None:
            super().__init__(logger=LOG, is_async=False, timeout=None)
            self.last: Exchanged | None = None

        def request(
            self,
            method: str,
            uri: str,
            params: dict[str, object] | None = None,
            data: dict[str, object] | None = None,
            headers: dict[str, str] | None = None,
            auth: tuple[str, str] | None = None,
            timeout: float | None = None,
            allow_redirects: bool = False,
        ) -> Response:
            del timeout, allow_redirects  # the run's budget decides; no redirect is ever followed
            request = twilio_request(method, uri, params, data, headers or {}, auth)
            answer = send(request)
            self.last = Exchanged(request, answer)
            return Response(answer.status, answer.body.decode("utf-8", "replace"), answer.headers)

    return TwilioTransport()


def twilio_request(
    method: str,
    url: str,
    params: dict[str, object] | None,
    data: dict[str, object] | None,
    headers: dict[str, str],
    auth: tuple[str, str] | None,
) -> Request:
    """The transport's Request for what twilio-python asks: a form body, or JSON where it says so."""
    query = {key: str(value) for key, value in (params or {}).items()}
    options: dict[str, Any] = {"headers": headers, "params": query, "basic": auth}
    if headers.get("Content-Type") == "application/json":
        return Request.json(method.upper(), url, data, **options)
    return Request.form(method.upper(), url, data or {}, **options)


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
        from twilio.rest import Client

        http = twilio_transport(self.retrier.send)
        client = Client(self.settings.account_sid, self.auth_token, http_client=http)
        url = f"{self.base_url or TWILIO_API}/2010-04-01/Accounts/{self.settings.account_sid}/Messages.json"
        sender = "MessagingServiceSid" if self.settings.uses_messaging_service else "From"

        def attempt(number: str) -> None:
            # Client.request, not client.messages.create: the same request, without loading Twilio's
            # whole Messages API (42 ms and 7.4 MiB more of every cold start that texts).
            http.last = None
            try:
                client.request(
                    "POST", url, data={"To": number, sender: self.settings.sender, "Body": self.body}
                )
            except Unanswered as error:
                raise lost(f"Twilio (for {mask_phone(number)})", CHANNEL, error) from None
            if http.last is None:
                raise RuntimeError("twilio's client sent nothing")  # a bug, for the run's edge to report
            answer_error = _error(http.last, number)
            if answer_error is not None:
                raise answer_error

        return tuple(self._each(recipients, attempt, journal))

    def _each(
        self, recipients: tuple[str, ...], attempt: Callable[[str], None], journal: Journal
    ) -> list[Delivery]:
        outcome: list[Delivery] = []
        for number in recipients:
            if not self.retrier.has_time():
                outcome += not_sent(CHANNEL, (number,), NO_TIME)
                continue
            if not journal.note_sending(CHANNEL, (number,)):
                outcome += not_sent(CHANNEL, (number,))
                continue
            try:
                self.retrier.call(partial(attempt, number), name="Twilio message")
                delivery = Delivery(CHANNEL, number, DeliveryStatus.DELIVERED)
            except ChannelError as error:
                delivery = Delivery.failed(CHANNEL, number, error)
            journal.note_outcome(delivery)
            outcome.append(delivery)
        return outcome


def _error(exchanged: Exchanged, number: str) -> ChannelError | None:
    """None for a 2xx (delivered, whatever its body); else what Twilio's answer means, number masked."""
    answer = exchanged.answer
    if answer.accepted:
        return None
    try:
        problem = json.loads(answer.body)
    except ValueError:
        problem = None
    code = problem.get("code") if isinstance(problem, dict) else None
    text = error_detail(answer.body, sent=exchanged.request.body)
    masked = mask_phone(number)
    detail = f"error {code} for {masked}: {text}" if isinstance(code, int) else f"for {masked}: {text}"
    rate_limited = True if code == TWILIO_RATE_LIMITED else None
    return refusal("Twilio", CHANNEL, answer, detail, hint=_HINT, transient=rate_limited)
