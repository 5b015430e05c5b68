"""Delivery channels: email (SendGrid), SMS (Twilio), Slack (incoming webhook).

A channel is built with its rendered message and sends it to the recipients it is given, noting in
a Journal each request before it goes out and each recipient's outcome after (so that a crash at
any moment cannot make a redelivery tell them twice), and returns every recipient's Delivery. It never raises
for what a provider answered: every request goes through the run's transport (`send`), and what
comes back means the same on every channel: a 2xx is delivered, 429 and 5xx are retried, any other
answer is a refusal (`refusal`), and a request that may have left without an answer is unconfirmed
(`lost`). A new channel implements `Channel` and joins `channels_for` in `notifier.deliver`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from notifier.errors import ChannelError, ChannelRejected, ChannelUnavailable, OutcomeUnknown
from notifier.replies import is_transient_status
from notifier.retry import Retrier, parse_retry_after
from notifier.transport import Answer, Request, Unanswered


class DeliveryStatus(StrEnum):
    """What became of one recipient."""

    DELIVERED = "delivered"  # the provider accepted it
    UNCONFIRMED = "unconfirmed"  # the request went out and the answer was lost: never retried
    REJECTED = "rejected"  # the provider refused (4xx): not retried
    UNAVAILABLE = "unavailable"  # not delivered, transient: left for Pub/Sub's redelivery

    @property
    def told(self) -> bool:
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

    `note_sending` comes before each request (False: the note could not be kept, so do not send);
    `note_outcome` after each recipient's answer.
    """

    def note_sending(self, channel: str, recipients: tuple[str, ...]) -> bool:
        """Note that a request to `recipients` is about to go out; False when it must not."""
        ...

    def note_outcome(self, delivery: Delivery) -> None:
        """Note a recipient's outcome."""
        ...


UNNOTED = "not sent: the run history could not note it first"
NO_TIME = "not sent: the run's time had run out"


def not_sent(channel: str, recipients: tuple[str, ...], reason: str = UNNOTED) -> tuple[Delivery, ...]:
    """The deliveries of a request that did not go out (the journal would not note it, or no time
    was left): left for the redelivery."""
    return tuple(Delivery(channel, r, DeliveryStatus.UNAVAILABLE, reason) for r in recipients)


def send(retrier: Retrier, request: Request, provider: str, channel: str) -> Answer:
    """One attempt of a send through the transport: its answer, or the ChannelError a lost one means."""
    try:
        return retrier.send(request)
    except Unanswered as error:
        raise lost(provider, channel, error) from None


def lost(provider: str, channel: str, error: Unanswered) -> ChannelError:
    """What a request without an answer means: retried when it never left, else unknown, never retried."""
    if error.sent:
        return OutcomeUnknown(
            f"{provider} {error.reason}; the request had gone out, so it may have been delivered",
            channel=channel,
        )
    return ChannelUnavailable(f"{provider} {error.reason}; nothing was sent", channel=channel)


def refusal(
    provider: str,
    channel: str,
    answer: Answer,
    detail: str,
    *,
    hint: str = "",
    transient: bool | None = None,
) -> ChannelError:
    """The error a provider's non-2xx answer means: 429 and 5xx are retried, anything else refused.

    `transient` overrides the status (Twilio's 20429 is a rate limit whatever the status says).
    """
    status = answer.status
    if transient if transient is not None else is_transient_status(status):
        return ChannelUnavailable(
            f"{provider} answered {status}: {detail}",
            channel=channel,
            status=status,
            retry_after=parse_retry_after(answer.headers),
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
