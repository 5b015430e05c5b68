"""The run history's contract (SPEC: Durable state), run against every backend: memory and Firestore.

Which time each scheduled digest covers and searches again for late arrivals, who each message
told, how a message ends. The Firestore runs use the emulator, which the session starts (skipped,
with the reason, without it).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.errors import ConfigError, InProgress, StateRejected
from notifier.retry import Deadline, Retrier, RetryPolicy
from notifier.span import Span, merge
from notifier.state import (
    End,
    Ending,
    Held,
    Intent,
    Mark,
    Note,
    ReportedUsers,
    RunRequest,
    Start,
    StateStore,
    recipient_key,
    split_keys,
    user_key,
)
from notifier.state.firestore import FirestoreStore, open_firestore
from notifier.state.memory import MemoryStore
from notifier.state.rules import MAX_COUNTS
from notifier.transport import Transport
from sandbox.firestore import PROJECT, FirestoreFaults
from sandbox.server import Fault
from tests.conftest import CONTENDED, retrier

HOUR = 3600
WEEK = 7 * 24 * HOUR
T0 = 1_795_852_800  # 2026-11-28T08:00:00Z


def tick(
    k: int,
    *,
    owner: str = "a",
    now: int | None = None,
    hours: int = 1,
    message: str | None = None,
    scheduled: bool = True,
    intent: Intent = Intent.RUN,
    late_arrival: int = HOUR,
    max_catch_up: int = WEEK,
    takes_held: bool = False,
) -> RunRequest:
    """The scheduler's message for the window ending at hour k + 1 (of `hours` hours)."""
    window = Span(T0 + (k + 1 - hours) * HOUR, T0 + (k + 1) * HOUR)
    return RunRequest(
        message=message or (f"msg-{k}" if scheduled else f"backfill-{k}"),
        owner=owner,
        window=window,
        published=window.end,
        scheduled=scheduled,
        now=now if now is not None else window.end + 5,
        max_catch_up=max_catch_up,
        late_arrival=late_arrival,
        lease_seconds=300,
        runs_for=24 * HOUR + 300,
        keep_seconds=2 * 24 * HOUR,
        intent=intent,
        takes_held=takes_held,
    )


def hours(*spans: tuple[int, int]) -> tuple[Span, ...]:
    """Spans given as (first hour, hour after the last) from T0."""
    return tuple(Span(T0 + a * HOUR, T0 + b * HOUR) for a, b in spans)


def end(
    store: StateStore,
    request: RunRequest,
    how: End = End.CLOSE,
    *,
    marks: Iterable[Mark] = (),
    window_users: int | None = None,
) -> None:
    """Let go of the message `request` began, with the coverage the history gave it."""
    covered = store.begin(RunRequest(**{**request.__dict__, "intent": Intent.DRY_RUN})).coverage
    store.end(request, Ending(how, covered, tuple(marks), window_users=window_users))


# -- claiming time: every instant to exactly one digest -------------------------------------------


def test_the_first_digest_covers_its_own_window_not_a_week_of_history(
    stores: Callable[[], StateStore],
) -> None:
    state = stores().begin(tick(5))
    assert (state.start, state.coverage, state.late) == (Start.FRESH, hours((5, 6)), ())


def test_consecutive_ticks_tile_time_and_look_back_at_the_hour_before_for_late_arrivals(
    stores: Callable[[], StateStore],
) -> None:
    store = stores()
    store.begin(tick(0))
    end(store, tick(0))
    state = stores().begin(tick(1))
    assert (state.coverage, state.late) == (hours((1, 2)), hours((0, 1)))


def test_a_lost_tick_is_caught_up_by_the_next_and_arriving_late_it_covers_nothing(
    stores: Callable[[], StateStore],
) -> None:
    store = stores()
    store.begin(tick(0))
    end(store, tick(0))
    state = store.begin(tick(2))  # the tick for hour 1 is lost
    assert (state.coverage, state.late) == (hours((1, 3)), hours((0, 1)))
    end(store, tick(2))
    assert stores().begin(tick(1, now=T0 + 3 * HOUR)).start is Start.ALREADY_COVERED


def test_catch_up_reaches_back_no_further_than_its_horizon(stores: Callable[[], StateStore]) -> None:
    store = stores()
    store.begin(tick(0))
    end(store, tick(0))
    assert stores().begin(tick(9, max_catch_up=3 * HOUR)).coverage == hours((7, 10))


def test_a_window_before_the_first_digest_is_covered_by_its_own_message(
    stores: Callable[[], StateStore],
) -> None:
    store = stores()
    store.begin(tick(5))
    end(store, tick(5))
    assert stores().begin(tick(2)).coverage == hours((2, 3))


def test_windows_that_overlap_search_the_overlap_for_late_arrivals(stores: Callable[[], StateStore]) -> None:
    # Hourly ticks with a 90-minute lookback: each window overlaps the last by half an hour.
    store = stores()
    first = tick(0, hours=2)  # 07:00-09:00
    store.begin(first)
    end(store, first)
    state = stores().begin(tick(1, hours=2))  # 08:00-10:00, of which 09:00-10:00 is new
    assert state.coverage == hours((1, 2))
    assert state.late == hours((-1, 1))  # all the first digest's time, the overlap too


def test_each_instant_is_searched_for_late_arrivals_once_after_its_late_arrivals_are_in(
    stores: Callable[[], StateStore],
) -> None:
    # Quarter-hour ticks with LATE_ARRIVAL_MINUTES 60: each run searches the quarter that became an
    # hour old, never what another run searched, and never time younger than an hour.
    store = stores()
    quarter = 900
    searched: list[Span] = []
    for k in range(12):
        window = Span(T0 + k * quarter, T0 + (k + 1) * quarter)
        request = RunRequest(
            **{**tick(0).__dict__, "message": f"q{k}", "window": window, "now": window.end + 5}
        )
        state = store.begin(request)
        assert all(span.end <= request.now - HOUR for span in state.late)
        searched.extend(state.late)
        store.end(request, Ending(End.CLOSE, state.coverage))
    assert sum(span.seconds for span in searched) == sum(span.seconds for span in merge(searched))
    assert merge(searched) == (Span(T0, T0 + 8 * quarter + 5),)  # all closed time an hour old


def test_after_a_pause_longer_than_the_users_are_kept_the_hour_before_it_is_not_searched(
    stores: Callable[[], StateStore],
) -> None:
    # The users a digest reported are kept MAX_CATCH_UP_MINUTES plus a day: searched later, its
    # hour would find them again as "late arrivals" with nothing left to say they were told.
    store = stores()
    store.begin(tick(0))
    end(store, tick(0))
    after_a_pause = store.begin(tick(9 * 24))  # nine days later, a week of catch-up
    assert all(span.start >= T0 + (9 * 24 + 1) * HOUR - WEEK - 24 * HOUR for span in after_a_pause.late)
    assert not [span for span in after_a_pause.late if span.start < T0 + HOUR]


def test_runs_in_flight_at_once_never_search_the_same_time(stores: Callable[[], StateStore]) -> None:
    store = stores()
    for k in range(3):
        store.begin(tick(k))
        end(store, tick(k))
    later = T0 + 6 * HOUR
    first = stores().begin(tick(3, now=later))  # a backlog: two ticks claimed at the same moment
    second = stores().begin(tick(4, now=later))
    assert first.late == hours((2, 3))  # the earlier hours were searched by the ticks after them
    assert second.late == ()


def test_a_catch_up_around_time_others_covered_still_searches_that_time(
    stores: Callable[[], StateStore],
) -> None:
    store = stores()
    store.begin(tick(0))  # 08:00-09:00, fails and is retried
    store.begin(tick(1))  # 09:00-10:00, told
    end(store, tick(1))
    end(store, tick(0), End.RELEASE)  # 08:00-09:00 given back
    state = stores().begin(tick(2))  # 10:00-11:00 catches 08:00-09:00 up...
    assert state.coverage == hours((0, 1), (2, 3))
    assert state.late == hours((1, 2))  # ...and searches 09:00-10:00 between


def test_time_a_message_still_open_claimed_is_searched_only_once_it_closes(
    stores: Callable[[], StateStore],
) -> None:
    store = stores()
    store.begin(tick(0))  # hour 0 still open when hour 1 comes
    assert store.begin(tick(1)).late == ()
    end(store, tick(0))  # hour 0 closed at last: a profile may have reached it meanwhile
    end(store, tick(1))
    assert stores().begin(tick(2)).late == hours((0, 2))  # hour 1 as usual, and hour 0 it had to skip
    end(store, tick(2))
    assert stores().begin(tick(3)).late == hours((2, 3))  # searched once only


def test_a_message_kept_open_keeps_its_time_from_the_late_search(stores: Callable[[], StateStore]) -> None:
    store = stores()
    store.begin(tick(0))
    end(store, tick(0), End.KEEP_OPEN)  # recipients left: its users are not final yet
    assert stores().begin(tick(1)).late == ()


def test_a_backfill_reports_its_window_and_claims_nothing(stores: Callable[[], StateStore]) -> None:
    store = stores()
    assert store.begin(tick(0, scheduled=False)).coverage == hours((0, 1))
    end(store, tick(0, scheduled=False))
    assert stores().begin(tick(0)).coverage == hours((0, 1))


def test_a_backfill_nobody_heard_of_gives_back_nothing_it_did_not_claim(
    stores: Callable[[], StateStore],
) -> None:
    store = stores()
    store.begin(tick(0))
    end(store, tick(0))  # 08:00-09:00 told
    store.begin(tick(0, scheduled=False))  # a backfill of the same hour, every recipient refused
    end(store, tick(0, scheduled=False), End.RELEASE)
    assert stores().begin(tick(0, message="msg-again")).start is Start.ALREADY_COVERED


@settings(max_examples=40)
@given(
    ticks=st.lists(st.integers(min_value=0, max_value=23), min_size=1, max_size=40),
    late_by=st.lists(st.integers(min_value=0, max_value=5 * HOUR), min_size=40, max_size=40),
)
def test_every_instant_goes_to_exactly_one_digest_whatever_the_order(
    ticks: list[int], late_by: list[int]
) -> None:
    """Ticks in any order, some lost, some delivered twice or more, then one more on time: no instant
    twice, and none lost between the first instant ever claimed and the last."""
    store = MemoryStore()
    covered: list[Span] = []
    deliveries = [(k, late_by[position]) for position, k in enumerate(ticks)] + [(24, 0)]
    for position, (k, late) in enumerate(deliveries):
        request = tick(k, owner=f"delivery-{position}", now=T0 + (k + 1) * HOUR + late)
        try:
            state = store.begin(request)
        except InProgress:
            continue
        if state.start is Start.FRESH:
            covered.extend(state.coverage)
        store.end(request, Ending(End.CLOSE, state.coverage))
    union = merge(covered)
    assert sum(span.seconds for span in covered) == sum(span.seconds for span in union), "an instant twice"
    assert len(union) == 1, "an instant between the first and the last digest went to none"


# -- one message: its lease, its notes, how it ends ------------------------------------------------


def test_a_first_delivery_claims_its_window_and_a_racing_one_is_in_progress(
    stores: Callable[[], StateStore],
) -> None:
    state = stores().begin(tick(0, owner="a"))
    assert (state.start, state.coverage) == (Start.FRESH, hours((0, 1)))
    with pytest.raises(InProgress):
        stores().begin(tick(0, owner="b"))


def test_a_message_kept_open_is_resumed_on_another_instance_with_its_notes(
    stores: Callable[[], StateStore],
) -> None:
    store = stores()
    store.begin(tick(0, owner="a"))
    sms = Mark("sms", recipient_key("sms", "+14155550100"), Note.DELIVERED)
    email = Mark("email", recipient_key("email", "a@example.com"), Note.UNCONFIRMED)
    store.note(tick(0), [sms], reported=None)
    end(store, tick(0), End.KEEP_OPEN, marks=[email])
    again = stores().begin(tick(0, owner="b"))
    assert (again.start, again.coverage) == (Start.RESUMED, hours((0, 1)))
    assert again.notes == {
        "sms": {sms.recipient: Note.DELIVERED},
        "email": {email.recipient: Note.UNCONFIRMED},
    }


def test_a_closed_message_is_ended_for_every_later_delivery(stores: Callable[[], StateStore]) -> None:
    # Even one that told nobody (nothing to send): a redelivery must not report what came since.
    store = stores()
    store.begin(tick(0, owner="a"))
    end(store, tick(0, owner="a"))
    assert stores().begin(tick(0, owner="b")).start is Start.ENDED


def test_a_delivery_whose_holder_died_is_taken_over_after_the_lease(stores: Callable[[], StateStore]) -> None:
    stores().begin(tick(0, owner="a"))  # never ends
    assert stores().begin(tick(0, owner="b", now=T0 + HOUR + 5 + 301)).start is Start.RESUMED


def test_a_message_resumed_reports_what_it_first_reported(stores: Callable[[], StateStore]) -> None:
    ids = [user_key("ada"), user_key("grace")]
    store = stores()
    store.begin(tick(0, owner="a"))
    store.note(tick(0), [Mark("sms", "r1", Note.SENDING)], reported=ReportedUsers.of(ids, T0 + 9))
    end(store, tick(0), End.KEEP_OPEN)
    again = stores().begin(tick(0, owner="b"))
    assert again.reported is not None
    assert split_keys(again.reported) == frozenset(ids)
    assert again.notes == {"sms": {"r1": Note.SENDING}}


def test_a_cleared_sending_note_leaves_the_recipient_to_the_redelivery(
    stores: Callable[[], StateStore],
) -> None:
    store = stores()
    store.begin(tick(0, owner="a"))
    store.note(tick(0), [Mark("sms", "r1", Note.SENDING), Mark("sms", "r2", Note.SENDING)], reported=None)
    end(store, tick(0), End.KEEP_OPEN, marks=[Mark("sms", "r1", None), Mark("sms", "r2", Note.DELIVERED)])
    assert stores().begin(tick(0, owner="b")).notes == {"sms": {"r2": Note.DELIVERED}}


def test_a_dry_run_writes_nothing(stores: Callable[[], StateStore]) -> None:
    assert stores().begin(tick(0, intent=Intent.DRY_RUN)).start is Start.FRESH
    assert stores().begin(tick(0, owner="b")).start is Start.FRESH


def test_giving_up_takes_over_a_record_and_claims_nothing(stores: Callable[[], StateStore]) -> None:
    assert stores().begin(tick(0, intent=Intent.GIVE_UP)).start is Start.ABSENT
    assert stores().begin(tick(0)).start is Start.FRESH  # nothing was claimed by giving up
    store = stores()
    end(store, tick(0), End.KEEP_OPEN)
    assert stores().begin(tick(0, owner="b", intent=Intent.GIVE_UP)).start is Start.RESUMED


def test_a_claim_lists_the_messages_still_holding_time_open_until_they_end(
    stores: Callable[[], StateStore],
) -> None:
    store = stores()
    store.begin(tick(0))
    end(store, tick(0), End.KEEP_OPEN)  # left open for a redelivery that may never come
    assert store.begin(tick(1)).abandoned == ()  # it may still be redelivered
    a_day_later = T0 + 26 * HOUR
    (left_open,) = store.begin(tick(25, now=a_day_later)).abandoned
    assert (left_open.message, left_open.published, left_open.spans) == ("msg-0", T0 + HOUR, hours((0, 1)))
    assert store.begin(tick(26, now=a_day_later, intent=Intent.DRY_RUN)).abandoned == ()  # ends nothing
    giving_up = tick(0, owner="b", intent=Intent.GIVE_UP)
    assert store.begin(giving_up).start is Start.RESUMED
    end(store, giving_up, End.RELEASE)
    after = stores().begin(tick(27, now=a_day_later + 3 * HOUR))
    assert [claim.message for claim in after.abandoned] == ["msg-1"]  # msg-25 may still run
    assert after.coverage[0] == hours((0, 1))[0]  # msg-0's hour, caught up


def test_a_released_claim_is_caught_up_by_the_next_tick(stores: Callable[[], StateStore]) -> None:
    store = stores()
    store.begin(tick(0))
    end(store, tick(0))
    store.begin(tick(1))
    end(store, tick(1), End.RELEASE)
    assert stores().begin(tick(2)).coverage == hours((1, 3))


def test_time_given_back_beyond_the_next_claims_catch_up_is_named_once(
    stores: Callable[[], StateStore],
) -> None:
    store = stores()
    store.begin(tick(0))
    end(store, tick(0), End.RELEASE)  # nobody told: 08:00-09:00 given back
    assert store.begin(tick(3, max_catch_up=HOUR, intent=Intent.DRY_RUN)).beyond_reach == ()  # names nothing
    first = store.begin(tick(3, max_catch_up=HOUR))  # reaches back to 11:00 only
    assert (first.coverage, first.beyond_reach) == (hours((3, 4)), hours((0, 1)))
    assert store.begin(tick(4, max_catch_up=HOUR)).beyond_reach == ()  # said once


def test_a_released_claim_hands_on_the_late_search_it_took(stores: Callable[[], StateStore]) -> None:
    store = stores()
    store.begin(tick(0))  # 08:00-09:00, still open
    store.begin(tick(1))  # wants to search 08:00-09:00 for late arrivals: deferred
    end(store, tick(0))
    assert store.begin(tick(2)).late == hours((0, 1))  # takes the deferred search...
    end(store, tick(2), End.RELEASE)  # ...and gives its time back (Mixpanel refused)
    end(store, tick(1))
    assert stores().begin(tick(3)).late == hours((0, 2))  # 08:00-09:00 is not lost


def test_the_previous_windows_count_comes_back_as_the_trend(stores: Callable[[], StateStore]) -> None:
    store = stores()
    store.begin(tick(0))
    end(store, tick(0), window_users=12)
    assert stores().begin(tick(1)).previous_users == 12


def test_a_claim_keeps_the_window_counts_to_the_most_recent(stores: Callable[[], StateStore]) -> None:
    # Firestore's closing adds a count without a read: without the claim's pruning the one coverage
    # document would grow by a count an hour until it passed Firestore's 1 MiB.
    store = stores()
    for k in range(MAX_COUNTS + 5):
        store.begin(tick(k))
        end(store, tick(k), window_users=k)
    assert stores().begin(tick(MAX_COUNTS + 5)).previous_users == MAX_COUNTS + 4
    assert store.begin(tick(3, message="late-3", now=T0 + (MAX_COUNTS + 7) * HOUR)).previous_users is None


# -- the users messages reported ------------------------------------------------------------------


def test_users_reported_by_other_messages_are_known_and_a_messages_own_are_not(
    stores: Callable[[], StateStore],
) -> None:
    store = stores()
    ids = frozenset(user_key(f"user-{n}") for n in range(3))
    store.begin(tick(0))
    store.note(tick(0), [Mark("sms", "r1", Note.SENDING)], reported=ReportedUsers.of(ids, T0 + 20))
    reader = stores()
    assert reader.reported(T0, excluding="msg-1") == ids
    assert reader.reported(T0, excluding="msg-0") == frozenset()
    assert reader.reported(T0 + 21, excluding="msg-1") == frozenset()


def test_users_of_a_released_message_no_longer_count_as_reported(stores: Callable[[], StateStore]) -> None:
    store = stores()
    store.begin(tick(0))
    store.note(tick(0), [], reported=ReportedUsers.of([user_key("ada")], T0 + 20))
    end(store, tick(0), End.RELEASE)
    assert stores().reported(T0, excluding="msg-1") == frozenset()


def test_many_reported_users_fit(stores: Callable[[], StateStore]) -> None:
    store = stores()
    ids = frozenset(user_key(f"user-{n}") for n in range(100_000))
    store.begin(tick(0))
    store.note(tick(0), [Mark("sms", "r1", Note.SENDING)], reported=ReportedUsers.of(ids, T0 + HOUR - 1))
    assert stores().reported(T0, excluding="msg-1") == ids


def test_two_instances_racing_for_one_message_start_it_once(stores: Callable[[], StateStore]) -> None:
    results: list[object] = []
    barrier = threading.Barrier(4)

    def race(owner: str) -> None:
        barrier.wait()
        try:
            results.append(stores().begin(tick(0, owner=owner)).start)
        except Exception as error:  # noqa: BLE001 - handed to the assertions below
            results.append(error)

    threads = [threading.Thread(target=race, args=(f"owner-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(Start.FRESH) == 1, results
    assert sum(isinstance(r, InProgress) for r in results) == 3, results


# -- Firestore itself -------------------------------------------------------------------------------


def test_firestore_holds_no_address_no_number_no_id_and_every_record_expires(firestore: Any) -> None:
    store = open_firestore(database="(default)", retrier=retrier(CONTENDED))
    request = tick(0)
    state = store.begin(request)
    email = Mark("email", recipient_key("email", "ada@example.com"), Note.SENDING)
    store.note(request, [email], reported=ReportedUsers.of([user_key("distinct-ada")], T0 + 2))
    sms = Mark("sms", recipient_key("sms", "+14155550100"), Note.DELIVERED)
    store.end(request, Ending(End.CLOSE, state.coverage, (sms,), window_users=1))
    documents = {c: firestore.documents(c) for c in ("runs", "reported", "coverage")}
    dump = json.dumps(documents)
    for private in ("ada@example.com", "4155550100", "distinct-ada"):
        assert private not in dump
    for collection in ("runs", "reported"):
        assert documents[collection]
        assert all("timestampValue" in d["fields"]["expire_at"] for d in documents[collection])


def _store_through(faults: FirestoreFaults) -> FirestoreStore:
    """A Firestore history reaching the emulator through the fault proxy."""
    return FirestoreStore(
        base_url=faults.url + "/v1",
        project=PROJECT,
        database="(default)",
        google=False,
        retrier=Retrier(
            RetryPolicy(attempts=3, base_delay=0.01), Deadline(20), Transport(), sleep=lambda _s: None
        ),
    )


MISSING_DATABASE = "The database (default) does not exist for project local-project"


@pytest.mark.parametrize(
    ("status", "raised", "says"),
    [
        (400, StateRejected, "refused the request with 400"),  # a bug, for a person
        (403, ConfigError, "roles/datastore.user"),
        (404, ConfigError, "FIRESTORE_DATABASE"),
    ],
)
def test_a_refusing_firestore_says_what_to_do(
    firestore: Any, status: int, raised: type[Exception], says: str
) -> None:
    with FirestoreFaults(firestore, only=":batchGet") as faults:
        body = {"error": {"code": status, "message": MISSING_DATABASE, "status": "NOT_FOUND"}}
        faults.script(Fault.status(status, body=body if status == 404 else None))
        with pytest.raises(raised, match=re.escape(says)):
            _store_through(faults).begin(tick(0))
        assert len(faults.requests) == 1  # a refusal is not retried


def test_a_failed_claim_lets_go_of_its_transaction_so_the_retry_claims_at_once(firestore: Any) -> None:
    with FirestoreFaults(firestore, only=":commit") as faults:
        faults.script(Fault.status(503))  # the claim's commit fails; its transaction is still open
        # Not "409 Transaction lock timeout":
        assert _store_through(faults).begin(tick(0)).start is Start.FRESH
        assert [r.path.rpartition(":")[2] for r in faults.requests] == [
            "batchGet",
            "commit",
            "rollback",
            "batchGet",
            "commit",
        ]


# -- tallies held back by quiet runs ----------------------------------------------------------------


def quiet(store: StateStore, k: int, users: int) -> None:
    """A quiet run for hour k that holds back `users`."""
    state = store.begin(tick(k))
    store.end(tick(k), Ending(End.CLOSE, state.coverage, held_back=users))


def test_a_texting_run_takes_every_tally_quiet_runs_held_and_no_other_run_sees_them(
    stores: Callable[[], StateStore],
) -> None:
    store = stores()
    quiet(store, 0, 2)
    quiet(store, 1, 0)
    quiet(store, 2, 3)
    taken = stores().begin(tick(3, takes_held=True)).held
    assert sorted(taken.values()) == [Held(T0, 2), Held(T0 + HOUR, 0), Held(T0 + 2 * HOUR, 3)]
    assert stores().begin(tick(4, takes_held=True)).held == {}  # taken once


def test_tallies_a_texting_run_did_not_tell_go_back_for_the_next(stores: Callable[[], StateStore]) -> None:
    store = stores()
    quiet(store, 0, 2)
    state = store.begin(tick(1, takes_held=True))
    store.end(tick(1), Ending(End.CLOSE, state.coverage, held_returned=state.held))  # every phone refused
    assert list(stores().begin(tick(2, takes_held=True)).held.values()) == [Held(T0, 2)]


def test_a_released_texting_run_gives_its_tallies_back_and_a_kept_open_one_keeps_them(
    stores: Callable[[], StateStore],
) -> None:
    store = stores()
    quiet(store, 0, 2)
    store.begin(tick(1, takes_held=True))
    end(store, tick(1), End.KEEP_OPEN)
    resumed = stores().begin(tick(1, owner="b", takes_held=True))
    assert list(resumed.held.values()) == [Held(T0, 2)]  # the redelivery texts what it took
    end(store, tick(1, owner="b"), End.RELEASE)
    assert list(stores().begin(tick(2, takes_held=True)).held.values()) == [Held(T0, 2)]


def test_the_fault_proxy_drops_an_answer_after_the_commit_landed(firestore: Any) -> None:
    # What the history tests mean by a lost answer: the write is done, only its answer is gone.
    with FirestoreFaults(firestore, only=":commit") as proxy:
        store = open_firestore(database="(default)", retrier=retrier(CONTENDED), environ=proxy.environ)
        proxy.script(Fault.dropped(after_acting=True))
        store.begin(tick(0, owner="a"))  # the first commit lands, its answer is lost; the retry resumes it
    assert firestore.documents("runs")


def test_no_run_record_is_made_by_notes_or_an_ending_after_it_was_deleted(firestore: Any) -> None:
    store = open_firestore(database="(default)", retrier=retrier(CONTENDED))
    state = store.begin(tick(0))
    store.end(tick(0), Ending(End.RELEASE, state.coverage))
    with pytest.raises(StateRejected):  # a release whose answer was lost, then the fallback ending
        store.end(tick(0), Ending(End.KEEP_OPEN, state.coverage, (Mark("sms", "r1", Note.REJECTED),)))
    assert firestore.documents("runs") == []
