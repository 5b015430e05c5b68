"""Step three of a run: what each channel will say (pure: the report, rendered per channel)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from notifier.breakdown import break_down
from notifier.companies import roll_up
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


def profile_properties(settings: Settings) -> tuple[str, ...]:
    """The profile properties fetched beyond the built-in ones: the extra columns, then the
    breakdown's property when it is not one of them (its value is counted, not shown per user)."""
    extra, breakdown = settings.digest.extra_properties, settings.digest.breakdown_property
    return extra if breakdown is None or breakdown in extra else (*extra, breakdown)


def compose(plan: Plan, fetched: Fetched, settings: Settings) -> Rendered:
    """The digest for each channel that still has someone to tell."""
    digest = settings.digest
    users = fetched.users
    breakdown = None
    if digest.breakdown_property is not None:
        at = profile_properties(settings).index(digest.breakdown_property)
        breakdown = break_down(digest.breakdown_property, users.extra_values(at))
    report = Report(
        users=users,
        window=plan.trigger.window,
        zone=settings.timezone,
        label=settings.digest.project_label,
        catchup=_catchup(plan),
        previous_users=plan.state.previous_users,
        window_users=fetched.in_window,
        profile_url_template=digest.profile_url_template,
        extra_properties=digest.extra_properties,
        breakdown=breakdown,
        companies=roll_up(users.emails()) if digest.company_rollup else None,
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
