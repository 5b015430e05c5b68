"""Delivery channels: email (SendGrid), SMS (Twilio), Slack (incoming webhook).

A channel is built with its rendered message and sends it to the recipients it is given, calling
`record` for each recipient the moment the provider's answer settles it (so a crash a moment later
cannot make a redelivery tell them twice), and returns every recipient's Delivery. It never raises
for what a provider answered; what its client library raises is translated in one place per
channel (`_translate` in each module). A new channel implements `Channel` and joins `notifier.run`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
    def settled(self) -> bool:
        """True when no later delivery of the message should try this recipient again."""
        return self is not DeliveryStatus.UNAVAILABLE


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


Record = Callable[[Delivery], None]


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

    def send(self, recipients: tuple[str, ...], record: Record) -> tuple[Delivery, ...]:
        """Send to `recipients`, calling `record` per recipient as soon as its outcome is settled."""
        ...
