"""The run history's contract (SPEC: Durable state), run against every backend: memory and Firestore.

The Firestore runs use the emulator, which the session starts (skipped, with the reason, without it).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest

from notifier.channels import DeliveryStatus
from notifier.errors import ConfigError, InProgress, StateRejected
from notifier.retry import Deadline, Retrier, RetryPolicy
from notifier.state import (
    Ending,
    Mark,
    ReportedUsers,
    RunRequest,
    Span,
    Start,
    StateStore,
    recipient_key,
    split_keys,
    user_key,
)
from notifier.state.firestore import FirestoreStore, open_firestore
from notifier.state.memory import MemoryStore
from notifier.transport import Transport
from sandbox.firestore import PROJECT, FirestoreFaults
from sandbox.server import Fault

HOUR = 3600
T0 = 1_795_852_800  # 2026-11-28T08:00:00Z


def tick(
    k: int, *, owner: str = "a", now: int | None = None, scheduled: bool = True, peek: bool = False
) -> RunRequest:
    window = Span(T0 + k * HOUR, T0 + (k + 1) * HOUR)
    return RunRequest(
        message=f"msg-{k}" if scheduled else f"backfill-{k}",
        owner=owner,
        window=window,
        scheduled=scheduled,
        now=now if now is not None else window.end + 5,
        max_catch_up=7 * 24 * HOUR,
        late_arrival=HOUR,
        lease_seconds=300,
        keep_seconds=2 * 24 * HOUR,
        peek=peek,
    )


def retrier() -> Retrier:
    return Retrier(RetryPolicy(attempts=3, base_delay=0.01), Deadline(60), Transport(), sleep=lambda _s: None)


@pytest.fixture(params=["memory", "firestore"])
def stores(request: pytest.FixtureRequest) -> Callable[[], StateStore]:
    """Makes a store; for Firestore each call is a fresh client (a new instance), same database."""
    if request.param == "memory":
        memory = MemoryStore()
        return lambda: memory
    request.getfixturevalue("firestore")
    return lambda: open_firestore(database="(default)", retrier=retrier())


def test_a_first_delivery_claims_its_window_and_a_racing_one_is_in_progress(
    stores: Callable[[], StateStore],
) -> None:
    state = stores().begin(tick(0, owner="a"))
    assert (state.start, state.coverage) == (Start.FRESH, (Span(T0, T0 + HOUR),))
    with pytest.raises(InProgress):
        stores().begin(tick(0, owner="b"))


def test_a_redelivery_on_another_instance_resumes_with_what_was_settled(
    stores: Callable[[], StateStore],
) -> None:
    first = tick(0, owner="a")
    store = stores()
    store.begin(first)
    store.write(
        first,
        [
            Mark("sms", recipient_key("sms", "+14155550100"), DeliveryStatus.DELIVERED),
            Mark("email", recipient_key("email", "a@example.com"), DeliveryStatus.UNCONFIRMED),
        ],
    )
    store.finish(first, Ending())
    again = stores().begin(tick(0, owner="b"))
    assert again.start is Start.RESUMED
    assert again.coverage == (Span(T0, T0 + HOUR),)
    assert again.settled == {
        "sms": {recipient_key("sms", "+14155550100"): DeliveryStatus.DELIVERED},
        "email": {recipient_key("email", "a@example.com"): DeliveryStatus.UNCONFIRMED},
    }


def test_a_delivery_whose_holder_died_is_taken_over_after_the_lease(stores: Callable[[], StateStore]) -> None:
    stores().begin(tick(0, owner="a"))  # never finishes
    later = tick(0, owner="b", now=T0 + HOUR + 5 + 301)
    assert stores().begin(later).start is Start.RESUMED


def test_a_window_already_claimed_is_already_covered(stores: Callable[[], StateStore]) -> None:
    store = stores()
    store.begin(tick(0))
    store.finish(tick(0), Ending())
    other = RunRequest(**{**tick(0).__dict__, "message": "another-message"})
    assert stores().begin(other).start is Start.ALREADY_COVERED


def test_a_lost_tick_is_caught_up_by_the_next(stores: Callable[[], StateStore]) -> None:
    store = stores()
    first = store.begin(tick(0))
    store.finish(tick(0), Ending(covered=first.coverage))
    state = stores().begin(tick(2))
    assert state.coverage == (Span(T0 + HOUR, T0 + 3 * HOUR),)
    assert state.late == (Span(T0, T0 + HOUR),)


def test_time_a_running_message_claimed_is_not_searched_until_it_finishes(
    stores: Callable[[], StateStore],
) -> None:
    store = stores()
    first = store.begin(tick(0))
    assert stores().begin(tick(1, peek=True)).late == ()
    store.write(tick(0), [], ending=Ending(covered=first.coverage))  # finished: its time is closed
    assert stores().begin(tick(1, peek=True)).late == (Span(T0, T0 + HOUR),)


def test_a_message_resumed_reports_what_it_first_reported(stores: Callable[[], StateStore]) -> None:
    ids = [user_key("ada"), user_key("grace")]
    store = stores()
    store.begin(tick(0, owner="a"))
    store.write(
        tick(0), [Mark("sms", "r1", DeliveryStatus.SENDING)], reported=ReportedUsers.of(ids, T0, T0 + 9)
    )
    store.finish(tick(0), Ending())
    again = stores().begin(tick(0, owner="b"))
    assert again.reported is not None
    assert split_keys(again.reported) == frozenset(ids)
    assert again.settled == {"sms": {"r1": DeliveryStatus.SENDING}}


def test_a_cleared_sending_mark_leaves_the_recipient_to_the_redelivery(
    stores: Callable[[], StateStore],
) -> None:
    store = stores()
    store.begin(tick(0, owner="a"))
    store.write(
        tick(0), [Mark("sms", "r1", DeliveryStatus.SENDING), Mark("sms", "r2", DeliveryStatus.SENDING)]
    )
    store.write(tick(0), [Mark("sms", "r1", None), Mark("sms", "r2", DeliveryStatus.DELIVERED)])
    store.finish(tick(0), Ending())
    assert stores().begin(tick(0, owner="b")).settled == {"sms": {"r2": DeliveryStatus.DELIVERED}}


def test_a_dry_run_writes_nothing(stores: Callable[[], StateStore]) -> None:
    assert stores().begin(tick(0, peek=True)).start is Start.FRESH
    assert stores().begin(tick(0, owner="b")).start is Start.FRESH


def test_a_backfill_claims_no_time(stores: Callable[[], StateStore]) -> None:
    store = stores()
    store.begin(tick(0, scheduled=False))
    store.finish(tick(0, scheduled=False), Ending())
    assert stores().begin(tick(0)).coverage == (Span(T0, T0 + HOUR),)


def test_a_released_claim_is_caught_up_later(stores: Callable[[], StateStore]) -> None:
    store = stores()
    store.begin(tick(0))
    store.finish(tick(0), Ending())
    store.begin(tick(1))
    store.finish(tick(1), Ending(release=True))
    assert stores().begin(tick(2)).coverage == (Span(T0 + HOUR, T0 + 3 * HOUR),)


def test_a_released_claim_hands_the_late_search_it_took_on(stores: Callable[[], StateStore]) -> None:
    store = stores()
    store.begin(tick(0))  # 08:00-09:00, still running
    store.begin(tick(1))  # wants to search 08:00-09:00 for late arrivals: deferred
    store.finish(tick(0), Ending(covered=(Span(T0, T0 + HOUR),)))
    assert store.begin(tick(2)).late == (Span(T0, T0 + HOUR),)  # takes the deferred search...
    store.finish(tick(2), Ending(release=True))  # ...and gives its time back (Mixpanel refused)
    store.finish(tick(1), Ending(covered=(Span(T0 + HOUR, T0 + 2 * HOUR),)))
    assert stores().begin(tick(3)).late == (Span(T0, T0 + 2 * HOUR),)  # 08:00-09:00 is not lost


def test_a_catch_up_around_time_others_covered_still_searches_that_time(
    stores: Callable[[], StateStore],
) -> None:
    store = stores()
    store.begin(tick(0))  # 08:00-09:00, fails and is retried
    store.begin(tick(1))  # 09:00-10:00, told
    store.finish(tick(1), Ending(covered=(Span(T0 + HOUR, T0 + 2 * HOUR),)))
    store.finish(tick(0), Ending(release=True))  # 08:00-09:00 given back
    state = stores().begin(tick(2))  # 10:00-11:00 catches 08:00-09:00 up...
    assert state.coverage == (Span(T0, T0 + HOUR), Span(T0 + 2 * HOUR, T0 + 3 * HOUR))
    assert state.late == (Span(T0 + HOUR, T0 + 2 * HOUR),)  # ...and searches 09:00-10:00 between


def test_the_previous_windows_count_comes_back_as_the_trend(stores: Callable[[], StateStore]) -> None:
    store = stores()
    store.begin(tick(0))
    store.finish(tick(0), Ending(users_in_window=12))
    assert stores().begin(tick(1)).previous_users == 12


def test_users_reported_by_other_messages_are_known_and_a_messages_own_are_not(
    stores: Callable[[], StateStore],
) -> None:
    store = stores()
    ids = frozenset(user_key(f"user-{n}") for n in range(3))
    store.begin(tick(0))
    store.write(
        tick(0), [Mark("sms", "r1", DeliveryStatus.SENDING)], reported=ReportedUsers.of(ids, T0 + 10, T0 + 20)
    )
    reader = stores()
    assert reader.reported(T0, excluding="msg-1") == ids
    assert reader.reported(T0, excluding="msg-0") == frozenset()
    assert reader.reported(T0 + 21, excluding="msg-1") == frozenset()


def test_many_reported_users_fit(stores: Callable[[], StateStore]) -> None:
    store = stores()
    ids = frozenset(user_key(f"user-{n}") for n in range(100_000))
    store.begin(tick(0))
    store.write(
        tick(0),
        [Mark("sms", "r1", DeliveryStatus.SENDING)],
        reported=ReportedUsers.of(ids, T0, T0 + HOUR - 1),
    )
    assert stores().reported(T0, excluding="msg-1") == ids


def test_two_instances_racing_for_one_message_start_it_once(stores: Callable[[], StateStore]) -> None:
    results: list[object] = []
    barrier = threading.Barrier(4)

    def race(owner: str) -> None:
        barrier.wait()
        try:
            results.append(stores().begin(tick(0, owner=owner)).start)
        except InProgress as error:
            results.append(error)

    threads = [threading.Thread(target=race, args=(f"owner-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(Start.FRESH) == 1
    assert sum(isinstance(r, InProgress) for r in results) == 3


def test_firestore_holds_no_address_no_number_no_id_and_every_record_expires(firestore: Any) -> None:
    store = open_firestore(database="(default)", retrier=retrier())
    request = tick(0)
    store.begin(request)
    reported = ReportedUsers.of([user_key("distinct-ada")], T0 + 1, T0 + 2)
    email = Mark("email", recipient_key("email", "ada@example.com"), DeliveryStatus.SENDING)
    store.write(request, [email], reported=reported)
    store.write(request, [Mark("sms", recipient_key("sms", "+14155550100"), DeliveryStatus.DELIVERED)])
    store.finish(request, Ending(users_in_window=1))
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


@pytest.mark.parametrize(
    ("status", "raised", "says"),
    [
        (400, StateRejected, "refused the request with 400"),  # a bug: acked, for a person
        (403, ConfigError, "roles/datastore.user"),
        (404, ConfigError, "FIRESTORE_DATABASE"),
    ],
)
def test_a_refusing_firestore_says_what_to_do(
    firestore: Any, status: int, raised: type[Exception], says: str
) -> None:
    with FirestoreFaults(firestore, only=":batchGet") as faults:
        faults.script(Fault.status(status))
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
