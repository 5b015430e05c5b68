"""Delivery channels: email (SendGrid), SMS (Twilio), Slack (incoming webhook).

A channel is built with its rendered message and sends it to the recipients it is given, noting in
a Journal each request before it goes out and each recipient's outcome after (so that a crash at
any moment cannot make a redelivery tell them twice), and returns every recipient's Delivery. It never raises
for what a provider answered; what its client library raises is translated in one place per
channel (`_translate` in each module). A new channel implements `Channel` and joins `channels_for`
in `notifier.deliver`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from notifier.errors import ChannelError, ChannelRejected, ChannelUnavailable, OutcomeUnknown
from notifier.retry import is_transient_status, parse_retry_after


class DeliveryStatus(StrEnum):
    """What became of one recipient."""

    DELIVERED = "delivered"  # the provider accepted it
    UNCONFIRMED = "unconfirmed"  # the request went out and the answer was lost: never retried
    REJECTED = "rejected"  # the provider refused (4xx): not retried
    UNAVAILABLE = "unavailable"  # not delivered, transient: left for Pub/Sub's redelivery

    @property
    def heard(self) -> bool:
        """True when the recipient has, or may have, the digest (a refusal or a failure is not)."""
        return self in (DeliveryStatus.DELIVERED, DeliveryStatus.UNCONFIRMED)


@dataclass(frozen=True)
class Delivery:
    """One recipient's outcome; `detail` is the provider's reason, masked, never a secret."""

    channel: str
    recipient: str
    status: DeliveryStatus
    detail: str | None = None

    @classmethod
    def failed(cls, channel: str, recipient: str, error: ChannelError) -> Delivery:
        """The Delivery a channel error leads to."""
        status = {
            ChannelRejected: DeliveryStatus.REJECTED,
            ChannelUnavailable: DeliveryStatus.UNAVAILABLE,
            OutcomeUnknown: DeliveryStatus.UNCONFIRMED,
        }.get(type(error), DeliveryStatus.UNAVAILABLE)
        return cls(channel, recipient, status, str(error))


class Journal(Protocol):
    """Where a channel notes what it does, so that nobody is ever told twice.

    `sending` comes before each request (False: the note could not be kept, so do not send);
    `settled` after each recipient's answer.
    """

    def sending(self, channel: str, recipients: tuple[str, ...]) -> bool:
        """Note that a request to `recipients` is about to go out; False when it must not."""
        ...

    def settled(self, delivery: Delivery) -> None:
        """Note a recipient's outcome."""
        ...


def not_sent(channel: str, recipients: tuple[str, ...]) -> tuple[Delivery, ...]:
    """The deliveries of a request the journal would not let go out: left for the redelivery."""
    reason = "not sent: the run history could not note it first"
    return tuple(Delivery(channel, r, DeliveryStatus.UNAVAILABLE, reason) for r in recipients)


def transport_failure(
    provider: str, channel: str, error: BaseException, *, sent: bool
) -> ChannelError | None:
    """The error a transport failure means, or None when `error` is not a transport failure (a bug).

    Once the request may have reached the provider, the outcome is unknown and never retried.
    """
    kind = type(error).__name__
    if sent:
        return OutcomeUnknown(
            f"{provider}: the answer was lost after sending ({kind}); it may have been delivered",
            channel=channel,
        )
    if isinstance(error, OSError) or _is_requests_error(error):
        return ChannelUnavailable(f"{provider} is unreachable ({kind})", channel=channel)
    return None


def _is_requests_error(error: BaseException) -> bool:
    import requests

    return isinstance(error, requests.RequestException)


def refusal(
    provider: str,
    channel: str,
    status: int,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    hint: str = "",
    transient: bool | None = None,
) -> ChannelError:
    """The error a provider's non-2xx answer means: 429 and 5xx are retried, anything else refused.

    `transient` overrides the status (Twilio's 20429 is a rate limit whatever the status says).
    """
    if transient if transient is not None else is_transient_status(status):
        return ChannelUnavailable(
            f"{provider} answered {status}: {detail}",
            channel=channel,
            status=status,
            retry_after=parse_retry_after(headers),
        )
    if 300 <= status < 400:
        detail = f"a redirect, not followed so the credential never leaves {provider}'s host"
    return ChannelRejected(
        f"{provider} refused the {channel} with {status}: {detail} {hint}".rstrip(),
        channel=channel,
        status=status,
    )


class Channel(Protocol):
    """A rendered message ready to go out on one channel."""

    @property
    def name(self) -> str:
        """The channel's name: email, sms, slack."""
        ...

    def send(self, recipients: tuple[str, ...], journal: Journal) -> tuple[Delivery, ...]:
        """Send to `recipients`, noting each request and each recipient's outcome in `journal`."""
        ...
