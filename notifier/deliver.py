"""Steps three and four of a run: render the report for each channel, and send it.

Every channel is attempted, each request noted in the journal (the run history) before it goes out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from notifier.channels import Channel, Delivery, DeliveryStatus, Journal
from notifier.channels.email import EmailChannel
from notifier.channels.slack import SlackChannel
from notifier.channels.sms import SmsChannel
from notifier.fetch import Fetched
from notifier.outcome import Outcome
from notifier.plan import Plan, span_of
from notifier.render.email import EmailDigest, render_email
from notifier.render.report import Catchup, Report
from notifier.render.slack import render_slack
from notifier.render.sms import render_sms
from notifier.retry import Retrier
from notifier.settings import Settings

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rendered:
    """Each channel's rendered message."""

    email: EmailDigest | None = None
    sms: str | None = None
    slack: dict[str, Any] | None = None


@dataclass(frozen=True)
class Delivered:
    """Every recipient's outcome in this delivery."""

    deliveries: tuple[Delivery, ...]


def render(plan: Plan, fetched: Fetched, settings: Settings) -> Rendered:
    report = Report(
        users=fetched.users,
        window=plan.trigger.window,
        zone=settings.timezone,
        label=settings.digest.project_label,
        catchup=_catchup(plan),
        previous_users=plan.state.previous_users,
        window_users=fetched.in_window,
        profile_url_template=settings.digest.profile_url_template,
        extra_properties=settings.digest.extra_properties,
    )
    left = plan.left
    return Rendered(
        email=render_email(report, row_limit=settings.email_row_limit) if left.get("email") else None,
        sms=render_sms(report) if left.get("sms") else None,
        slack=render_slack(report, email_on=bool(left.get("email") or plan.earlier.get("email")))
        if left.get("slack")
        else None,
    )


def _catchup(plan: Plan) -> Catchup | None:
    window = span_of(plan.trigger.window)
    missed = [span for span in plan.state.coverage if span.start < window.start]
    seconds = sum(min(span.end, window.start) - span.start for span in missed)
    if seconds <= 0:
        return None
    since = datetime.fromtimestamp(missed[0].start, UTC)
    return Catchup(since=since, seconds=seconds)


def channels_for(plan: Plan, rendered: Rendered, settings: Settings, retrier: Retrier) -> list[Channel]:
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


def deliver(plan: Plan, channels: list[Channel], journal: Journal) -> Delivered:
    """Every channel is attempted, each request noted in the journal before it goes out."""
    deliveries: list[Delivery] = []
    for channel in channels:
        deliveries.extend(channel.send(plan.left.get(channel.name, ()), journal))
    for delivery in deliveries:
        if delivery.status is DeliveryStatus.UNCONFIRMED:
            LOG.error(
                "%s: sent but unconfirmed, not retried: %s (README, Operations: re-sending)",
                delivery.channel,
                delivery.detail,
                extra={"fields": {"event": "unconfirmed", "channel": delivery.channel}},
            )
    return Delivered(tuple(deliveries))


def outcome_of(plan: Plan, delivered: Delivered) -> Outcome:
    statuses = [d.status for d in delivered.deliveries]
    if any(not status.settled for status in statuses):
        return Outcome.WILL_RETRY
    if all(s is DeliveryStatus.DELIVERED for s in statuses):
        return Outcome.SENT
    # An unconfirmed send may well have been read: "failed" would say nobody was told.
    return Outcome.FAILED if nobody_told(plan, delivered) else Outcome.PARTIAL


def nobody_told(plan: Plan, delivered: Delivered) -> bool:
    """True when no recipient of the message was told, in this delivery or an earlier one."""
    return not plan.state.heard and not any(d.status.heard for d in delivered.deliveries)
