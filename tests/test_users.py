"""The users a digest reports, held compactly: read back exactly as they were appended, in order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.mixpanel import NewUser
from notifier.users import SEPARATOR, Users, count_late

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Any text but a control character (what display text from Mixpanel can be, and lone surrogates).
SHOWN = st.text(st.characters(exclude_categories=["Cc"]), max_size=12)
# A distinct id is kept as it came: the separator, lone surrogates and all.
IDS = st.text(st.characters(exclude_categories=()), max_size=8) | st.sampled_from(["a", "a\x1f", "a\x00b"])
# Few instants, so that many users share one: the id decides their order.
CREATED = st.sampled_from(
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 11, 28, 8, 0, tzinfo=UTC),
        datetime(2026, 11, 28, 8, 0, 0, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    ]
)


@st.composite
def user_lists(draw: st.DrawFn) -> list[NewUser]:
    extras = draw(st.integers(0, 3))
    user = st.builds(
        NewUser,
        distinct_id=IDS,
        name=SHOWN,
        email=SHOWN,
        created=CREATED,
        extra=st.tuples(*[SHOWN] * extras),
        late=st.booleans(),
    )
    return draw(st.lists(user, max_size=30))


def held(users: list[NewUser]) -> Users:
    made = Users()
    for user in users:
        made.append(user)
    return made


@given(user_lists())
def test_users_read_back_as_appended_then_in_created_then_id_order(users: list[NewUser]) -> None:
    compact = held(users)
    assert list(compact) == users
    compact.sort()
    ordered = sorted(users, key=lambda user: (user.created, user.distinct_id))
    assert list(compact) == ordered
    assert [compact[n] for n in range(-len(users), len(users))] == ordered * 2
    assert compact[1:-1] == ordered[1:-1]
    assert len(compact) == len(users)


@given(user_lists())
def test_each_column_reads_as_the_users_do(users: list[NewUser]) -> None:
    compact = held(users)
    compact.sort()
    ordered = list(compact)
    assert list(compact.distinct_ids()) == [user.distinct_id for user in ordered]
    assert list(compact.emails()) == [user.email for user in ordered]
    for index in range(len(ordered[0].extra) if ordered else 0):
        assert list(compact.extra_values(index)) == [user.extra[index] for user in ordered]
    assert compact.late == count_late(users) == count_late(compact) == sum(user.late for user in users)


@given(user_lists(), CREATED, st.integers(0, 10**9))
def test_on_time_counts_the_users_not_late_created_in_the_range(
    users: list[NewUser], start: datetime, seconds: int
) -> None:
    begin = (start - EPOCH) // timedelta(seconds=1)
    end = begin + seconds
    expected = sum(
        1
        for user in users
        if not user.late and timedelta(seconds=begin) <= user.created - EPOCH < timedelta(seconds=end)
    )
    assert held(users).on_time_in(begin, end) == expected


def test_a_shown_value_with_the_separator_or_a_different_number_of_extras_is_refused() -> None:
    users = Users()
    users.append(NewUser("a", "Ada", "ada@example.com", datetime(2026, 1, 1, tzinfo=UTC), ("pro",)))
    with pytest.raises(ValueError, match="control character"):
        users.append(NewUser("b", f"Bob{SEPARATOR}", "", datetime(2026, 1, 1, tzinfo=UTC), ("pro",)))
    with pytest.raises(ValueError, match="extra values"):
        users.append(NewUser("c", "Cy", "", datetime(2026, 1, 1, tzinfo=UTC)))
    assert [user.distinct_id for user in users] == ["a"]


def test_an_empty_list_of_users() -> None:
    users = Users()
    users.sort()
    assert not users
    assert list(users) == []
    assert users.late == 0
    assert users.on_time_in(0, 2**40) == 0
    assert users[:1] == []
    with pytest.raises(IndexError):
        users[-1]


def test_created_keeps_its_microseconds_and_is_utc() -> None:
    created = datetime(2026, 3, 29, 1, 30, 0, 123_456, tzinfo=UTC) + timedelta(microseconds=1)
    users = held([NewUser("a", "", "", created)])
    assert users[0].created == created
    assert users[0].created.tzinfo is UTC
