"""What a digest says, on any channel: the headline, the window, missed time, the trend, the
breakdown and the companies, each user.

Pure functions over a Report; the email, the SMS and the Slack message all take their words here,
so they say the same thing in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

from notifier.breakdown import Breakdown
from notifier.mixpanel import NewUser
from notifier.quiet_hours import HeldTexts
from notifier.span import Span
from notifier.tally import Tally
from notifier.users import count_late

UTC_ZONE = ZoneInfo("UTC")
SHOWN_VALUE_CHARS = 40  # a breakdown's value or property name, as the digest's summary lines show it


@dataclass(frozen=True)
class Catchup:
    """Time a digest covers before its own window: ticks that were missed, caught up."""

    since: datetime
    seconds: int


@dataclass(frozen=True)
class Report:
    """Everything a digest shows, on any channel: the users and what to say about them."""

    users: Sequence[NewUser]  # sorted by created time
    window: Span
    zone: ZoneInfo
    label: str = "Mixpanel"
    catchup: Catchup | None = None
    previous_users: int | None = None  # the previous window of the same length, when known
    window_users: int = 0  # users of the window itself (not caught up, not late), for the trend
    profile_url_template: str | None = None
    extra_properties: tuple[str, ...] = ()
    breakdown: Breakdown | None = None  # the users per value of BREAKDOWN_PROPERTY
    companies: Tally | None = None  # the users per company (COMPANY_ROLLUP); None when nobody has one
    held_texts: HeldTexts | None = None  # users found while quiet hours held the SMS, for the next SMS

    @property
    def count(self) -> int:
        """Users reported."""
        return len(self.users)

    @property
    def late(self) -> int:
        """Users created in time an earlier digest covered, that reached Mixpanel after it ran."""
        return count_late(self.users)


def showable(report: Report) -> Report:
    """The report, in UTC instead when a time it shows has no date in its zone (the calendar's ends)."""
    instants = [report.window.start_at, report.window.end_at]
    instants += [extra.since for extra in (report.catchup, report.held_texts) if extra]
    instants += [user.created for user in report.users[:1]] + [user.created for user in report.users[-1:]]
    zone = shown_zone(instants, report.zone)
    return report if zone is report.zone else replace(report, zone=zone)


def shown_zone(instants: Iterable[datetime], zone: ZoneInfo) -> ZoneInfo:
    """`zone`, or UTC when one of `instants` falls past year 9999 or before year 1 there."""
    try:
        for instant in instants:
            instant.astimezone(zone)
    except OverflowError:
        return UTC_ZONE
    return zone


def new_users(count: int) -> str:
    """'1 new user', '1,234 new users', 'No new users'."""
    if count == 0:
        return "No new users"
    return f"{count:,} new user{'' if count == 1 else 's'}"


def headline(report: Report) -> str:
    """'Acme iOS: 12 new users'."""
    return f"{report.label}: {new_users(report.count)}"


def describe_window(window: Span, zone: ZoneInfo, *, short: bool = False) -> str:
    """The window for people, in `zone`: '28 Nov 2026, 08:00–09:00 CET'.

    `short` drops the year and uses ASCII, for the SMS: '28 Nov 08:00-09:00 CET'. A window across a
    change of clocks names the zone at each end ('02:00 CEST–02:00 CET'), so it never reads as empty.
    A window with no date in `zone` (at the calendar's ends) is shown in UTC.
    """
    zone = shown_zone((window.start_at, window.end_at), zone)
    start, end = window.start_at.astimezone(zone), window.end_at.astimezone(zone)
    day, dash = ("%d %b", "-") if short else ("%d %b %Y,", "–")
    start_zone, end_zone = start.strftime("%Z"), end.strftime("%Z")
    start_tail = f" {start_zone}" if start_zone != end_zone else ""
    if same_day(window, zone):
        # A window ending at midnight ends at 24:00 of its day, not 00:00 (which reads as empty).
        until = "24:00" if (end.hour, end.minute) == (0, 0) else f"{end:%H:%M}"
        return f"{start:{day} %H:%M}{start_tail}{dash}{until} {end_zone}"
    between = dash if short else f" {dash} "
    return f"{start:{day} %H:%M}{start_tail}{between}{end:{day} %H:%M} {end_zone}"


def same_day(window: Span, zone: ZoneInfo) -> bool:
    """True when the window lies within one calendar day in `zone` (an end at midnight included)."""
    start = window.start_at.astimezone(zone)
    last = (window.end_at - timedelta(microseconds=1)).astimezone(zone)
    return start.date() == last.date()


def user_time(user: NewUser, report: Report) -> str:
    """A user's created time, compact: '09:12' when the window is one day, else '27 Nov 23:58'."""
    local = user.created.astimezone(report.zone)
    return f"{local:%H:%M}" if same_day(report.window, report.zone) else f"{local:%d %b %H:%M}"


def period(seconds: float) -> str:
    """'the hour', 'the day', 'the week', '15 min', '2 h': a window's length in words."""
    named = {3600: "the hour", 86400: "the day", 604800: "the week"}
    if int(seconds) in named and int(seconds) == seconds:
        return named[int(seconds)]
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"the {minutes} min"
    return f"the {minutes / 60:g} h" if minutes < 2880 else f"the {minutes / 1440:g} days"


def trend(report: Report) -> str | None:
    """'4 more than the hour before', or None when the previous window's count is unknown."""
    if report.previous_users is None:
        return None
    before = period(report.window.seconds) + " before"
    difference = report.window_users - report.previous_users
    if difference == 0:
        return f"as many as {before}"
    return f"{abs(difference):,} {'more' if difference > 0 else 'fewer'} than {before}"


def missed(report: Report) -> str | None:
    """'including 2 h missed since 06:00', or None when the digest covers only its own window."""
    catchup = report.catchup
    if catchup is None:
        return None
    since = catchup.since.astimezone(report.zone)
    start = report.window.start_at.astimezone(report.zone)
    when = f"{since:%H:%M}" if since.date() == start.date() else f"{since:%d %b %H:%M}"
    return f"including {duration(catchup.seconds)} missed since {when}"


def duration(seconds: int) -> str:
    """'45 min', '2 h', '2 h 30 min', '3 days'."""
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 2880:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h" + (f" {rest} min" if rest else "")
    return f"{minutes / 1440:.1f}".rstrip("0").rstrip(".") + " days"


def late_note(report: Report) -> str | None:
    """'3 arrived late (created earlier, reached Mixpanel after its digest)', or None."""
    late = report.late
    if not late:
        return None
    return f"{late:,} arrived late (created earlier, reached Mixpanel after its digest)"


def summary_lines(report: Report) -> list[str]:
    """What the sign-ups mean, under the window: the breakdown, then the companies, where there are any."""
    return [line for line in (breakdown_line(report), companies_line(report)) if line]


def breakdown_line(report: Report) -> str | None:
    """'By utm_source: google 3, newsletter 2, (none) 1', 'other N' users past the top 5; None if unset."""
    breakdown = report.breakdown
    if breakdown is None or not breakdown.tally.top:
        return None
    counts = _counts(breakdown.tally)
    if breakdown.tally.rest_count:
        counts.append(f"other {breakdown.tally.rest_count:,}")
    return f"By {shown_value(breakdown.property)}: {', '.join(counts)}"


def companies_line(report: Report) -> str | None:
    """'Companies: acme.com 3, globex.io 1', 'and N more' companies past the top 5; None without any."""
    companies = report.companies
    if companies is None or not companies.top:
        return None
    more = f" and {companies.rest_values:,} more" if companies.rest_values else ""
    return f"Companies: {', '.join(_counts(companies))}{more}"


def _counts(tally: Tally) -> list[str]:
    return [f"{shown_value(value) or '(none)'} {count:,}" for value, count in tally.top]


def shown_value(value: str) -> str:
    """A value on one line, cut to SHOWN_VALUE_CHARS: no value can crowd out the rest of the line."""
    line = " ".join(value.split())
    return line if len(line) <= SHOWN_VALUE_CHARS else line[: SHOWN_VALUE_CHARS - 1].rstrip() + "…"


def profile_url(report: Report, user: NewUser) -> str | None:
    """The user's link from PROFILE_URL_TEMPLATE, the id URL-encoded; None without a template or id."""
    if not report.profile_url_template or not user.distinct_id:
        return None
    return report.profile_url_template.replace("{distinct_id}", quote(user.distinct_id, safe=""))


def extras(report: Report, user: NewUser) -> list[tuple[str, str]]:
    """The user's EXTRA_PROPERTIES that have a value, as (name, value) pairs."""
    return [(name, value) for name, value in zip(report.extra_properties, user.extra, strict=False) if value]


def footer_lines(report: Report, *, channel_variable: str) -> list[str]:
    """Why people get this, in plain words, and which setting changes who does."""
    return [
        f"You get this because you are in {channel_variable} of the Notifierator function "
        f"for {report.label}.",
        f"To change who gets it, edit {channel_variable} in its configuration. "
        f"Times are in {report.zone.key} (TIMEZONE).",
    ]
