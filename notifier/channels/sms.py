"""The SMS channel: one Twilio message per number, from a number or a Messaging Service."""

from __future__ import annotations

import logging
from typing import Any

import requests

from notifier.channels import ChannelResult
from notifier.errors import ChannelRejected, ChannelUnavailable
from notifier.retry import Retrier, is_transient_status
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
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    _connect, read = retrier.timeouts()
    client = Client(settings.account_sid, auth_token, http_client=TwilioHttpClient(timeout=read))
    if base_url:
        client.api.base_url = base_url
    sender: dict[str, str] = (
        {"messaging_service_sid": settings.sender}
        if settings.uses_messaging_service
        else {"from_": settings.sender}
    )
    delivered, errors, retryable = 0, [], False
    for number in settings.to:
        try:
            retrier.call(lambda number=number: _create(client, number, body, sender))  # type: ignore[misc]
            delivered += 1
        except ChannelUnavailable as error:
            errors.append(str(error))
            retryable = True
        except ChannelRejected as error:
            errors.append(str(error))
    return ChannelResult.tally(CHANNEL, len(settings.to), delivered, errors, retryable)


def _create(client: Any, number: str, body: str, sender: dict[str, str]) -> None:
    from twilio.base.exceptions import TwilioRestException

    try:
        client.messages.create(to=number, body=body, **sender)
    except TwilioRestException as error:
        status, code = int(error.status), error.code
        detail = f"Twilio answered {status} (error {code}) for {_masked(number)}"
        if is_transient_status(status) or code == TWILIO_RATE_LIMITED:
            raise ChannelUnavailable(detail, channel=CHANNEL) from None
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
