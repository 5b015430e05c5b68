"""Rendering, with no I/O: the email (subject, HTML, text, CSV) and the SMS body.

Values from Mixpanel are escaped in HTML by the template's autoescape, neutralised in CSV, reduced
to GSM-7 in the SMS, and never placed in the subject.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2

from notifier.mixpanel import NewUser
from notifier.sms_text import SEGMENT_SEPTETS, septets, to_gsm7
from notifier.trigger import Window

TEMPLATES = Path(__file__).parent / "templates"
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SMS_NAME_CHARS = 24


@dataclass(frozen=True)
class Attachment:
    """A file attached to the email."""

    filename: str
    content: bytes
    mime_type: str


@dataclass(frozen=True)
class EmailDigest:
    """The rendered email: one subject, two bodies, and the CSV when the list is cut."""

    subject: str
    html: str
    text: str
    attachment: Attachment | None


@dataclass(frozen=True)
class Row:
    """One user as shown to people: every field is display text."""

    name: str
    email: str
    created: str


def sort_users(users: Sequence[NewUser]) -> list[NewUser]:
    """Users by created time, then distinct id, so every run orders them the same way."""
    return sorted(users, key=lambda user: (user.created, user.distinct_id))


def describe_window(window: Window, zone: ZoneInfo) -> str:
    """The window for people, in `zone`: '28 Nov 2026 08:00–09:00 CET'."""
    start, end = window.start.astimezone(zone), window.end.astimezone(zone)
    if start.date() == end.date():
        return f"{start:%d %b %Y %H:%M}–{end:%H:%M} {end:%Z}"
    return f"{start:%d %b %Y %H:%M} – {end:%d %b %Y %H:%M} {end:%Z}"


def email_subject(count: int, window: Window, zone: ZoneInfo) -> str:
    """The subject: the count and the window, nothing from Mixpanel."""
    if count == 0:
        return f"No new Mixpanel users, {describe_window(window, zone)}"
    noun = "user" if count == 1 else "users"
    return f"{count:,} new Mixpanel {noun}, {describe_window(window, zone)}"


def render_email(users: Sequence[NewUser], window: Window, zone: ZoneInfo, *, row_limit: int) -> EmailDigest:
    """The whole email for `users` (sorted by created time); past `row_limit`, a CSV of all."""
    shown = [_row(user, zone) for user in users[:row_limit]]
    context = {
        "count": len(users),
        "rows": shown,
        "more": len(users) - len(shown),
        "window": describe_window(window, zone),
        "zone": str(zone),
        "csv_name": _csv_name(window) if len(users) > row_limit else None,
    }
    attachment = (
        Attachment(_csv_name(window), render_csv(users, zone), "text/csv") if len(users) > row_limit else None
    )
    return EmailDigest(
        subject=email_subject(len(users), window, zone),
        html=_templates().get_template("digest.html.j2").render(context),
        text=_templates().get_template("digest.txt.j2").render(context),
        attachment=attachment,
    )


def render_csv(users: Sequence[NewUser], zone: ZoneInfo) -> bytes:
    """Every user as CSV (UTF-8 with BOM for spreadsheets); formula-like cells are neutralised."""
    # Encoded as it is written: one bytes copy of a 100,000-row file, never a wide str as well.
    buffer = io.BytesIO()
    text = io.TextIOWrapper(buffer, encoding="utf-8-sig", newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(["name", "email", f"created ({zone})", "created (UTC)", "distinct_id"])
    # isoformat and str() of naive datetimes are several times faster than strftime.
    writer.writerows(
        (
            neutralise_cell(user.name),
            neutralise_cell(user.email),
            str(user.created.astimezone(zone).replace(tzinfo=None)),
            user.created.replace(tzinfo=None).isoformat() + "Z",
            neutralise_cell(user.distinct_id),
        )
        for user in users
    )
    text.flush()
    return buffer.getvalue()


def neutralise_cell(value: str) -> str:
    """Prefix a quote to cells a spreadsheet would run as a formula."""
    return "'" + value if value.startswith(CSV_FORMULA_STARTS) else value


def render_sms(users: Sequence[NewUser], window: Window, zone: ZoneInfo) -> str:
    """One GSM-7 segment: the count, the window, and as many names as fit."""
    count = len(users)
    when = to_gsm7(_short_window(window, zone))
    if count == 0:
        return _fit(f"Mixpanel: no new users {when}")
    head = f"Mixpanel: {count} new user{'' if count == 1 else 's'} {when}"
    shown: list[str] = []
    body = head
    for user in users:
        name = _sms_name(user.name)
        if not name:
            continue
        candidate = _sms_body(head, [*shown, name], count)
        if septets(candidate) > SEGMENT_SEPTETS:
            break
        shown.append(name)
        body = candidate
    if not shown:
        body = _sms_body(head, [], count)
    return _fit(body)


def _sms_body(head: str, names: list[str], count: int) -> str:
    more = count - len(names)
    text = f"{head}: {', '.join(names)}" if names else head
    return f"{text} +{more} more" if names and more else text


def _sms_name(name: str) -> str:
    # Short, one line, GSM-7 only: a name cannot break the message's layout or its single segment.
    clean = to_gsm7(name).replace(",", " ").strip()
    if len(clean) > SMS_NAME_CHARS:
        clean = clean[: SMS_NAME_CHARS - 3].rstrip() + "..."
    return clean


def _fit(text: str) -> str:
    while septets(text) > SEGMENT_SEPTETS:
        text = text[:-1]
    return text


def _short_window(window: Window, zone: ZoneInfo) -> str:
    start, end = window.start.astimezone(zone), window.end.astimezone(zone)
    if start.date() == end.date():
        return f"{start:%d %b %H:%M}-{end:%H:%M} {end:%Z}"
    return f"{start:%d %b %H:%M}-{end:%d %b %H:%M} {end:%Z}"


def _row(user: NewUser, zone: ZoneInfo) -> Row:
    return Row(name=user.name, email=user.email, created=_local(user.created, zone))


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def _csv_name(window: Window) -> str:
    return f"new-users-{window.start:%Y%m%dT%H%MZ}-{window.end:%Y%m%dT%H%MZ}.csv"


@cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
