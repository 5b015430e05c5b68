"""The Slack message, with no I/O: Block Kit blocks and a plain-text fallback, inside Slack's limits.

Every value from Mixpanel goes into `plain_text` objects, or is escaped (`&`, `<`, `>`) where it
must sit in mrkdwn, so a sign-up named `<!channel>` shows as text and notifies nobody.
"""

from __future__ import annotations

from typing import Any

from notifier.digest import Report, describe_window

MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000
MAX_HEADER_CHARS = 150
MAX_TEXT_CHARS = 3000


def escape(text: str) -> str:
    """Text as Slack shows it literally in mrkdwn: `&`, `<` and `>` escaped, as Slack documents."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_slack(report: Report, *, email_on: bool) -> dict[str, Any]:
    """The webhook payload: a header, the window, one section per user while they fit, "N more"."""
    count = len(report.users)
    noun = "user" if count == 1 else "users"
    head = f"{report.label}: {count:,} new {noun}" if count else f"{report.label}: no new users"
    when = describe_window(report.window, report.zone)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(head, MAX_HEADER_CHARS)}},
        {"type": "context", "elements": [{"type": "plain_text", "text": _cut(when, MAX_SECTION_CHARS)}]},
    ]
    room = MAX_BLOCKS - len(blocks) - 1  # one kept for "N more"
    shown = 0
    for user in report.users[:room]:
        line = " · ".join(part for part in (user.name or "(no name)", user.email) if part)
        blocks.append(
            {"type": "section", "text": {"type": "plain_text", "text": _cut(line, MAX_SECTION_CHARS)}}
        )
        shown += 1
    more = count - shown
    if more:
        where = " Everyone is in the email." if email_on else ""
        blocks.append(
            {"type": "context", "elements": [{"type": "plain_text", "text": f"…and {more:,} more.{where}"}]}
        )
    return {"text": _cut(f"{head}, {when}", MAX_TEXT_CHARS), "blocks": blocks}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
