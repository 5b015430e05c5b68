"""Step three of a run: what each channel will say (pure: the report, rendered per channel)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from notifier.breakdown import Breakdown, break_down
from notifier.companies import roll_up
from notifier.fetch import Fetched
from notifier.plan import TELLS_HELD, Plan
from notifier.quiet_hours import HeldTexts
from notifier.render.email import EmailDigest, render_email
from notifier.render.report import Catchup, Report
from notifier.render.slack import render_slack
from notifier.render.sms import render_sms
from notifier.settings import Settings
from notifier.span import Span
from notifier.users import Users


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


def compose(plan: Plan, fetched: Fetched, settings: Settings) -> Rendered | None:
    """The digest for each channel that still has someone to tell; None when there is nothing to
    tell anyone (no users, NOTIFY_WHEN_EMPTY off, and no users held back for the text)."""
    digest = settings.digest
    users = fetched.users
    held = _held_texts(plan)
    telling = bool(users) or digest.notify_when_empty
    if not telling and held is None:
        return None
    report = Report(
        users=users,
        window=plan.trigger.window,
        zone=settings.timezone,
        label=digest.project_label,
        catchup=_catchup(plan),
        previous_users=plan.state.previous_users,
        window_users=fetched.in_window,
        profile_url_template=digest.profile_url_template,
        extra_properties=digest.extra_properties,
        breakdown=_breakdown(settings, users),
        companies=roll_up(users.emails()) if digest.company_rollup else None,
        held_texts=held,
    )
    # Email and Slack say something only when there are users (or NOTIFY_WHEN_EMPTY); the text may
    # have only what quiet hours held back to say.
    sending = {name: bool(who) and (telling or name == "sms") for name, who in plan.owed.items()}
    if not any(sending.values()):
        return None  # a quiet run whose only channel is SMS: its users are held, nothing goes out
    email_on = bool(plan.owed.get("email") or plan.told_before.get("email"))
    return Rendered(
        email=render_email(report, row_limit=digest.email_row_limit) if sending.get("email") else None,
        sms=render_sms(report) if sending.get("sms") else None,
        slack=render_slack(report, email_on=email_on) if sending.get("slack") else None,
    )


def _breakdown(settings: Settings, users: Users) -> Breakdown | None:
    """The users counted per value of BREAKDOWN_PROPERTY, when it is set."""
    name = settings.digest.breakdown_property
    if name is None:
        return None
    at = profile_properties(settings).index(name)
    return break_down(name, users.extra_values(at))


def _held_texts(plan: Plan) -> HeldTexts | None:
    """The users quiet runs held back, for the text that tells them (only when texts go out now)."""
    held = plan.state.held.values()
    if not any(tally.users for tally in held) or not plan.owed.get(TELLS_HELD):
        return None
    since = min(tally.since for tally in held)
    return HeldTexts(users=sum(tally.users for tally in held), since=Span(since, since + 1).start_at)


def _catchup(plan: Plan) -> Catchup | None:
    """The time the digest covers before its own window (missed ticks caught up), if any."""
    window = plan.request.window
    missed = [span for span in plan.state.coverage if span.start < window.start]
    seconds = sum(min(span.end, window.start) - span.start for span in missed)
    if seconds <= 0:
        return None
    return Catchup(since=missed[0].start_at, seconds=seconds)
