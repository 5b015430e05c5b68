"""Step four of a run: send each channel's message to the recipients left, noting every request in
the journal (the run history) before it goes out. A new channel joins `channels_for`."""

from __future__ import annotations

import logging

from notifier.channels import Channel, Delivery, DeliveryStatus, Journal
from notifier.channels.email import EmailChannel
from notifier.channels.slack import SlackChannel
from notifier.channels.sms import SmsChannel
from notifier.compose import Rendered
from notifier.plan import Plan
from notifier.retry import Retrier
from notifier.settings import Settings

LOG = logging.getLogger(__name__)


def channels_for(plan: Plan, rendered: Rendered, settings: Settings, retrier: Retrier) -> list[Channel]:
    """A channel for each rendered message, with what it needs to send it."""
    channels: list[Channel] = []
    secrets = plan.secrets
    if rendered.email is not None and settings.email:
        channels.append(
            EmailChannel(
                rendered.email, settings.email, secrets.sendgrid_key, settings.endpoints.sendgrid, retrier
            )
        )
    if rendered.sms is not None and settings.sms:
        channels.append(
            SmsChannel(rendered.sms, settings.sms, secrets.twilio_token, settings.endpoints.twilio, retrier)
        )
    if rendered.slack is not None:
        channels.append(SlackChannel(rendered.slack, secrets.slack_url, retrier))
    return channels


def deliver(plan: Plan, channels: list[Channel], journal: Journal) -> tuple[Delivery, ...]:
    """Every channel is attempted (one failing holds back no other); every recipient's outcome."""
    deliveries: list[Delivery] = []
    for channel in channels:
        deliveries.extend(channel.send(plan.owed.get(channel.name, ()), journal))
    for delivery in deliveries:
        if delivery.status is DeliveryStatus.UNCONFIRMED:
            LOG.error(
                "%s: sent but unconfirmed, not retried: %s (docs/operations.md: re-sending)",
                delivery.channel,
                delivery.detail,
                extra={"fields": {"event": "unconfirmed", "channel": delivery.channel}},
            )
    return tuple(deliveries)
