"""The email: subject, responsive HTML (one centred column, a compact block per user), plain text.

The layout is a table-based template with its CSS inlined by css-inline, the field's standard for
mail clients that drop <style>; the @media rules (dark mode, phones) stay in <style> for those that
read them. The HTML part stays under HTML_BUDGET bytes (Gmail clips past 102 KB): fewer users are
listed when the budget demands, and the note at the top says so. The text part says the same, in
the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from notifier.render.csv import ZIP_ABOVE_ROWS, Attachment, attachment, attachment_name
from notifier.render.report import (
    Report,
    describe_window,
    extras,
    footer_lines,
    headline,
    late_note,
    missed,
    new_users,
    profile_url,
    showable,
    summary_lines,
    trend,
    user_time,
)

TEMPLATES = Path(__file__).parent / "templates"
HTML_BUDGET = 100_000  # bytes of the HTML part; Gmail clips a message past 102 KB
_USER_MARK = "<!--user-->"
_USERS_MARK = "<!--USERS-->"
_FOOT_MARK = "<!--FOOT-->"
_NOTE_MARK = "<!--NOTE-->"
_NOTE_ROW, _NOTE_ROW_END = "<!--note-row-->", "<!--/note-row-->"
_MIN_ROW_BYTES = 150  # the smallest a listed user's HTML gets: bounds how many are rendered at all


@dataclass(frozen=True)
class EmailDigest:
    """The rendered email: one subject, two bodies, and the CSV when the list is cut."""

    subject: str
    html: str
    text: str
    attachment: Attachment | None


def email_subject(report: Report) -> str:
    """'Acme iOS: 12 new users, 28 Nov 2026, 08:00–09:00 CET': nothing from Mixpanel in it."""
    return f"{headline(report)}, {describe_window(report.window, report.zone)}"


def render_email(
    report: Report,
    *,
    row_limit: int,
    html_budget: int = HTML_BUDGET,
    zip_above_rows: int = ZIP_ABOVE_ROWS,
) -> EmailDigest:
    """The whole email; past `row_limit` users, or the HTML budget, the rest go to a CSV of everyone."""
    report = showable(report)
    count = report.count
    candidates = min(count, row_limit, html_budget // _MIN_ROW_BYTES)
    rows = [_user_row(report, n) for n in range(candidates)]
    filename = attachment_name(report, zip_above_rows=zip_above_rows)
    # One inline pass over the page with every candidate row, each marked: the inlined size of each
    # row is then known, and the rows past the budget are cut from the inlined page as they are.
    users = "".join(_USER_MARK + _row_html(row) for row in rows)
    shell = _templates().get_template("email.html.j2").render(_context(report))
    page = _inliner().inline(shell.replace(_USERS_MARK, users + _FOOT_MARK))
    before, tail = page.split(_FOOT_MARK)
    head, *inlined = before.split(_USER_MARK)
    listed = _fit(head, tail, inlined, count, filename, html_budget)
    note = _note(report, listed, filename, row_limit)
    if note:
        head = head.replace(_NOTE_MARK, _escape(note))
    else:
        start, end = head.index(_NOTE_ROW), head.index(_NOTE_ROW_END) + len(_NOTE_ROW_END)
        head = head[:start] + head[end:]
    text = (
        _templates()
        .get_template("email.txt.j2")
        .render({**_context(report), "note": note, "users": rows[:listed]})
    )
    return EmailDigest(
        subject=email_subject(report),
        html=head + "".join(inlined[:listed]) + tail,
        text=text,
        attachment=attachment(report, zip_above_rows=zip_above_rows) if listed < count else None,
    )


def _context(report: Report) -> dict[str, Any]:
    lines = [line for line in (missed(report), trend(report), late_note(report)) if line]
    count_text = new_users(report.count)
    return {
        "css": _css(),
        "headline": headline(report),
        "preheader": f"{count_text} in {report.label}, {describe_window(report.window, report.zone)}",
        "label": report.label,
        "count_text": count_text,
        "window": describe_window(report.window, report.zone),
        "context_lines": lines,
        "summary_lines": summary_lines(report),
        "note": Markup(_NOTE_MARK),  # noqa: S704 - a constant marker, replaced by escaped text
        "footer": footer_lines(report, channel_variable="EMAIL_TO"),
    }


def _user_row(report: Report, index: int) -> dict[str, Any]:
    user = report.users[index]
    return {
        "name": user.name or "(no name)",
        "email": user.email,  # the HTML says "no email"; the text leaves the <address> out
        "time": user_time(user, report),
        "late": user.late,
        "url": profile_url(report, user),
        "extras": extras(report, user),
    }


def _row_html(row: dict[str, Any]) -> str:
    return _templates().get_template("user.html.j2").render(row)


def _fit(head: str, tail: str, rows: list[str], count: int, filename: str, budget: int) -> int:
    """How many rows fit the budget, leaving room for the longest note."""
    longest_note = _note_text(count, count, filename, cut_by_size=True)
    used = len(head.encode()) + len(tail.encode()) + len(_escape(longest_note).encode())
    listed = 0
    for row in rows:
        size = len(row.encode())
        if used + size > budget:
            break
        used += size
        listed += 1
    return listed


def _note(report: Report, listed: int, filename: str, row_limit: int) -> str | None:
    if listed >= report.count:
        return None
    return _note_text(listed, report.count, filename, cut_by_size=listed < min(row_limit, report.count))


def _note_text(listed: int, count: int, filename: str, *, cut_by_size: bool) -> str:
    why = " (all an email can hold without being clipped)" if cut_by_size else ""
    return (
        f"Showing the first {listed:,} of {count:,}{why}, {count - listed:,} more in the attached "
        f"{filename}, which has everyone."
    )


def _escape(text: str) -> str:
    return str(escape(text))


@cache
def _css() -> str:
    return (TEMPLATES / "email.css").read_text(encoding="utf-8")


@cache
def _inliner() -> Any:
    import css_inline

    # keep_at_rules: the @media rules stay in <style>; everything else is inlined and dropped there.
    return css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


@cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
