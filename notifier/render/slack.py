"""The Slack message: Block Kit blocks and a plain `text` fallback, always inside Slack's limits.

Every value from Mixpanel sits in a `plain_text` object and is escaped as Slack documents (`&`, `<`,
`>`), so a sign-up named `<!channel>`, `<@U123>` or `<https://evil.example|Click>` shows as text,
notifies nobody and links nowhere; `*bold*` stays literal because plain_text has no markup. A
profile link is a button whose URL comes from PROFILE_URL_TEMPLATE (checked https at configuration).
"""

from __future__ import annotations

import json
from typing import Any

from notifier.render.report import (
    Report,
    describe_window,
    extras,
    headline,
    late_note,
    missed,
    profile_url,
    showable,
    summary_lines,
    trend,
    user_time,
)

MAX_BLOCKS = 50
MAX_HEADER_CHARS = 150
MAX_FIELD_CHARS = 2000
MAX_SECTION_CHARS = 3000
MAX_URL_CHARS = 3000
FIELDS_PER_SECTION = 10
MAX_PAYLOAD_BYTES = 30_000  # well under what Slack takes; keeps the message readable too
MAX_FALLBACK_CHARS = 300


def escape(text: str) -> str:
    """Text as Slack shows it literally: `&`, `<` and `>` escaped, as Slack documents."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_slack(report: Report, *, email_on: bool) -> dict[str, Any]:
    """The webhook payload: header, context, as many users as fit, and "N more"."""
    report = showable(report)
    when = describe_window(report.window, report.zone)
    head = escape(headline(report))
    lines = (when, missed(report), trend(report), late_note(report), *summary_lines(report))
    context = [escape(line) for line in lines if line]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(_cut(head, MAX_HEADER_CHARS))},
        {"type": "context", "elements": [_plain(_cut(line, MAX_SECTION_CHARS)) for line in context]},
    ]
    users = _user_blocks(report, room=MAX_BLOCKS - len(blocks) - 1, used=_size(blocks))
    blocks.extend(block for block, _shown in users)
    shown = sum(count for _block, count in users)
    more = report.count - shown
    if more:
        where = " Everyone is in the email." if email_on else ""
        blocks.append({"type": "context", "elements": [_plain(f"…and {more:,} more.{where}")]})
    return {"text": _cut(f"{head}, {escape(when)}", MAX_FALLBACK_CHARS), "blocks": blocks}


def _user_blocks(report: Report, *, room: int, used: int) -> list[tuple[dict[str, Any], int]]:
    """Blocks listing the users, each with how many users it holds, within `room` blocks and the size."""
    blocks: list[tuple[dict[str, Any], int]] = []
    linked = report.profile_url_template is not None
    fields: list[dict[str, Any]] = []
    last = len(report.users) - 1
    for index, user in enumerate(report.users):
        text = _cut(_describe(report, user), MAX_FIELD_CHARS)
        if linked:
            block: dict[str, Any] = {"type": "section", "text": _plain(text)}
            url = profile_url(report, user)
            if url and len(url) <= MAX_URL_CHARS:
                block["accessory"] = {"type": "button", "text": _plain("Profile"), "url": url}
            candidate = (block, 1)
        else:
            fields.append(_plain(text))
            if len(fields) < FIELDS_PER_SECTION and index < last:
                continue
            candidate = ({"type": "section", "fields": fields}, len(fields))
            fields = []
        size = _size(candidate[0])
        if len(blocks) == room or used + size > MAX_PAYLOAD_BYTES:
            break
        blocks.append(candidate)
        used += size
    return blocks


def _describe(report: Report, user: Any) -> str:
    name = escape(user.name) if user.name else "(no name)"
    parts = [escape(user.email) if user.email else "no email", user_time(user, report)]
    if user.late:
        parts.append("arrived late")
    parts.extend(f"{escape(key)}: {escape(value)}" for key, value in extras(report, user))
    return f"{name}\n{' · '.join(parts)}"


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text or " ", "emoji": False}


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    # Never end inside an escape (&amp; &lt; &gt;): a half entity would show as garbage.
    entity = cut.rfind("&")
    if entity >= 0 and ";" not in cut[entity:]:
        cut = cut[:entity]
    return cut + "…"


def _size(value: object) -> int:
    # As slack-sdk sends it: json.dumps escapes every non-ASCII character (up to 12 bytes an emoji).
    return len(json.dumps(value))
