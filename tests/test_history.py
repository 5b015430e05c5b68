"""The history's rules (SPEC: Durable state), with no I/O: which time each scheduled digest covers.

Every instant after the first digest and inside the catch-up horizon goes to exactly one digest,
whatever order ticks arrive in, however many are lost or delivered twice.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.channels import DeliveryStatus
from notifier.errors import InProgress
from notifier.state import Mark, RunRequest, RunState, Span, Start
from notifier.state.history import (
    MAX_COUNTS,
    Coverage,
    RunRecord,
    claim,
    closed,
    count_key,
    counted,
    finished,
    intersect,
    marked,
    merge,
    released,
    subtract,
)

HOUR = 3600
WEEK = 7 * 24 * HOUR
T0 = 1_795_852_800  # 2026-11-28T08:00:00Z


def tick(
    k: int, *, message: str | None = None, owner: str = "a", now: int | None = None, **changes: int
) -> RunRequest:
    """The scheduler's message for hour k: window [T0 + k h, T0 + (k+1) h)."""
    window = Span(T0 + k * HOUR, T0 + (k + 1) * HOUR)
    return RunRequest(
        message=message or f"tick-{k}",
        owner=owner,
        window=window,
        scheduled=True,
        now=now if now is not None else window.end + 5,
        max_catch_up=changes.get("max_catch_up", WEEK),
        late_arrival=changes.get("late_arrival", HOUR),
        lease_seconds=300,
        keep_seconds=2 * 24 * HOUR,
    )


class History:
    """The history as one backend would hold it, driven by the pure rules."""

    def __init__(self) -> None:
        self.coverage = Coverage()
        self.records: dict[str, RunRecord] = {}

    def begin(self, request: RunRequest) -> RunState:
        state, record, self.coverage = claim(self.records.get(request.message), self.coverage, request)
        if record is not None:
            self.records[request.message] = record
        return state

    def finish(self, request: RunRequest, *, release: bool = False, users: int | None = None) -> None:
        record = self.records.get(request.message)
        if record is None:
            return  # already covered: nothing was claimed
        if release:
            self.coverage = released(self.coverage, record)
            del self.records[request.message]
            return
        self.records[request.message] = finished(record)
        self.coverage = closed(self.coverage, record.coverage)
        if users is not None:
            self.coverage = counted(self.coverage, record.window, users)


def test_span_arithmetic() -> None:
    assert merge([Span(5, 7), Span(1, 3), Span(3, 4), Span(6, 9)]) == (Span(1, 4), Span(5, 9))
    assert subtract([Span(0, 10)], [Span(2, 3), Span(5, 7)]) == (Span(0, 2), Span(3, 5), Span(7, 10))
    assert intersect([Span(0, 10)], [Span(2, 3), Span(9, 12)]) == (Span(2, 3), Span(9, 10))
    assert subtract([Span(0, 10)], []) == (Span(0, 10),)


def test_the_first_digest_covers_its_own_window_not_a_week_of_history() -> None:
    history = History()
    state = history.begin(tick(0))
    assert (state.start, state.coverage, state.late) == (Start.FRESH, (Span(T0, T0 + HOUR),), ())


def test_consecutive_ticks_tile_time_and_look_back_at_the_previous_hour_for_late_arrivals() -> None:
    history = History()
    history.begin(tick(0))
    history.finish(tick(0))
    state = history.begin(tick(1))
    assert state.coverage == (Span(T0 + HOUR, T0 + 2 * HOUR),)
    assert state.late == (Span(T0, T0 + HOUR),)


def test_time_a_digest_is_still_working_on_is_not_searched_for_late_arrivals() -> None:
    # Its own redelivery will report those users; looking there too would tell people twice.
    history = History()
    history.begin(tick(0))  # still running (Mixpanel is down, say)
    assert history.begin(tick(1)).late == ()


def test_a_lost_tick_is_covered_by_the_next_and_arriving_late_it_covers_nothing() -> None:
    history = History()
    history.begin(tick(0))
    state = history.begin(tick(2))  # tick 1 was lost (or is late)
    assert state.coverage == (Span(T0 + HOUR, T0 + 3 * HOUR),)
    late_arrival = history.begin(tick(1, now=T0 + 3 * HOUR + 60))
    assert late_arrival.start is Start.ALREADY_COVERED


def test_catch_up_reaches_back_no_further_than_the_horizon() -> None:
    history = History()
    history.begin(tick(0))
    state = history.begin(tick(10, max_catch_up=3 * HOUR))
    assert state.coverage == (Span(T0 + 8 * HOUR, T0 + 11 * HOUR),)


def test_a_window_before_the_first_digest_is_covered_by_its_own_message() -> None:
    history = History()
    history.begin(tick(5))
    state = history.begin(tick(4))
    assert (state.start, state.coverage) == (Start.FRESH, (Span(T0 + 4 * HOUR, T0 + 5 * HOUR),))


def test_a_backfill_reports_its_window_and_claims_nothing() -> None:
    history = History()
    history.begin(tick(0))
    backfill = RunRequest(**{**tick(0).__dict__, "message": "backfill", "scheduled": False})
    assert history.begin(backfill).coverage == (Span(T0, T0 + HOUR),)
    assert history.coverage.spans == (Span(T0, T0 + HOUR),)


def test_a_redelivery_resumes_with_the_same_coverage_and_what_it_already_settled() -> None:
    history = History()
    first = tick(1)
    history.begin(tick(0))
    state = history.begin(first)
    history.records[first.message] = marked(
        history.records[first.message], [Mark("sms", "r1", DeliveryStatus.DELIVERED)]
    )
    history.finish(first)
    again = history.begin(tick(1, owner="b"))
    assert again.start is Start.RESUMED
    assert (again.coverage, again.late) == (state.coverage, state.late)
    assert again.settled == {"sms": {"r1": DeliveryStatus.DELIVERED}}


def test_a_second_delivery_while_the_first_holds_the_lease_is_in_progress() -> None:
    history = History()
    history.begin(tick(0, owner="a"))
    with pytest.raises(InProgress):
        history.begin(tick(0, owner="b"))
    # Past the lease (the first instance died), the message can be taken over.
    assert history.begin(tick(0, owner="b", now=T0 + HOUR + 5 + 301)).start is Start.RESUMED


def test_a_released_claim_is_caught_up_by_the_next_tick() -> None:
    history = History()
    history.begin(tick(0))
    history.finish(tick(0))
    history.begin(tick(1))
    history.finish(tick(1), release=True)  # nobody could be told: the hour is given back
    assert history.begin(tick(2)).coverage == (Span(T0 + HOUR, T0 + 3 * HOUR),)


def test_the_previous_windows_count_is_the_trend() -> None:
    history = History()
    history.begin(tick(0))
    history.finish(tick(0), users=7)
    assert history.begin(tick(1)).previous_users == 7
    assert count_key(Span(T0, T0 + HOUR)) in history.coverage.counts


@given(
    ticks=st.lists(st.integers(min_value=0, max_value=23), min_size=1, max_size=40),
    late_by=st.lists(st.integers(min_value=0, max_value=5 * HOUR), min_size=40, max_size=40),
)
def test_every_instant_goes_to_exactly_one_digest_whatever_the_order(
    ticks: list[int], late_by: list[int]
) -> None:
    """Ticks in any order, some lost, some delivered twice or more, then one more on time: no instant
    twice, and none lost between the first instant ever claimed and the last."""
    history = History()
    covered: list[Span] = []
    deliveries = [(k, late_by[position]) for position, k in enumerate(ticks)] + [(24, 0)]
    for position, (k, late) in enumerate(deliveries):
        request = tick(k, owner=f"delivery-{position}", now=T0 + (k + 1) * HOUR + late)
        try:
            state = history.begin(request)
        except InProgress:
            continue
        if state.start is Start.FRESH:
            covered.extend(state.coverage)
        history.finish(request)
    total = sum(span.seconds for span in covered)
    union = merge(covered)
    assert total == sum(span.seconds for span in union), "an instant went to two digests"
    assert len(union) == 1, "an instant between the first and the last digest went to none"


def test_time_still_running_when_a_run_wanted_to_search_it_is_searched_by_the_next() -> None:
    history = History()
    history.begin(tick(0))  # hour 0 still running when hour 1 comes
    assert history.begin(tick(1)).late == ()
    history.finish(tick(0))  # hour 0 done at last: a profile may have reached it meanwhile
    history.finish(tick(1))
    state = history.begin(tick(2))
    assert state.late == (Span(T0, T0 + 2 * HOUR),)  # hour 1 as usual, and hour 0 it had to skip
    history.finish(tick(2))
    assert history.begin(tick(3)).late == (Span(T0 + 2 * HOUR, T0 + 3 * HOUR),)  # searched once only


def test_a_claim_keeps_the_window_counts_to_the_most_recent() -> None:
    # Firestore's ending adds a count without a read: without the claim's pruning the one coverage
    # document would grow by a count an hour until it passed Firestore's 1 MiB.
    many = {count_key(Span(T0 - (n + 1) * HOUR, T0 - n * HOUR)): n for n in range(MAX_COUNTS + 50)}
    history = History()
    history.coverage = Coverage(spans=(Span(T0 - HOUR, T0),), genesis=T0 - HOUR, counts=many)
    history.begin(tick(0))
    assert len(history.coverage.counts) == MAX_COUNTS
    assert count_key(Span(T0 - HOUR, T0)) in history.coverage.counts  # the newest are kept
