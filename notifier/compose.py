"""Step three of a run: what each channel will say (pure: the report, rendered per channel)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from notifier.fetch import Fetched
from notifier.plan import Plan
from notifier.render.email import EmailDigest, render_email
from notifier.render.report import Catchup, Report
from notifier.render.slack import render_slack
from notifier.render.sms import render_sms
from notifier.settings import Settings


@dataclass(frozen=True)
class Rendered:
    """Each channel's message; None for a channel with nobody left to tell."""

    email: EmailDigest | None = None
    sms: str | None = None
    slack: dict[str, Any] | None = None


def compose(plan: Plan, fetched: Fetched, settings: Settings) -> Rendered:
    """The digest for each channel that still has someone to tell."""
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
    email_on = bool(left.get("email") or plan.earlier.get("email"))
    return Rendered(
        email=render_email(report, row_limit=settings.email_row_limit) if left.get("email") else None,
        sms=render_sms(report) if left.get("sms") else None,
        slack=render_slack(report, email_on=email_on) if left.get("slack") else None,
    )


def _catchup(plan: Plan) -> Catchup | None:
    """The time the digest covers before its own window (missed ticks caught up), if any."""
    window = plan.request.window
    missed = [span for span in plan.state.coverage if span.start < window.start]
    seconds = sum(min(span.end, window.start) - span.start for span in missed)
    if seconds <= 0:
        return None
    return Catchup(since=missed[0].start_at, seconds=seconds)
