"""The trigger message and its window (SPEC: Trigger message, The window)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier.errors import BadMessage
from notifier.mixpanel import NewUser
from notifier.render.email import render_email
from notifier.render.report import Catchup, Report, describe_window
from notifier.render.slack import render_slack
from notifier.render.sms import render_sms
from notifier.span import Span
from notifier.trigger import Trigger, decode_data, parse_timestamp, parse_trigger
from tests.conftest import LogLines, World

PUBLISHED = datetime(2026, 11, 28, 9, 0, 42, 123456, tzinfo=UTC)


def parse(fields: object, published: datetime = PUBLISHED, default: int = 60) -> Trigger:
    data = fields if isinstance(fields, bytes) else json.dumps(fields).encode()
    return parse_trigger(data, publish_time=published, default_lookback=default)


def bad(fields: object) -> BadMessage:
    with pytest.raises(BadMessage) as caught:
        parse(fields)
    return caught.value


def test_empty_data_means_the_default_lookback_ending_at_the_published_minute() -> None:
    trigger = parse_trigger(b"", publish_time=PUBLISHED, default_lookback=60)
    assert trigger.window == Span.between(
        datetime(2026, 11, 28, 8, 0, tzinfo=UTC), datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    )
    assert trigger.dry_run is False
    assert trigger.channels is None


def test_an_empty_object_is_the_same_as_empty_data() -> None:
    assert parse({}) == parse_trigger(b"", publish_time=PUBLISHED, default_lookback=60)


def test_lookback_minutes_sets_the_window_length() -> None:
    window = parse({"lookback_minutes": 15}).window
    assert (window.start_at, window.end_at) == (
        datetime(2026, 11, 28, 8, 45, tzinfo=UTC),
        datetime(2026, 11, 28, 9, 0, tzinfo=UTC),
    )


@pytest.mark.parametrize("value", [1, 60, 1440, 44640])
def test_lookback_accepts_1_to_44640_minutes(value: int) -> None:
    assert parse({"lookback_minutes": value}).window.seconds / 60 == value


@pytest.mark.parametrize("value", [0, -5, 44641, 10**12])
def test_lookback_out_of_range_is_a_bad_message(value: int) -> None:
    assert bad({"lookback_minutes": value}).field == "lookback_minutes"


@pytest.mark.parametrize("value", ["60", 60.0, 60.5, True, None, [60], {"m": 60}])
def test_lookback_of_the_wrong_type_is_a_bad_message(value: object) -> None:
    error = bad({"lookback_minutes": value})
    assert error.field == "lookback_minutes"
    assert "integer" in str(error)


def test_publish_time_is_truncated_to_the_whole_minute_in_utc() -> None:
    published = datetime(2026, 11, 28, 10, 59, 59, 999999, tzinfo=UTC)
    assert parse({}, published).window.end_at == datetime(2026, 11, 28, 10, 59, tzinfo=UTC)


def test_a_redelivered_message_covers_exactly_the_same_window() -> None:
    first = parse({"lookback_minutes": 30})
    again = parse({"lookback_minutes": 30})
    assert first.window == again.window


@given(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
    st.integers(min_value=1, max_value=1440),
    st.integers(min_value=0, max_value=59),
)
def test_ticks_one_lookback_apart_tile_time_without_gap_or_overlap(
    first: datetime, lookback: int, jitter_seconds: int
) -> None:
    # Scheduler ticks land on minute boundaries; Pub/Sub publishes a few seconds later.
    tick = first.replace(tzinfo=UTC, second=0, microsecond=0)
    published = [tick + timedelta(minutes=lookback * n, seconds=jitter_seconds) for n in range(3)]
    windows = [parse({"lookback_minutes": lookback}, at).window for at in published]
    assert windows[0].end == windows[1].start
    assert windows[1].end == windows[2].start


def test_explicit_start_and_end_give_that_window_in_utc() -> None:
    window = parse({"start": "2026-11-01T00:00:00+01:00", "end": "2026-11-02T00:00:00Z"}).window
    assert window == Span.between(
        datetime(2026, 10, 31, 23, 0, tzinfo=UTC), datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
    )


def test_explicit_bounds_with_fractions_round_up_to_whole_seconds() -> None:
    # $created has whole seconds: rounding both bounds up keeps start <= created < end exact.
    window = parse({"start": "2026-11-01T00:00:00.2Z", "end": "2026-11-01T01:00:00.5Z"}).window
    assert window.start_at == datetime(2026, 11, 1, 0, 0, 1, tzinfo=UTC)
    assert window.end_at == datetime(2026, 11, 1, 1, 0, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"start": "2026-11-01T00:00:00Z"}, "end"),
        ({"end": "2026-11-01T00:00:00Z"}, "start"),
        ({"start": "2026-11-01T00:00:00", "end": "2026-11-02T00:00:00Z"}, "start"),
        ({"start": "2026-11-01", "end": "2026-11-02T00:00:00Z"}, "start"),
        ({"start": "2026-11-01T00:00:00Z\n", "end": "2026-11-02T00:00:00Z"}, "start"),
        ({"start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z\n"}, "end"),
        ({"start": "２026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"}, "start"),
        ({"start": "2026-11-01T00:00:00Z", "end": 1764000000}, "end"),
        ({"start": "2026-02-30T00:00:00Z", "end": "2026-03-02T00:00:00Z"}, "start"),
        ({"start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, "start"),
        ({"start": "2026-11-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, "start"),
        ({"start": "2026-10-01T00:00:00Z", "end": "2026-11-01T00:00:01Z"}, "end"),
        (
            {"start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z", "lookback_minutes": 60},
            "lookback_minutes",
        ),
    ],
)
def test_bad_explicit_windows_are_bad_messages(fields: dict[str, object], field: str) -> None:
    assert bad(fields).field == field


def test_a_window_of_exactly_31_days_is_allowed() -> None:
    window = parse({"start": "2026-10-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"}).window
    assert window.end_at - window.start_at == timedelta(days=31)


def test_dry_run_must_be_a_boolean() -> None:
    assert parse({"dry_run": True}).dry_run is True
    assert bad({"dry_run": "yes"}).field == "dry_run"


def test_channels_selects_a_subset() -> None:
    assert parse({"channels": ["sms"]}).channels == frozenset({"sms"})
    assert parse({"channels": ["email", "sms", "email"]}).channels == frozenset({"email", "sms"})


@pytest.mark.parametrize("value", [[], "email", ["fax"], [None], ["Email"], {"email": True}])
def test_bad_channels_are_bad_messages(value: object) -> None:
    assert bad({"channels": value}).field == "channels"


def test_an_unknown_field_is_a_bad_message_that_names_it() -> None:
    error = bad({"lookback": 60})
    assert error.field == "lookback"
    assert "'lookback'" in str(error)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"{lookback_minutes: 5}", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b"null", "JSON object"),
        (b'"text"', "JSON object"),
        (b"[" * 100000, "not JSON"),
    ],
)
def test_data_that_is_not_a_json_object_is_a_bad_message(data: bytes, says: str) -> None:
    with pytest.raises(BadMessage, match=says):
        parse(data)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_a_trigger_or_the_documented_error(data: bytes) -> None:
    try:
        trigger = parse_trigger(data, publish_time=PUBLISHED, default_lookback=60)
    except BadMessage:
        return
    assert trigger.window.start < trigger.window.end


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)


@given(
    st.dictionaries(
        st.sampled_from(["lookback_minutes", "start", "end", "dry_run", "channels", "x"]), json_values
    )
)
def test_arbitrary_json_objects_give_a_trigger_or_the_documented_error(fields: dict[str, object]) -> None:
    try:
        trigger = parse(fields)
    except BadMessage:
        return
    assert timedelta(0) < trigger.window.end_at - trigger.window.start_at <= timedelta(days=31)


def test_pubsub_data_is_base64_and_absent_data_is_empty() -> None:
    assert decode_data("eyJkcnlfcnVuIjogdHJ1ZX0=") == b'{"dry_run": true}'
    assert decode_data(None) == b""
    with pytest.raises(BadMessage, match="base64"):
        decode_data("not base64!")


def test_publish_times_with_nanoseconds_are_truncated_to_the_microsecond() -> None:
    assert parse_timestamp("2026-11-28T09:00:42.123456789Z", field="publishTime") == datetime(
        2026, 11, 28, 9, 0, 42, 123456, tzinfo=UTC
    )
    assert parse_timestamp("2026-11-28T09:00:42.123456000Z", field="publishTime").microsecond == 123456


def window_for_publish_time(text: str) -> Span:
    published = parse_timestamp(text, field="publishTime")
    return parse_trigger(b"", publish_time=published, default_lookback=60).window


def test_a_publish_time_a_nanosecond_before_the_minute_stays_in_that_minute() -> None:
    window = window_for_publish_time("2026-11-28T09:00:59.999999001Z")
    assert window == Span.between(
        datetime(2026, 11, 28, 8, 0, tzinfo=UTC), datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    )


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    st.sampled_from(["", "0", "999999", "999999001", "999999999"])
    | st.text(alphabet="0123456789", max_size=12),
)
def test_the_window_ends_at_the_minute_the_publish_time_names_whatever_its_digits(
    moment: datetime, fraction: str
) -> None:
    moment = moment.replace(second=59)  # the last second of a minute: where rounding up would cross it
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"
    assert window_for_publish_time(text).end_at == moment.replace(second=0, microsecond=0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "bound"),
    [
        ("2026-11-01T00:00:00Z", datetime(2026, 11, 1, 0, 0, 0, tzinfo=UTC)),
        ("2026-11-01T00:00:00.000000000Z", datetime(2026, 11, 1, 0, 0, 0, tzinfo=UTC)),
        ("2026-11-01T00:00:00.000000001Z", datetime(2026, 11, 1, 0, 0, 1, tzinfo=UTC)),
        ("2026-11-01T00:00:59.999999999Z", datetime(2026, 11, 1, 0, 1, 0, tzinfo=UTC)),
    ],
)
def test_explicit_bounds_round_up_to_the_second_on_every_digit(text: str, bound: datetime) -> None:
    # A user created at a whole second s is inside [start, end) exactly when start <= s < end holds
    # for the instants the text names: with whole-second s, that is the bounds rounded up.
    window = parse({"start": text, "end": "2026-11-02T00:00:00Z"}).window
    assert window.start_at == bound
    window = parse({"start": "2026-10-31T00:00:00Z", "end": text}).window
    assert window.end_at == bound


# A window that cannot be shown in TIMEZONE -------------------------------------------------------

TOKYO_AT_THE_END = {"start": "9999-12-31T22:00:00Z", "end": "9999-12-31T23:00:00Z"}
NEW_YORK_AT_THE_START = {"start": "0001-01-01T00:00:00Z", "end": "0001-01-01T01:00:00Z"}
ZONES = sorted(available_timezones())
WEEK_AND_AN_HOUR = timedelta(days=7, hours=1)  # MAX_CATCH_UP_MINUTES and LATE_ARRIVAL_MINUTES by default


def parse_in(fields: dict[str, str], zone: str | None, reach_back: timedelta = WEEK_AND_AN_HOUR) -> Trigger:
    return parse_trigger(
        json.dumps(fields).encode(),
        publish_time=PUBLISHED,
        default_lookback=60,
        zone=None if zone is None else ZoneInfo(zone),
        reach_back=reach_back,
    )


@pytest.mark.parametrize(
    ("fields", "zone", "field", "says"),
    [
        (TOKYO_AT_THE_END, "Asia/Tokyo", "end", "too close to the year 10000 to be shown in Asia/Tokyo"),
        (NEW_YORK_AT_THE_START, "America/New_York", "start", "too close to the year 1"),
        (TOKYO_AT_THE_END, None, "end", "shown in every time zone"),
    ],
)
def test_a_window_at_the_ends_of_the_calendar_is_a_bad_message(
    fields: dict[str, str], zone: str | None, field: str, says: str
) -> None:
    with pytest.raises(BadMessage, match=says) as caught:
        parse_in(fields, zone)
    assert caught.value.field == field


def test_the_catch_up_reach_before_the_window_must_be_shown_too() -> None:
    fields = {"start": "0001-01-05T00:00:00Z", "end": "0001-01-05T01:00:00Z"}
    assert parse_in(fields, "UTC", reach_back=timedelta(days=1)).window.start_at.year == 1
    with pytest.raises(BadMessage, match="looks back up to 9 days"):
        parse_in(fields, "UTC", reach_back=WEEK_AND_AN_HOUR)


def test_the_trend_s_previous_window_must_be_shown_too() -> None:
    fields = {"start": "0001-01-10T00:00:00Z", "end": "0001-01-26T00:00:00Z"}  # the 16 days before: year 0
    with pytest.raises(BadMessage, match="looks back up to 33 days"):
        parse_in(fields, "UTC", reach_back=timedelta(0))


def test_a_window_a_few_days_from_either_end_is_shown_in_every_zone() -> None:
    for fields in (
        {"start": "0001-01-10T00:00:00Z", "end": "0001-01-10T01:00:00Z"},
        {"start": "9999-12-28T22:00:00Z", "end": "9999-12-28T23:00:00Z"},
    ):
        assert parse_in(fields, None).explicit


@st.composite
def windows_near_the_ends(draw: st.DrawFn, max_minutes: int = 44640) -> dict[str, str]:
    """start/end of a window of up to `max_minutes` within two months of either end of the calendar."""
    start = draw(
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(1, 3, 1))
        | st.datetimes(min_value=datetime(9999, 11, 1), max_value=datetime(9999, 12, 31, 23, 58, 59))
    ).replace(microsecond=0)
    room = (datetime.max - start) // timedelta(minutes=1)
    end = start + timedelta(minutes=draw(st.integers(min_value=1, max_value=min(max_minutes, room))))
    return {"start": f"{start.isoformat()}Z", "end": f"{end.isoformat()}Z"}


@given(windows_near_the_ends(), st.sampled_from(ZONES), st.integers(min_value=0, max_value=44640 + 1440))
def test_every_window_accepted_can_be_rendered_with_its_catch_up_and_trend(
    fields: dict[str, str], zone: str, reach_minutes: int
) -> None:
    reach_back = timedelta(minutes=reach_minutes)
    try:
        window = parse_in(fields, zone, reach_back).window
    except BadMessage:
        return
    length = window.end_at - window.start_at
    earliest = min(window.start_at - length, window.end_at - reach_back)
    user = NewUser("u1", "Ada", "ada@example.com", window.start_at)
    report = Report(
        [user],
        window,
        ZoneInfo(zone),
        catchup=Catchup(since=earliest, seconds=int((window.start_at - earliest).total_seconds()) or 1),
        previous_users=3,
        window_users=1,
    )
    render_email(report, row_limit=5)
    render_sms(report)
    render_slack(report, email_on=True)
    describe_window(Span.between(window.start_at - length, window.start_at), ZoneInfo(zone))


@given(windows_near_the_ends(), st.sampled_from(ZONES))
def test_a_window_publish_accepts_for_every_zone_each_zone_accepts(fields: dict[str, str], zone: str) -> None:
    try:
        parse_in(fields, None, timedelta(days=32))
    except BadMessage:
        return
    parse_in(fields, zone, timedelta(days=32))


@pytest.mark.parametrize(
    ("fields", "zone"), [(TOKYO_AT_THE_END, "Asia/Tokyo"), (NEW_YORK_AT_THE_START, "America/New_York")]
)
def test_the_function_logs_one_error_and_acks_a_window_it_cannot_show(
    world: World, log_lines: LogLines, fields: dict[str, str], zone: str
) -> None:
    world.environ["TIMEZONE"] = zone
    world.users(fields["start"].replace(":00:00Z", ":30:00"))  # someone to render
    summary = world.deliver(json.dumps(fields).encode())  # returns: acked, not redelivered
    assert summary.outcome == "bad_message"
    errors = [line for line in log_lines.lines if json.loads(line)["severity"] == "ERROR"]
    assert len(errors) == 1
    assert "too close to the year" in errors[0]
    assert world.mixpanel.requests == []
    assert world.emails() == []


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(windows_near_the_ends(max_minutes=1440), st.sampled_from(ZONES))
def test_the_function_never_crashes_on_a_window_at_the_ends_of_the_calendar(
    world: World, fields: dict[str, str], zone: str
) -> None:
    world.environ["TIMEZONE"] = zone
    world.users(fields["start"].rstrip("Z"))  # someone to render, when the window is accepted
    world.examples += 1  # a message of its own per example
    summary = world.deliver(json.dumps(fields).encode(), message_id=f"edge-{world.examples}")
    assert summary.outcome in ("bad_message", "sent"), summary.error


@pytest.mark.parametrize("text", ["2026-11-28T09:00:00Z\n", "2026-11-28T09:00:00Z ", "٢026-11-28T09:00:00Z"])
def test_a_publish_time_is_rfc_3339_to_its_last_character(text: str) -> None:
    with pytest.raises(BadMessage, match="RFC 3339"):
        parse_timestamp(text, field="publishTime")
