"""What every digest says (notifier/render/report.py): the window, missed time, the trend, links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.mixpanel import NewUser
from notifier.quiet_hours import HeldTexts
from notifier.render.csv import render_csv
from notifier.render.email import render_email
from notifier.render.report import (
    Catchup,
    Report,
    describe_window,
    duration,
    missed,
    profile_url,
    showable,
    trend,
    user_time,
)
from notifier.render.slack import render_slack
from notifier.render.sms import render_sms
from notifier.span import Span
from notifier.users import Users
from tests.render_helpers import ANY_INSTANT, BERLIN, UTC_ZONE, WINDOW, report, user


def test_a_window_within_a_day_names_the_date_once() -> None:
    assert describe_window(WINDOW, BERLIN) == "28 Nov 2026, 09:00–10:00 CET"
    assert describe_window(WINDOW, BERLIN, short=True) == "28 Nov 09:00-10:00 CET"


def test_a_window_ending_at_midnight_is_one_day() -> None:
    window = Span.between(datetime(2026, 11, 28, 23, 0, tzinfo=UTC), datetime(2026, 11, 29, 0, 0, tzinfo=UTC))
    assert describe_window(window, UTC_ZONE) == "28 Nov 2026, 23:00–24:00 UTC"
    whole_day = Span.between(datetime(2026, 11, 27, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC))
    assert describe_window(whole_day, UTC_ZONE) == "27 Nov 2026, 00:00–24:00 UTC"


def test_a_window_across_midnight_names_both_days() -> None:
    window = Span.between(
        datetime(2026, 11, 27, 22, 0, tzinfo=UTC), datetime(2026, 11, 28, 22, 0, tzinfo=UTC)
    )
    assert describe_window(window, UTC_ZONE) == "27 Nov 2026, 22:00 – 28 Nov 2026, 22:00 UTC"
    assert describe_window(window, UTC_ZONE, short=True) == "27 Nov 22:00-28 Nov 22:00 UTC"


def test_a_window_across_a_change_of_clocks_names_both_zones() -> None:
    # 25 Oct 2026, Berlin: 03:00 CEST becomes 02:00 CET. 00:00-01:00 UTC is 02:00 CEST-02:00 CET.
    window = Span.between(datetime(2026, 10, 25, 0, 0, tzinfo=UTC), datetime(2026, 10, 25, 1, 0, tzinfo=UTC))
    assert describe_window(window, BERLIN) == "25 Oct 2026, 02:00 CEST–02:00 CET"


def test_times_are_compact_within_a_day_and_dated_otherwise() -> None:
    assert user_time(user(61), report([], BERLIN)) == "09:01"
    long = Span.between(WINDOW.start_at - timedelta(days=1), WINDOW.end_at)
    assert user_time(user(61), Report([], long, BERLIN)) == "28 Nov 09:01"


@pytest.mark.parametrize(
    ("now", "before", "said"),
    [
        (7, 3, "4 more than the hour before"),
        (3, 7, "4 fewer than the hour before"),
        (5, 5, "as many as the hour before"),
    ],
)
def test_the_trend_compares_with_the_previous_window_of_the_same_length(
    now: int, before: int, said: str
) -> None:
    assert trend(report([], window_users=now, previous_users=before)) == said


def test_no_trend_without_the_previous_count() -> None:
    assert trend(report([], window_users=3)) is None


def test_missed_time_says_how_long_and_since_when() -> None:
    catchup = Catchup(datetime(2026, 11, 28, 6, 0, tzinfo=UTC), 7200)
    assert missed(report([], BERLIN, catchup=catchup)) == "including 2 h missed since 07:00"
    assert duration(90 * 60) == "1 h 30 min"
    assert duration(3 * 86400) == "3 days"


def test_profile_links_insert_the_distinct_id_url_encoded() -> None:
    template = "https://admin.example.com/users/{distinct_id}?tab=1"
    linked = report([], profile_url_template=template)
    assert profile_url(linked, NewUser("a/b c?d&e#f", "", "", WINDOW.start_at)) == (
        "https://admin.example.com/users/a%2Fb%20c%3Fd%26e%23f?tab=1"
    )
    assert profile_url(linked, NewUser("", "", "", WINDOW.start_at)) is None
    assert profile_url(report([]), user(1)) is None


@given(st.text(min_size=1, max_size=60))
def test_no_id_can_change_where_a_profile_link_goes(distinct_id: str) -> None:
    linked = report([], profile_url_template="https://admin.example.com/u/{distinct_id}")
    url = profile_url(linked, NewUser(distinct_id, "", "", WINDOW.start_at))
    assert url is not None
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "admin.example.com")
    assert parts.path.startswith("/u/")
    assert unquote(parts.path[3:]) == distinct_id
    assert not parts.query
    assert not parts.fragment


def test_users_sort_by_created_then_id() -> None:
    a = NewUser("b", "", "", datetime(2026, 1, 1, tzinfo=UTC))
    b = NewUser("a", "", "", datetime(2026, 1, 1, tzinfo=UTC))
    c = NewUser("c", "", "", datetime(2025, 1, 1, tzinfo=UTC))
    users = Users()
    for one in (a, b, c):
        users.append(one)
    users.sort()
    assert list(users) == [c, b, a]


@given(st.sampled_from(["UTC", "Europe/Berlin", "Asia/Kolkata", "America/St_Johns", "Pacific/Chatham"]))
def test_every_zone_reads_as_a_window(zone: str) -> None:
    text = describe_window(WINDOW, ZoneInfo(zone))
    assert "–" in text
    assert text.startswith("28 Nov 2026")


# -- windows at the ends of the calendar --------------------------------------------------------------
def test_a_window_with_no_date_in_the_zone_is_shown_in_utc() -> None:
    last = Span.between(datetime(9999, 12, 31, 22, 0, tzinfo=UTC), datetime(9999, 12, 31, 23, 0, tzinfo=UTC))
    assert describe_window(last, ZoneInfo("Asia/Tokyo")) == "31 Dec 9999, 22:00–23:00 UTC"
    first = Span.between(datetime(1, 1, 1, 0, 0, tzinfo=UTC), datetime(1, 1, 1, 1, 0, tzinfo=UTC))
    assert describe_window(first, ZoneInfo("America/New_York")) == "01 Jan 1, 00:00–01:00 UTC"


def test_a_report_that_cannot_be_shown_in_its_zone_is_shown_in_utc_on_every_channel() -> None:
    last = Span.between(datetime(9999, 12, 31, 22, 0, tzinfo=UTC), datetime(9999, 12, 31, 23, 0, tzinfo=UTC))
    tokyo = Report([NewUser("a", "Ada", "ada@acme.com", last.start_at)], last, ZoneInfo("Asia/Tokyo"))
    assert showable(tokyo).zone.key == "UTC"
    assert "31 Dec 9999, 22:00–23:00 UTC" in render_email(tokyo, row_limit=1).subject
    assert render_sms(tokyo) == "Mixpanel: 1 new user 31 Dec 22:00-23:00 UTC: Ada"
    assert (
        render_slack(tokyo, email_on=False)["blocks"][1]["elements"][0]["text"]
        == "31 Dec 9999, 22:00–23:00 UTC"
    )
    assert b"9999-12-31 22:00:00" in render_csv(tokyo)
    assert showable(report([user(1)], BERLIN)).zone is BERLIN  # any other time stays in its zone


MIN_UTC, MAX_UTC = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


@given(
    ANY_INSTANT,
    st.booleans(),
    st.integers(min_value=1, max_value=31 * 24 * 60),
    st.sampled_from(sorted(available_timezones())),
)
def test_no_window_valid_in_utc_stops_a_digest_in_any_zone(
    anchor: datetime, anchor_starts: bool, minutes: int, zone: str
) -> None:
    span = timedelta(minutes=minutes)
    anchor = anchor.replace(microsecond=0)
    start = (
        min(anchor, MAX_UTC.replace(microsecond=0) - span)
        if anchor_starts
        else max(anchor, MIN_UTC + span) - span
    )
    window = Span.between(start, start + span)
    users = [
        NewUser("a", "Ada", "ada@acme.com", window.start_at),
        NewUser("b", "Bob", "", window.end_at - span / 2),
    ]
    digest = Report(
        users,
        window,
        ZoneInfo(zone),
        catchup=Catchup(window.start_at, 60),
        held_texts=HeldTexts(2, window.start_at),
    )
    shown = showable(digest).zone
    assert shown.key in (zone, "UTC")
    assert render_email(digest, row_limit=1).subject.endswith(describe_window(window, shown))
    assert describe_window(window, ZoneInfo(zone)) == describe_window(window, shown)
    assert "new users" in render_sms(digest)
    assert render_slack(digest, email_on=True)["blocks"]
    assert render_csv(digest).count(b"\r\n") == 3
