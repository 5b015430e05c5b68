"""Users and reports for the rendering tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from notifier.mixpanel import NewUser
from notifier.render.report import Report
from notifier.span import Span
from tests.conftest import WINDOW_END, WINDOW_START

WINDOW = Span.between(WINDOW_START, WINDOW_END)
UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")


def user(n: int, name: str = "", email: str = "", **fields: object) -> NewUser:
    """User n, created n seconds into the window."""
    return NewUser(
        f"id-{n}",
        name or f"User {n}",
        email or f"user{n}@example.com",
        WINDOW_START + timedelta(seconds=n),
        **fields,  # type: ignore[arg-type]
    )


def report(users: list[NewUser], zone: ZoneInfo = UTC_ZONE, **fields: object) -> Report:
    """A report of `users` for the 08:00-09:00 UTC window."""
    return Report(users, WINDOW, zone, **fields)  # type: ignore[arg-type]


# Any instant valid in UTC, the last and first days of the calendar as often as the rest: there a
# zone far from UTC has no date to show.
ANY_INSTANT = st.one_of(
    st.datetimes(),
    st.datetimes(min_value=datetime.max - timedelta(days=2)),
    st.datetimes(max_value=datetime.min + timedelta(days=2)),
).map(lambda moment: moment.replace(tzinfo=UTC))
