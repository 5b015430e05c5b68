"""The SMS: always one GSM-7 segment (160 septets): the project, the count, the window, some names.

Nothing from a profile can be tapped: a name with three digits or more loses them all (no number to
call, not even 911), and every name the dots and slashes that would make a link. After quiet hours, one text
counts the users held too.
"""

from __future__ import annotations

import re
from datetime import timedelta

from notifier.quiet_hours import HeldTexts
from notifier.render.gsm7 import SEGMENT_SEPTETS, septets, to_gsm7
from notifier.render.report import Report, describe_window, new_users, showable

SMS_NAME_CHARS = 24
# The head may take this much of the segment; a longer PROJECT_LABEL gives way to "Mixpanel".
MAX_HEAD_SEPTETS = 110
_LINKISH = re.compile(r"://|(?<=\w)\.(?=\w)")
# Digits with the signs and separators a phone reads as part of one number.
_NUMBERISH = re.compile(r"[+#*(]*\d[\d\s().\-/#*]*")
DIALLABLE_DIGITS = 3  # a name with this many loses them ("Agent 47" keeps its two)


def render_sms(report: Report) -> str:
    """One GSM-7 segment: the project, the count, the window (or the time since the last text, after
    quiet hours), and as many names as fit."""
    report = showable(report)
    count = report.count + (report.held_texts.users if report.held_texts else 0)
    when = _when(report, report.held_texts)
    head = f"{to_gsm7(report.label)}: {new_users(count).lower()} {when}"
    if septets(head) > MAX_HEAD_SEPTETS:
        head = f"Mixpanel: {new_users(count).lower()} {when}"
    shown: list[str] = []
    body = head
    for user in report.users:
        name = _sms_name(user.name)
        if not name:
            continue
        candidate = _sms_body(head, [*shown, name], count)
        if septets(candidate) > SEGMENT_SEPTETS:
            break
        shown.append(name)
        body = candidate
    return _fit(body)


def _when(report: Report, held: HeldTexts | None) -> str:
    """'28 Nov 09:00-10:00 CET', or after quiet hours 'since 22:00 CET' (dated when a day or more ago)."""
    if held is None:
        return to_gsm7(describe_window(report.window, report.zone, short=True))
    since = held.since.astimezone(report.zone)
    clock = "%H:%M" if report.window.end_at - held.since < timedelta(days=1) else "%d %b %H:%M"
    return to_gsm7(f"since {since:{clock}} {since:%Z}")


def _sms_body(head: str, names: list[str], count: int) -> str:
    more = count - len(names)
    text = f"{head}: {', '.join(names)}" if names else head
    return f"{text} +{more} more" if names and more else text


def _sms_name(name: str) -> str:
    # Short, one line, GSM-7 only, and nothing a phone can tap: a name cannot break the message.
    clean = to_gsm7(name)
    if sum(char.isdigit() for char in clean) >= DIALLABLE_DIGITS:
        clean = _NUMBERISH.sub(" ", clean)
    clean = _LINKISH.sub(" ", clean.replace(",", " ")).strip()
    clean = " ".join(clean.split())
    if len(clean) > SMS_NAME_CHARS:
        clean = clean[: SMS_NAME_CHARS - 3].rstrip() + "..."
    return clean


def _fit(text: str) -> str:
    while septets(text) > SEGMENT_SEPTETS:
        text = text[:-1]
    return text
