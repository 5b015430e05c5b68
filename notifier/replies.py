"""Reading what providers answer, defensively: what a status means, and a short reason from an error
body of any shape, with no phone number, address or echo of the request in it. Shared by every
service (Mixpanel, Secret Manager, Firestore, SendGrid, Twilio, Slack), so an odd answer from any of
them is read the same careful way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from notifier import logs

MAX_DETAIL_CHARS = 200
ECHO = "•••"
# Keys under which the providers put a human-readable reason, most specific first:
# SendGrid errors[].message, Twilio message / RFC 9457 detail+title, Google error.message, Mixpanel error.
_REASON_KEYS = ("errors", "message", "detail", "title", "error", "error_description", "reason", "code")
# "+" and any digits (E.164 allows 2 to 15: +6834002 is a number), or 8 digits and more without it.
_PHONE = re.compile(r"\+\d[\d ().-]{0,20}\d|\d[\d ().-]{6,18}\d")
_EMAIL = re.compile(r"[^\s@<>()\"',;:]+@([^\s@<>()\"',;:]+\.[^\s@<>()\"',;:]+)")
_WORD = re.compile(r"\w+")


def is_transient_status(status: int) -> bool:
    """429 and 5xx may succeed later; other 4xx will not."""
    return status == 429 or status >= 500


def error_detail(body: object, limit: int = MAX_DETAIL_CHARS, *, sent: bytes = b"") -> str:
    """A short, one-line reason from an error body of any shape: secrets blanked, phones and addresses
    masked, and words of `sent` (the request's body: a person's name) that it repeats shown as ECHO."""
    text = logs.blank(_text(body))  # first: a mask or a cut could leave part of a secret unmatched
    try:
        parsed: Any = json.loads(text) if text.lstrip()[:1] in ("{", "[", '"') else None
    except (ValueError, RecursionError):
        parsed = None
    reason = _reason(parsed) if parsed is not None else None
    # Cut before masking: the masks are regular expressions, and a 100 KB body is not worth reading.
    detail = " ".join((reason if reason is not None else text)[: 4 * limit].split())
    detail = mask_echo(mask_contacts(detail), sent)
    if len(detail) > limit:
        detail = detail[: limit - 1] + "…"
    return detail or "(empty body)"


def _text(body: object) -> str:
    if isinstance(body, bytes | bytearray):
        return bytes(body[: 64 * 1024]).decode("utf-8", "replace")
    if isinstance(body, str):
        return body[: 64 * 1024]
    return "" if body is None else _reason(body) or ""


def _reason(value: object, depth: int = 0) -> str | None:
    """The first readable reason found in parsed JSON, looking a few levels down."""
    if depth > 4:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list):
        reasons = [r for item in value[:5] if (r := _reason(item, depth + 1))]
        return "; ".join(dict.fromkeys(reasons)) or None
    if isinstance(value, dict):
        found = (_reason(value[key], depth + 1) for key in _REASON_KEYS if key in value)
        return next((reason for reason in found if reason), None)
    return None


def mask_contacts(text: str) -> str:
    """Phone numbers down to their last 4 digits, email addresses down to their domain."""
    text = _EMAIL.sub(lambda m: f"•••@{m.group(1)}", text)
    return _PHONE.sub(lambda m: mask_phone(re.sub(r"\D", "", m.group(0))), text)


def mask_phone(number: str) -> str:
    """A phone number with all but its last 4 digits hidden, for logs."""
    digits = number.lstrip("+")
    shown = min(4, len(digits) // 2)  # never most of a short number (E.164 allows 2 to 15 digits)
    return "+" + "•" * (len(digits) - shown) + digits[len(digits) - shown :]


def mask_echo(text: str, sent: bytes) -> str:
    """`text` with every word that the request's values also hold shown as ECHO."""
    if not sent:
        return text
    words = {word.casefold() for value in _values(sent) for word in _WORD.findall(value)}
    return _WORD.sub(lambda m: ECHO if m[0].casefold() in words else m[0], text)


def _values(body: bytes) -> Iterator[str]:
    """The text values a request body carries: JSON strings, form values, or the text itself."""
    text = body.decode("utf-8", "replace")
    try:
        yield from _strings(json.loads(text))
        return
    except (ValueError, RecursionError):
        pass
    pairs = parse_qsl(text, keep_blank_values=True)
    if pairs and "=" in text:
        yield from (value for _key, value in pairs)
        return
    yield text


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
