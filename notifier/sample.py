"""The test message `python -m notifier check --send-test` sends: a digest of two sample users, marked.

Rendered by the real renderers and sent by the real channels, like Mixpanel Alerts' test button, so
what arrives is what a digest looks like, with MARK on top; nothing is recorded in the run history.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from notifier.channels import Channel, Delivery
from notifier.channels.email import EmailChannel
from notifier.channels.slack import SlackChannel
from notifier.channels.sms import SmsChannel
from notifier.journal import NoHistory
from notifier.mixpanel import NewUser
from notifier.plan import SLACK_RECIPIENT
from notifier.render.email import EmailDigest, render_email
from notifier.render.report import Report
from notifier.render.slack import render_slack
from notifier.render.sms import render_sms
from notifier.retry import Retrier
from notifier.settings import SecretRef, Settings, check_slack_webhook_url
from notifier.span import Span

MARK = "Test from Notifierator: this is what a digest looks like"
SMS_MARK = "TEST"  # the SMS keeps to one segment: the whole sentence would push the names out
SecretValue = Callable[[SecretRef], str]
_BODY = re.compile(r"<body[^>]*>")
# First in the body, so an inbox's preview shows it too.
_BANNER = f'<p style="margin:0;padding:12px;background:#fff4ce;color:#222;text-align:center">{MARK}</p>'


def sample_report(settings: Settings, now: datetime) -> Report:
    """Two made-up sign-ups in the last window, with the project's label, links and extra columns."""
    end = now.astimezone(UTC).replace(second=0, microsecond=0)
    window = Span.ending(end, settings.default_lookback_minutes)
    third = (window.end_at - window.start_at) / 3
    extra = tuple("example" for _ in settings.digest.extra_properties)
    users = [
        NewUser("sample-ada", "Ada Lovelace", "ada@example.com", window.start_at + third, extra),
        NewUser("sample-grace", "Grace Hopper", "grace@example.com", window.start_at + 2 * third, extra),
    ]
    return Report(
        users=users,
        window=window,
        zone=settings.timezone,
        label=settings.digest.project_label,
        window_users=len(users),
        profile_url_template=settings.digest.profile_url_template,
        extra_properties=settings.digest.extra_properties,
    )


def channel_for(
    name: str, settings: Settings, report: Report, secret: SecretValue, retrier: Retrier
) -> tuple[Channel, tuple[str, ...]]:
    """The channel `name` ("email", "sms", "slack") with the test message, and its recipients.

    Raises what reading the channel's secret raises (ConfigError, SourceUnavailable).
    """
    endpoints = settings.endpoints
    if name == "email" and settings.email:
        digest = _marked_email(render_email(report, row_limit=settings.digest.email_row_limit))
        key = secret(settings.email.api_key)
        return EmailChannel(digest, settings.email, key, endpoints.sendgrid, retrier), settings.email.to
    if name == "sms" and settings.sms:
        body = render_sms(dataclasses.replace(report, label=f"{SMS_MARK} {settings.digest.project_label}"))
        token = secret(settings.sms.auth_token)
        return SmsChannel(body, settings.sms, token, endpoints.twilio, retrier), settings.sms.to
    if name == "slack" and settings.slack:
        url = check_slack_webhook_url(secret(settings.slack.webhook_url))
        payload = _marked_slack(render_slack(report, email_on=settings.email is not None))
        return SlackChannel(payload, url, retrier), (SLACK_RECIPIENT,)
    raise ValueError(f"the {name} channel is not configured")


def _marked_email(digest: EmailDigest) -> EmailDigest:
    return dataclasses.replace(
        digest,
        subject=f"{MARK} · {digest.subject}",
        text=f"{MARK}.\n\n{digest.text}",
        html=_BODY.sub(lambda body: body[0] + _BANNER, digest.html, count=1),
    )


def _marked_slack(payload: dict[str, Any]) -> dict[str, Any]:
    header, *rest = payload["blocks"]
    mark = {"type": "context", "elements": [{"type": "plain_text", "text": MARK, "emoji": False}]}
    return {**payload, "text": f"{MARK}. {payload['text']}", "blocks": [header, mark, *rest]}


def send(channel: Channel, recipients: tuple[str, ...]) -> tuple[Delivery, ...]:
    """Send the test message; each recipient's outcome, noted nowhere (it is not a digest)."""
    return channel.send(recipients, NoHistory())
