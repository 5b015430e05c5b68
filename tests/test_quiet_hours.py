"""Quiet hours for texts (SPEC: What the digest tells): no text from 22:00 up to but not including
07:00 in TIMEZONE, across midnight and changes of clocks; the first text after counts the held users."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.quiet_hours import HeldTexts, QuietHours, in_quiet_hours
from notifier.render.gsm7 import SEGMENT_SEPTETS, septets
from notifier.render.report import Report
from notifier.render.sms import render_sms
from notifier.span import Span
from tests.render_helpers import ANY_INSTANT, BERLIN, user

NIGHT = QuietHours(time(22, 0), time(7, 0))
ZONES = sorted(available_timezones())
# Europe/Berlin, 2026: clocks go from 02:00 to 03:00 on 29 March, from 03:00 back to 02:00 on 25 October.
SPRING_FORWARD = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
FALL_BACK = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)


def berlin(day: int, hour: int, minute: int = 0, *, month: int = 11) -> datetime:
    """A Berlin wall-clock time in November 2026 (CET, UTC+1), as the UTC instant a run sees."""
    return datetime(2026, month, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


@pytest.mark.parametrize(
    ("local", "quiet"),
    [
        ((27, 21, 59), False),
        ((27, 22, 0), True),
        ((27, 23, 59), True),
        ((28, 0, 0), True),
        ((28, 6, 59), True),
        ((28, 7, 0), False),  # up to but not including 07:00
        ((28, 12, 0), False),
    ],
)
def test_from_22_00_up_to_07_00_across_midnight(local: tuple[int, int, int], quiet: bool) -> None:
    assert in_quiet_hours(berlin(*local), NIGHT, BERLIN) is quiet


def test_quiet_hours_within_one_day() -> None:
    lunch = QuietHours(time(12, 0), time(13, 30))
    assert [
        in_quiet_hours(berlin(28, h, m), lunch, BERLIN) for h, m in [(11, 59), (12, 0), (13, 29), (13, 30)]
    ] == [
        False,
        True,
        True,
        False,
    ]


def test_equal_start_and_end_are_never_quiet() -> None:
    assert not any(
        in_quiet_hours(berlin(28, hour), QuietHours(time(9), time(9)), BERLIN) for hour in range(24)
    )


def quiet_minutes(quiet: QuietHours, around: datetime) -> int:
    """Minutes of real time that are quiet in Berlin in the 24 hours from 12 h before `around`."""
    start = around - timedelta(hours=12)
    return sum(in_quiet_hours(start + timedelta(minutes=m), quiet, BERLIN) for m in range(24 * 60))


def test_a_night_with_an_hour_skipped_is_an_hour_shorter() -> None:
    assert quiet_minutes(NIGHT, SPRING_FORWARD) == 8 * 60
    # The skipped hour itself never comes: quiet hours inside it are never quiet.
    assert quiet_minutes(QuietHours(time(2, 0), time(3, 0)), SPRING_FORWARD) == 0
    assert not in_quiet_hours(SPRING_FORWARD, QuietHours(time(2, 0), time(3, 0)), BERLIN)


def test_a_night_with_an_hour_twice_is_an_hour_longer_and_both_are_quiet() -> None:
    assert quiet_minutes(NIGHT, FALL_BACK) == 10 * 60
    twice = QuietHours(time(2, 0), time(3, 0))
    assert quiet_minutes(twice, FALL_BACK) == 2 * 60
    first, second = (
        FALL_BACK - timedelta(minutes=30),
        FALL_BACK + timedelta(minutes=30),
    )  # 02:30 CEST, 02:30 CET
    assert in_quiet_hours(first, twice, BERLIN)
    assert in_quiet_hours(second, twice, BERLIN)


clock_times = st.times()


@given(ANY_INSTANT, clock_times, clock_times, st.sampled_from(ZONES))
def test_any_instant_is_quiet_in_exactly_one_of_two_complementary_spans(
    moment: datetime, start: time, end: time, zone: str
) -> None:
    # Also at the ends of the calendar, where the local date does not exist: no zone ever raises.
    one = in_quiet_hours(moment, QuietHours(start, end), ZoneInfo(zone))
    other = in_quiet_hours(moment, QuietHours(end, start), ZoneInfo(zone))
    assert (one != other) if start != end else not (one or other)


@pytest.mark.parametrize(
    ("moment", "zone", "quiet"),
    [
        (datetime(9999, 12, 31, 23, 0, tzinfo=UTC), "Asia/Tokyo", False),  # 08:00 on a day past 9999
        (datetime(9999, 12, 31, 14, 0, tzinfo=UTC), "Asia/Tokyo", True),  # 23:00
        (datetime(1, 1, 1, 3, 0, tzinfo=UTC), "America/New_York", True),  # 22:03, local mean time
    ],
)
def test_at_the_ends_of_the_calendar_the_clock_still_reads(moment: datetime, zone: str, quiet: bool) -> None:
    assert in_quiet_hours(moment, NIGHT, ZoneInfo(zone)) is quiet


# -- the first text after quiet hours ---------------------------------------------------------------
MORNING = Span.between(berlin(28, 6), berlin(28, 7))


def test_the_first_text_after_counts_everyone_since_the_last_text() -> None:
    held = HeldTexts(users=5, since=berlin(27, 22))
    body = render_sms(
        Report([user(1, "Ada"), user(2, "Bob")], MORNING, BERLIN, label="Acme iOS", held_texts=held)
    )
    assert body == "Acme iOS: 7 new users since 22:00 CET: Ada, Bob +5 more"


def test_held_users_are_counted_even_when_the_morning_found_nobody() -> None:
    held = HeldTexts(users=3, since=berlin(27, 22))
    assert render_sms(Report([], MORNING, BERLIN, label="Acme iOS", held_texts=held)) == (
        "Acme iOS: 3 new users since 22:00 CET"
    )


def test_a_day_or_more_since_the_last_text_is_dated() -> None:
    held = HeldTexts(users=1, since=berlin(26, 22))
    assert render_sms(Report([], MORNING, BERLIN, label="Acme iOS", held_texts=held)) == (
        "Acme iOS: 1 new user since 26 Nov 22:00 CET"
    )


@given(
    st.integers(min_value=0, max_value=10**7),
    st.lists(st.text(max_size=40), max_size=20),
    st.integers(min_value=1, max_value=31 * 24 * 60),
    st.sampled_from(ZONES),
    st.text(max_size=70),
)
def test_the_text_after_quiet_hours_is_always_one_gsm7_segment_and_counts_everyone(
    held: int, names: list[str], minutes_held: int, zone: str, label: str
) -> None:
    users = [user(n, name) for n, name in enumerate(names)]
    since = MORNING.end_at - timedelta(minutes=minutes_held)
    report = Report(users, MORNING, ZoneInfo(zone), label=label or "Acme", held_texts=HeldTexts(held, since))
    body = render_sms(report)
    assert septets(body) <= SEGMENT_SEPTETS
    total = held + len(users)
    assert f"{total:,} new user" in body if total else "no new users" in body
    assert " since " in body
