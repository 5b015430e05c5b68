"""The trigger message (the Pub/Sub message's data) and the window of time it asks about.

The window is half-open, ``start <= $created < end``. Without an explicit ``start``/``end`` it ends
at the message's ``publishTime`` truncated to the minute, so a redelivery covers the same window
and scheduler ticks whose interval equals the lookback tile time with no gap and no overlap.
An explicit window's bounds round up to the whole second, which keeps the half-open rule exact for
whole-second sign-up dates. A window must be one the run can show in TIMEZONE (`check_shown`).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from notifier.errors import BadMessage
from notifier.span import Span
from notifier.variables import BY_NAME, CHANNEL_VARIABLES, MAX_LOOKBACK_MINUTES

MAX_WINDOW = timedelta(minutes=MAX_LOOKBACK_MINUTES)


def _largest(name: str) -> int:
    largest = BY_NAME[name].maximum
    if largest is None:
        raise KeyError(f"{name} has no maximum")
    return largest


# The farthest a run may look back from its window's end: MAX_CATCH_UP_MINUTES, then
# LATE_ARRIVAL_MINUTES, each at the largest the function accepts.
WIDEST_REACH = timedelta(minutes=_largest("MAX_CATCH_UP_MINUTES") + _largest("LATE_ARRIVAL_MINUTES"))
DAY = timedelta(days=1)
CHANNELS = tuple(CHANNEL_VARIABLES)
FIELDS = ("lookback_minutes", "start", "end", "dry_run", "channels")

# RFC 3339 demands an offset; datetime.fromisoformat alone would accept naive times. Matched whole
# (`fullmatch`: `$` would let a final newline through), with ASCII digits only.
_RFC3339 = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]([0-9]{2}:[0-9]{2}:[0-9]{2})(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


@dataclass(frozen=True)
class Trigger:
    """What one message asks for: the window, whether to send, and on which channels."""

    window: Span
    dry_run: bool = False
    channels: frozenset[str] | None = None  # None: every configured channel
    explicit: bool = False  # the window came as start/end (a backfill), not as a lookback

    @property
    def scheduled(self) -> bool:
        """A plain lookback message, as the scheduler sends: it claims its time in the run history."""
        return not self.explicit and self.channels is None


def parse_timestamp(text: str, *, field: str) -> datetime:
    """Parse an RFC 3339 timestamp with an offset into an aware UTC datetime.

    Digits past the microsecond (Pub/Sub's publishTime carries nanoseconds) are dropped: the instant
    is truncated, never rounded up, so a publishTime one nanosecond before a minute stays in it.
    """
    moment, digits = _parse(text, field)
    return moment + timedelta(microseconds=int(digits[:6].ljust(6, "0")))


def parse_bound(text: str, *, field: str) -> datetime:
    """Parse an explicit window bound, rounded up to the whole second, deciding on every digit given.

    `$created` has whole seconds, so rounding each bound up keeps ``start <= created < end`` exactly
    what the text says: 00:00:00.000000001 excludes a user created at 00:00:00, as the instant does.
    """
    moment, digits = _parse(text, field)
    if digits.strip("0") == "":
        return moment
    try:
        return moment + timedelta(seconds=1)
    except OverflowError:
        raise BadMessage(
            f"{field} is past the years a date can hold: {_preview(text)}", field=field
        ) from None


def _parse(text: str, field: str) -> tuple[datetime, str]:
    """The whole-second UTC instant `text` names and the digits of its fraction."""
    match = _RFC3339.fullmatch(text)
    if not match:
        raise BadMessage(
            f"{field} must be an RFC 3339 timestamp with an offset, "
            f"like 2026-01-31T09:00:00Z; got {_preview(text)}",
            field=field,
        )
    date, clock, fraction, offset = match.groups()
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        return datetime.fromisoformat(f"{date}T{clock}{offset}").astimezone(UTC), (fraction or ".")[1:]
    except (ValueError, OverflowError):
        raise BadMessage(f"{field} is not a real date and time: {_preview(text)}", field=field) from None


def truncate_to_minute(moment: datetime) -> datetime:
    """The whole UTC minute that contains `moment`."""
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def decode_data(data: object) -> bytes:
    """The raw bytes of a Pub/Sub message's base64 `data` field (absent means empty)."""
    if data is None or data in ("", b""):
        return b""
    if not isinstance(data, str | bytes):
        raise BadMessage(f"message data must be a base64 string; got {type(data).__name__}", field="data")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadMessage("message data is not valid base64") from None


def parse_trigger(
    data: bytes,
    *,
    publish_time: datetime,
    default_lookback: int,
    zone: tzinfo | None = None,
    reach_back: timedelta = WIDEST_REACH,
) -> Trigger:
    """Validate the message data and work out its window; raise BadMessage saying what is wrong.

    The window must be one the run can show in `zone` (None: in every zone), looking back as far as
    `reach_back` from its end (see `check_shown`).
    """
    fields = _load_object(data)
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise BadMessage(
            f"unknown field(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(FIELDS)}",
            field=unknown[0],
        )
    try:
        window = _window(fields, publish_time=publish_time, default_lookback=default_lookback)
    except OverflowError:
        raise BadMessage("the window reaches past the years a date can hold", field="publishTime") from None
    explicit = "start" in fields
    check_shown(window, zone=zone, reach_back=reach_back, fields=("start", "end") if explicit else None)
    dry_run = fields.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise BadMessage(f"dry_run must be true or false; got {_preview(dry_run)}", field="dry_run")
    return Trigger(window=window, dry_run=dry_run, channels=_channels(fields), explicit=explicit)


def check_shown(
    window: Span, *, zone: tzinfo | None, reach_back: timedelta, fields: tuple[str, str] | None = None
) -> None:
    """Raise BadMessage unless every instant a run shows for `window` fits the calendar in `zone`.

    A run shows the window, compares it with the window of the same length before it (the trend), and
    looks up to `reach_back` before its end (missed time to catch up, then late arrivals); rendering
    steps up to a day either side. All of that must lie within the years 1 to 9999 in `zone`, or in
    every zone when `zone` is None. `fields` names the message's start and end fields, if it has them.
    """
    shown_in = "every time zone" if zone is None else str(getattr(zone, "key", zone))
    margin = DAY if zone is not None else 2 * DAY  # no zone is a day or more away from UTC
    looks_back = max(2 * timedelta(seconds=window.seconds), reach_back) + margin
    start_field, end_field = fields or ("publishTime", "publishTime")
    try:
        (window.end_at - looks_back).astimezone(zone or UTC)
    except OverflowError:
        raise BadMessage(
            f"the window starts too close to the year 1 to be shown in {shown_in}: a run looks back up "
            f"to {_days(looks_back)} from its end (missed time, late arrivals, the trend), all of which "
            "must fall after the year 1 there",
            field=start_field,
        ) from None
    try:
        window.end_at.astimezone(zone or UTC) + margin
    except OverflowError:
        raise BadMessage(
            f"the window ends too close to the year 10000 to be shown in {shown_in}: it must end "
            f"at least {_days(margin)} before the year 10000 there",
            field=end_field,
        ) from None


def _days(length: timedelta) -> str:
    days = math.ceil(length / DAY)
    return "a day" if days == 1 else f"{days} days"


def _load_object(data: bytes) -> Mapping[str, Any]:
    if not data:
        return {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadMessage("message data is not UTF-8") from None
    try:
        fields = json.loads(text)
    except (ValueError, RecursionError):  # ValueError also covers integers past 4,300 digits
        raise BadMessage(f"message data is not JSON (or holds a number too long): {_preview(text)}") from None
    if not isinstance(fields, dict):
        raise BadMessage(f"message data must be a JSON object; got {type(fields).__name__}")
    return fields


def _window(fields: Mapping[str, Any], *, publish_time: datetime, default_lookback: int) -> Span:
    has_start, has_end = "start" in fields, "end" in fields
    if has_start or has_end:
        if not (has_start and has_end):
            missing = "end" if has_start else "start"
            raise BadMessage("start and end come together: both or neither", field=missing)
        if "lookback_minutes" in fields:
            raise BadMessage("lookback_minutes cannot be combined with start/end", field="lookback_minutes")
        start = _bound_field(fields, "start")
        end = _bound_field(fields, "end")
        if not start < end:
            raise BadMessage("start must be before end", field="start")
        if end - start > MAX_WINDOW:
            days = MAX_LOOKBACK_MINUTES // (24 * 60)
            raise BadMessage(f"the window from start to end is longer than {days} days", field="end")
        return Span.between(start, end)
    lookback = fields.get("lookback_minutes", default_lookback)
    if isinstance(lookback, bool) or not isinstance(lookback, int):
        raise BadMessage(
            f"lookback_minutes must be an integer; got {_preview(lookback)}",
            field="lookback_minutes",
        )
    if not 1 <= lookback <= MAX_LOOKBACK_MINUTES:
        raise BadMessage(
            f"lookback_minutes must be between 1 and {MAX_LOOKBACK_MINUTES}; got {lookback}",
            field="lookback_minutes",
        )
    return Span.ending(truncate_to_minute(publish_time), lookback)


def _bound_field(fields: Mapping[str, Any], name: str) -> datetime:
    value = fields[name]
    if not isinstance(value, str):
        raise BadMessage(f"{name} must be a string timestamp; got {_preview(value)}", field=name)
    return parse_bound(value, field=name)


def _channels(fields: Mapping[str, Any]) -> frozenset[str] | None:
    if "channels" not in fields:
        return None
    value = fields["channels"]
    if not isinstance(value, list) or not value:
        raise BadMessage('channels must be a non-empty array of "email", "sms", "slack"', field="channels")
    for item in value:
        if item not in CHANNELS:
            raise BadMessage(
                f'channels may hold only "email", "sms" and "slack"; got {_preview(item)}',
                field="channels",
            )
    return frozenset(value)


def _preview(value: object, limit: int = 60) -> str:
    try:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
    except (ValueError, RecursionError):
        return f"a {type(value).__name__} too large to show"
    return repr(text[:limit] + "…") if len(text) > limit else repr(text)
