"""Quiet hours for texts (SMS_QUIET_HOURS): the local times of day when no SMS is sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class QuietHours:
    """From `start` up to but not including `end`, local time; wraps midnight when end < start."""

    start: time
    end: time


@dataclass(frozen=True)
class HeldTexts:
    """Users found while texts were held, since `since`: the first text after quiet hours counts them."""

    users: int
    since: datetime


def in_quiet_hours(moment: datetime, quiet: QuietHours, zone: ZoneInfo) -> bool:
    """Whether the clock in `zone` reads a quiet time at the instant `moment`.

    The clock is read as people see it: across a change of clocks, a reading that is skipped never
    comes and one that happens twice is quiet both times. Equal start and end are never quiet.
    """
    now = _clock(moment, zone)
    if quiet.start <= quiet.end:
        return quiet.start <= now < quiet.end
    return now >= quiet.start or now < quiet.end


def _clock(moment: datetime, zone: ZoneInfo) -> time:
    try:
        return moment.astimezone(zone).time()
    except OverflowError:
        # Within a day of the calendar's ends the local date does not exist; the day beside it,
        # one whole day nearer, reads the same time of day (no zone changes its clocks there).
        nearer = moment - timedelta(days=1) if moment.year > 1 else moment + timedelta(days=1)
        return nearer.astimezone(zone).time()
