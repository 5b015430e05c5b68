"""Rendering, with no I/O: the email (subject, HTML, text, CSV) and the SMS body.

Values from Mixpanel are escaped in HTML by the template's autoescape, neutralised in CSV, reduced
to GSM-7 in the SMS, and never placed in the subject.
"""

from __future__ import annotations

import csv
import io
import operator
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

import jinja2

from notifier.mixpanel import NewUser
from notifier.sms_text import SEGMENT_SEPTETS, septets, to_gsm7
from notifier.trigger import Window

TEMPLATES = Path(__file__).parent / "templates"
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Past this many users the CSV travels zipped: a 100,000-user CSV is 14 MB, 19 MB once base64-encoded
# for the email, close to Gmail's 25 MB and past Outlook's 20 MB; zipped it is about 3 MB.
ZIP_ABOVE_ROWS = 10_000
SMS_NAME_CHARS = 24
_BY_CREATED_THEN_ID = operator.attrgetter("created", "distinct_id")  # C-speed key for 100,000 users
_LINKISH = re.compile(r"://|(?<=\w)\.(?=\w)")


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
class Catchup:
    """Time a digest covers beyond its own window: ticks that were missed, caught up."""

    since: datetime
    seconds: int


@dataclass(frozen=True)
class Report:
    """Everything a digest shows, on any channel: the users and what to say about them."""

    users: Sequence[NewUser]  # sorted by created time
    window: Window
    zone: ZoneInfo
    label: str = "Mixpanel"
    catchup: Catchup | None = None
    previous_users: int | None = None  # the previous window of the same length, when known
    window_users: int = 0  # users of the window itself (not caught up, not late), for the trend
    profile_url_template: str | None = None
    extra_properties: tuple[str, ...] = ()


@dataclass(frozen=True)
class Row:
    """One user as shown to people: every field is display text."""

    name: str
    email: str
    created: str


def sort_users(users: Sequence[NewUser]) -> list[NewUser]:
    """Users by created time, then distinct id, so every run orders them the same way."""
    return sorted(users, key=_BY_CREATED_THEN_ID)


def describe_window(window: Window, zone: ZoneInfo, *, short: bool = False) -> str:
    """The window for people, in `zone`: '28 Nov 2026 08:00–09:00 CET'.

    `short` drops the year and uses ASCII, for the SMS: '28 Nov 08:00-09:00 CET'.
    """
    start, end = window.start.astimezone(zone), window.end.astimezone(zone)
    day, dash = ("%d %b", "-") if short else ("%d %b %Y", "–")
    if start.date() == end.date():
        return f"{start:{day} %H:%M}{dash}{end:%H:%M} {end:%Z}"
    between = dash if short else f" {dash} "
    return f"{start:{day} %H:%M}{between}{end:{day} %H:%M} {end:%Z}"


def email_subject(count: int, window: Window, zone: ZoneInfo) -> str:
    """The subject: the count and the window, nothing from Mixpanel."""
    if count == 0:
        return f"No new Mixpanel users, {describe_window(window, zone)}"
    noun = "user" if count == 1 else "users"
    return f"{count:,} new Mixpanel {noun}, {describe_window(window, zone)}"


def render_email(report: Report, *, row_limit: int, zip_above_rows: int = ZIP_ABOVE_ROWS) -> EmailDigest:
    """The whole email for the report's users; past `row_limit`, a CSV of all.

    Past `zip_above_rows` users the CSV is attached zipped.
    """
    users, window, zone = report.users, report.window, report.zone
    shown = [_row(user, zone) for user in users[:row_limit]]
    context = {
        "count": len(users),
        "rows": shown,
        "more": len(users) - len(shown),
        "window": describe_window(window, zone),
        "zone": str(zone),
    }
    attachment = _attachment(users, window, zone, zip_above_rows) if len(users) > row_limit else None
    context["attachment_name"] = attachment.filename if attachment else None
    return EmailDigest(
        subject=email_subject(len(users), window, zone),
        html=_templates().get_template("digest.html.j2").render(context),
        text=_templates().get_template("digest.txt.j2").render(context),
        attachment=attachment,
    )


def _attachment(users: Sequence[NewUser], window: Window, zone: ZoneInfo, zip_above_rows: int) -> Attachment:
    name = _csv_name(window)
    if len(users) <= zip_above_rows:
        return Attachment(name, render_csv(users, zone), "text/csv")
    archive = render_csv_zip(users, zone, member=name)
    return Attachment(f"{name}.zip", archive, "application/zip")


def render_csv(users: Sequence[NewUser], zone: ZoneInfo) -> bytes:
    """Every user as CSV (UTF-8 with BOM for spreadsheets); formula-like cells are neutralised."""
    # Encoded as it is written: one bytes copy of the file, never a wide str as well.
    buffer = io.BytesIO()
    _write_csv(users, zone, buffer)
    return buffer.getvalue()


def render_csv_zip(users: Sequence[NewUser], zone: ZoneInfo, *, member: str) -> bytes:
    """The same CSV inside a zip, compressed as it is written: the plain file never exists whole."""
    buffer = io.BytesIO()
    # Level 1: most of the size win for a fraction of the time; the CSV is repetitive text.
    with (
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open(member, "w") as stream,
    ):
        _write_csv(users, zone, stream)
    return buffer.getvalue()


def _write_csv(users: Sequence[NewUser], zone: ZoneInfo, stream: IO[bytes]) -> None:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(["name", "email", f"created ({zone})", "created (UTC)", "distinct_id"])
    writer.writerows(_csv_rows(users, zone))
    text.flush()
    text.detach()  # leave `stream` open for its owner


def _csv_rows(users: Sequence[NewUser], zone: ZoneInfo) -> Iterator[tuple[str, str, str, str, str]]:
    last: datetime | None = None
    local = utc = ""
    for user in users:
        # Sorted users share created seconds in runs: format each second once. Sliced isoformat is
        # several times faster than strftime, which shows at 100,000 rows.
        if user.created != last:
            last = user.created
            local = last.astimezone(zone).isoformat(" ")[:19]
            utc = last.isoformat()[:19] + "Z"
        yield (
            neutralise_cell(user.name),
            neutralise_cell(user.email),
            local,
            utc,
            neutralise_cell(user.distinct_id),
        )


def neutralise_cell(value: str) -> str:
    """Prefix a quote to cells a spreadsheet would run as a formula."""
    return "'" + value if value.startswith(CSV_FORMULA_STARTS) else value


def render_sms(report: Report) -> str:
    """One GSM-7 segment: the count, the window, and as many names as fit."""
    users, window, zone = report.users, report.window, report.zone
    count = len(users)
    when = to_gsm7(describe_window(window, zone, short=True))
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
    # Dots between letters go too, so a "name" like "reset at evil.com" is no tappable link.
    clean = _LINKISH.sub(" ", to_gsm7(name).replace(",", " ")).strip()
    clean = " ".join(clean.split())
    if len(clean) > SMS_NAME_CHARS:
        clean = clean[: SMS_NAME_CHARS - 3].rstrip() + "..."
    return clean


def _fit(text: str) -> str:
    while septets(text) > SEGMENT_SEPTETS:
        text = text[:-1]
    return text


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
