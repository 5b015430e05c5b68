"""The CSV that carries every user when the email lists only some: plain, or zipped when large.

UTF-8 with a byte-order mark (spreadsheets read it right); cells a spreadsheet would run as a
formula are neutralised; the file is encoded (and zipped) as it is written, never held twice.
"""

from __future__ import annotations

import csv
import io
import unicodedata
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from notifier.mixpanel import NewUser
from notifier.render.report import Report, showable

CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Characters a spreadsheet may pass over before it reads a formula: spaces of every kind, line breaks,
# and the invisible formatting ones (zero-width space, byte-order mark, word joiner...).
_BLANK_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})
# Past this many users the CSV travels zipped: a 100,000-user CSV is 14 MB, 19 MB once base64-encoded
# for the email, close to Gmail's 25 MB and past Outlook's 20 MB; zipped it is about 3 MB.
ZIP_ABOVE_ROWS = 10_000


@dataclass(frozen=True)
class Attachment:
    """A file attached to the email."""

    filename: str
    content: bytes
    mime_type: str


def attachment_name(report: Report, *, zip_above_rows: int = ZIP_ABOVE_ROWS) -> str:
    """The attachment's file name: the CSV's, with .zip past `zip_above_rows` users."""
    window = report.window
    name = f"new-users-{window.start_at:%Y%m%dT%H%MZ}-{window.end_at:%Y%m%dT%H%MZ}.csv"
    return f"{name}.zip" if report.count > zip_above_rows else name


def attachment(report: Report, *, zip_above_rows: int = ZIP_ABOVE_ROWS) -> Attachment:
    """Every user as a CSV attachment, zipped past `zip_above_rows`."""
    name = attachment_name(report, zip_above_rows=zip_above_rows)
    if not name.endswith(".zip"):
        return Attachment(name, render_csv(report), "text/csv")
    return Attachment(name, render_csv_zip(report, member=name.removesuffix(".zip")), "application/zip")


def render_csv(report: Report) -> bytes:
    """Every user as CSV bytes."""
    buffer = io.BytesIO()
    _write_csv(showable(report), buffer)
    return buffer.getvalue()


def render_csv_zip(report: Report, *, member: str) -> bytes:
    """The same CSV inside a zip, compressed as it is written: the plain file never exists whole."""
    buffer = io.BytesIO()
    # Level 1: most of the size win for a fraction of the time; the CSV is repetitive text.
    with (
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open(member, "w") as stream,
    ):
        _write_csv(showable(report), stream)
    return buffer.getvalue()


def _write_csv(report: Report, stream: IO[bytes]) -> None:
    # errors="replace": text from Mixpanel is made valid where it enters; this is the last guard.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    zone = report.zone
    header = ["name", "email", f"created ({zone.key})", "created (UTC)", "distinct_id", "arrived_late"]
    writer.writerow([*header, *(neutralise_cell(name) for name in report.extra_properties)])
    writer.writerows(_rows(report.users, report))
    text.flush()
    text.detach()  # leave `stream` open for its owner


def _rows(users: Sequence[NewUser], report: Report) -> Iterator[list[str]]:
    last: datetime | None = None
    local = utc = ""
    zone = report.zone
    extras = len(report.extra_properties)
    for user in users:
        # Sorted users share created seconds in runs: format each second once. Sliced isoformat is
        # several times faster than strftime, which shows at 100,000 rows.
        if user.created != last:
            last = user.created
            local = last.astimezone(zone).isoformat(" ")[:19]
            utc = last.isoformat()[:19] + "Z"
        row = [
            neutralise_cell(user.name),
            neutralise_cell(user.email),
            local,
            utc,
            neutralise_cell(user.distinct_id),
            "yes" if user.late else "",
        ]
        if extras:
            row.extend([neutralise_cell(value) for value in user.extra[:extras]])
        yield row


def neutralise_cell(value: str) -> str:
    """Prefix a quote to cells a spreadsheet would run as a formula.

    Leading blanks of any kind are looked past, and full-width signs read as their ASCII twins:
    some spreadsheets do either before reading a formula."""
    if not value or value[0].isalnum():  # most cells, decided here: a million of them at 100,000 users
        return value
    return "'" + value if _formula_like(value) else value


def _formula_like(value: str) -> bool:
    if value.startswith(CSV_FORMULA_STARTS):
        return True
    for char in value:
        if unicodedata.category(char) not in _BLANK_CATEGORIES:
            return unicodedata.normalize("NFKC", char).startswith(CSV_FORMULA_STARTS)
    return False
