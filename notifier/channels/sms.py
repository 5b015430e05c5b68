"""The SMS channel: one Twilio message per number, from a number or a Messaging Service."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

import requests

from notifier.channels import ChannelResult
from notifier.errors import ChannelRejected, ChannelUnavailable
from notifier.retry import Retrier, is_transient_status, parse_retry_after
from notifier.settings import SmsSettings

CHANNEL = "sms"
TWILIO_RATE_LIMITED = 20429  # Twilio's error code for "Too Many Requests"
LOG = logging.getLogger(__name__)


def send_sms(
    body: str,
    settings: SmsSettings,
    *,
    auth_token: str,
    base_url: str | None,
    retrier: Retrier,
) -> ChannelResult:
    """Send `body` to each number in turn; one number failing does not stop the others."""
    from twilio.rest import Client

    http_client = _http_client(timeout=retrier.timeout())
    client = Client(settings.account_sid, auth_token, http_client=http_client)
    if base_url:
        client.api.base_url = base_url
    sender: dict[str, str] = (
        {"messaging_service_sid": settings.sender}
        if settings.uses_messaging_service
        else {"from_": settings.sender}
    )
    delivered_to: list[str] = []
    errors: list[str] = []
    retryable = False
    for number in settings.to:
        try:
            retrier.call(lambda number=number: _create(client, http_client, number, body, sender, retrier))  # type: ignore[misc]
            delivered_to.append(number)
        except ChannelUnavailable as error:
            errors.append(str(error))
            retryable = True
        except ChannelRejected as error:
            errors.append(str(error))
    return ChannelResult.tally(CHANNEL, settings.to, delivered_to, errors, retryable)


def _http_client(*, timeout: float) -> Any:
    return _header_keeping_client_class()(timeout=timeout)


@cache
def _header_keeping_client_class() -> type:
    # Built on first use: twilio is imported only when a text is actually sent.
    from twilio.http.http_client import TwilioHttpClient

    class HeaderKeepingHttpClient(TwilioHttpClient):  # type: ignore[misc]
        """Twilio's own client, keeping the last response's headers for Retry-After."""

        last_headers: dict[str, str] = {}  # noqa: RUF012 - replaced per response, never mutated

        def request(self, *args: Any, **kwargs: Any) -> Any:
            response = super().request(*args, **kwargs)
            self.last_headers = dict(response.headers or {})
            return response

    return HeaderKeepingHttpClient


def _create(
    client: Any, http_client: Any, number: str, body: str, sender: dict[str, str], retrier: Retrier
) -> None:
    from twilio.base.exceptions import TwilioRestException

    http_client.last_headers = {}
    # One number, used by requests for connecting and for each read; set per message so each gets
    # what is left of the run's budget, not what was left when sending began.
    http_client.timeout = retrier.timeout()
    try:
        client.messages.create(to=number, body=body, **sender)
    except TwilioRestException as error:
        status, code = int(error.status), error.code
        detail = f"Twilio answered {status} (error {code}) for {_masked(number)}"
        if is_transient_status(status) or code == TWILIO_RATE_LIMITED:
            raise ChannelUnavailable(
                detail, channel=CHANNEL, retry_after=parse_retry_after(http_client.last_headers)
            ) from None
        raise ChannelRejected(
            f"{detail}: {' '.join(str(error.msg).split())[:160]} "
            "(check TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, SMS_FROM and SMS_TO)",
            channel=CHANNEL,
            status=status,
        ) from None
    except requests.Timeout:
        raise ChannelUnavailable(
            f"Twilio did not answer in time for {_masked(number)}", channel=CHANNEL
        ) from None
    except requests.RequestException as error:
        raise ChannelUnavailable(
            f"Twilio is unreachable ({type(error).__name__}) for {_masked(number)}", channel=CHANNEL
        ) from None
    except ValueError:
        # Raised only after a 2xx, when the body is not JSON: Twilio accepted the message, so
        # retrying would send it twice.
        LOG.warning("Twilio accepted the message for %s but its answer was not JSON", _masked(number))


def _masked(number: str) -> str:
    """A phone number with all but its last 4 digits hidden, for logs."""
    return "+" + "•" * max(len(number) - 5, 0) + number[-4:]
