"""A message whose deliveries stop before it ends (docs/failures.md; SPEC: Durable state).

Pub/Sub redelivers a failing message for 24 hours, then drops it; a redeploy drops what the old
trigger held. Its time must not stay claimed for ever: the first scheduled run after the message is
past MAX_MESSAGE_AGE_MINUTES (and any delivery of it is over) ends it as its last stale redelivery
would have, with a summary line of its own, and the run after catches up what was given back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from sandbox.server import Fault
from tests.conftest import EMAILS, PHONES, PUBLISHED, World

LEASE = timedelta(seconds=240 + 60)  # RUN_BUDGET_SECONDS + 60: no delivery of it runs after that
DAY = timedelta(minutes=1440)  # MAX_MESSAGE_AGE_MINUTES


def hourly(world: World, first: int, last: int) -> None:
    """The scheduler's ticks `first` to `last` hours after the abandoned one, each delivered once."""
    for hour in range(first, last + 1):
        published = PUBLISHED + timedelta(hours=hour)
        world.clock.now = max(world.clock.now, published + timedelta(seconds=5))
        world.deliver(message_id=f"tick-{hour}", published=published)


def abandoned_lines(world: World) -> list[dict[str, Any]]:
    """The summary lines of deliveries that ended the 09:00 message on its behalf."""
    return [s for s in world.log.summaries() if "a later run ended it" in s.get("error", "")]


def errors(world: World) -> list[dict[str, Any]]:
    return [summary for summary in world.log.summaries() if summary["severity"] == "ERROR"]


def texts_fail_for_the_nine_oclock_tick(world: World) -> None:
    """Ada signs up at 08:30; the 09:00 tick emails her, its texts fail to the end (kept open, a
    redelivery asked for), and Pub/Sub never delivers it again (a redeploy dropped it)."""
    world.users("2026-11-28T08:30:00")
    world.twilio.script(*[Fault.status(503)] * world.services.policy.attempts * len(PHONES))
    world.redelivery(message_id="tick-0", published=PUBLISHED)
    world.twilio.faults.clear()
    assert sorted(world.inboxes()) == sorted(EMAILS)
    assert world.texts() == []


def mixpanel_down_for_the_nine_oclock_tick(world: World) -> None:
    """Ada signs up at 08:30; every delivery of the 09:00 tick finds Mixpanel down, for ten hours of
    redeliveries; then Pub/Sub stops redelivering it (Mixpanel is back)."""
    world.users("2026-11-28T08:30:00")
    world.mixpanel.script(*[Fault.status(503)] * 100)
    for minutes in (0, 10, 30, 60, 600):
        world.clock.now = PUBLISHED + timedelta(minutes=minutes, seconds=5)
        world.redelivery(message_id="tick-0", published=PUBLISHED)
    world.mixpanel.faults.clear()


def test_a_message_nobody_heard_of_is_ended_by_a_later_run_and_its_users_told_once(backend: World) -> None:
    mixpanel_down_for_the_nine_oclock_tick(backend)
    hourly(backend, 1, 24)  # the message's time is still its own: nobody reports Ada
    assert backend.inboxes() == []
    assert abandoned_lines(backend) == []
    hourly(backend, 25, 25)  # past MAX_MESSAGE_AGE_MINUTES and the last lease: ended, time given back
    (ended,) = abandoned_lines(backend)
    assert (ended["outcome"], ended["severity"], ended["history"]["end"]) == ("expired", "WARNING", "release")
    assert ended["window"]["end"] == "2026-11-28T09:00:00+00:00"
    assert "nobody had been told" in ended["error"]
    hourly(backend, 26, 28)  # the next run catches the time up
    assert sorted(backend.inboxes()) == sorted(EMAILS)
    assert sorted(backend.texts()) == sorted(PHONES)
    assert not [s for s in backend.log.summaries() if s["severity"] == "ERROR"]


def test_a_message_that_told_some_gives_up_the_rest_loudly_and_never_tells_anyone_twice(
    backend: World,
) -> None:
    texts_fail_for_the_nine_oclock_tick(backend)
    if backend.environ.get("STATE_STORE") == "firestore":
        backend.restart()
    hourly(backend, 1, 28)
    (ended,) = abandoned_lines(backend)
    assert (ended["outcome"], ended["severity"], ended["history"]["end"]) == (
        "stale_message",
        "ERROR",
        "close",
    )
    assert "gave up on sms (2 recipients)" in ended["error"]
    assert sorted(backend.inboxes()) == sorted(EMAILS)  # Ada was never emailed again
    assert backend.texts() == []  # given up, and said so


@pytest.mark.parametrize("catch_up", ["0", "60"])
def test_its_users_are_never_told_again_as_late_arrivals_whatever_the_catch_up(
    world: World, catch_up: str
) -> None:
    # The users a message reported are kept until its record could expire: its time opens to the
    # late-arrival search only once a later run ended it, a day after it was published.
    world.environ["MAX_CATCH_UP_MINUTES"] = catch_up
    texts_fail_for_the_nine_oclock_tick(world)
    hourly(world, 1, 28)
    assert len(abandoned_lines(world)) == 1
    assert sorted(world.inboxes()) == sorted(EMAILS)


def test_on_firestore_too_with_its_ttl_policy_deleting_what_expired(world: World, firestore: Any) -> None:
    world.environ.update({"STATE_STORE": "firestore", **firestore.environ, "MAX_CATCH_UP_MINUTES": "0"})
    texts_fail_for_the_nine_oclock_tick(world)
    for hour in range(1, 29):
        ttl_policy(firestore, world.clock.now)  # the emulator has none: what expired is deleted by hand
        hourly(world, hour, hour)
    assert len(abandoned_lines(world)) == 1
    assert sorted(world.inboxes()) == sorted(EMAILS)


def ttl_policy(firestore: Any, now: datetime) -> None:
    """Delete the documents whose expire_at has passed, as Firestore's TTL policy does."""
    for collection in ("reported", "runs"):
        for document in firestore.documents(collection):
            expire = document.get("fields", {}).get("expire_at", {}).get("timestampValue")
            if expire and datetime.fromisoformat(expire.replace("Z", "+00:00")) <= now:
                requests.delete(
                    f"http://{firestore.host}/v1/{document['name']}", timeout=30
                ).raise_for_status()


@pytest.mark.parametrize(
    ("age", "catch_up", "last_hour"),
    [("1440", "0", 28), ("1440", "60", 28), ("10080", "10080", 172)],
    ids=["a day old, no catch-up", "a day old, an hour of catch-up", "a week old, a week of catch-up"],
)
def test_time_given_back_that_the_next_run_cannot_reach_is_an_error_naming_the_re_run(
    world: World, age: str, catch_up: str, last_hour: int
) -> None:
    world.environ.update(MAX_MESSAGE_AGE_MINUTES=age, MAX_CATCH_UP_MINUTES=catch_up)
    mixpanel_down_for_the_nine_oclock_tick(world)
    hourly(world, 1, last_hour)
    (ended,) = abandoned_lines(world)
    assert (ended["outcome"], ended["severity"]) == ("expired", "WARNING")  # its time given back
    (said,) = errors(world)  # by the next run, which cannot reach it
    assert '{"start": "2026-11-28T08:00:00+00:00", "end": "2026-11-28T09:00:00+00:00"}' in said["error"]


def test_an_abandoned_backfill_that_left_recipients_untold_says_so(backend: World) -> None:
    hourly(backend, 0, 0)  # nobody yet
    backend.users("2026-11-28T08:30:00")
    backend.twilio.script(*[Fault.status(503)] * backend.services.policy.attempts * len(PHONES))
    backend.clock.advance(minutes=30)
    backfill = b'{"start": "2026-11-28T08:00:00Z", "end": "2026-11-28T09:00:00Z"}'
    line = backend.redelivery(backfill, message_id="backfill", published=backend.clock.now)
    assert (line["outcome"], line["severity"]) == ("will_retry", "WARNING")
    backend.twilio.faults.clear()
    if backend.environ.get("STATE_STORE") == "firestore":
        backend.restart()
    hourly(backend, 1, 26)  # Pub/Sub never delivers the backfill again
    (ended,) = abandoned_lines(backend)
    assert (ended["outcome"], ended["severity"]) == ("stale_message", "ERROR")
    assert "gave up on sms (2 recipients)" in ended["error"]


def test_a_dry_run_leaves_an_abandoned_message_for_a_real_run(backend: World) -> None:
    mixpanel_down_for_the_nine_oclock_tick(backend)
    backend.clock.now = PUBLISHED + DAY + LEASE + timedelta(hours=1)
    published = backend.clock.now - timedelta(seconds=5)
    backend.deliver(b'{"lookback_minutes": 60, "dry_run": true}', message_id="dry", published=published)
    assert abandoned_lines(backend) == []
    backend.deliver(message_id="tick-real", published=published)
    assert len(abandoned_lines(backend)) == 1


def test_a_message_whose_record_expired_while_open_is_given_up_loudly(world: World) -> None:
    # Memory: records expire as Firestore's TTL deletes them (MAX_MESSAGE_AGE_MINUTES plus a day).
    mixpanel_down_for_the_nine_oclock_tick(world)
    paused = PUBLISHED + 2 * DAY + timedelta(hours=1)  # the schedule was paused for two days
    world.clock.now = paused + timedelta(seconds=5)
    world.deliver(message_id="tick-after-pause", published=paused)
    (ended,) = abandoned_lines(world)
    assert (ended["outcome"], ended["severity"]) == ("stale_message", "ERROR")
    assert "its record expired before it ended" in ended["error"]
    assert datetime(2026, 11, 28, 9, tzinfo=UTC).isoformat() == ended["window"]["end"]


# -- a deployment upgraded while a message held its time open ------------------------------------


def as_kept_before_this_version(firestore: Any) -> None:
    """Rewrite the history's open claims as versions before 1.1 kept them: bare spans."""
    base = f"http://{firestore.host}/v1/projects/{firestore.project}/databases/(default)/documents"
    document = requests.get(f"{base}/coverage/history", timeout=30).json()
    claims = document["fields"]["open"]["mapValue"].get("fields", {})
    spans = [
        span
        for claim in claims.values()
        for span in claim["mapValue"]["fields"]["spans"]["arrayValue"]["values"]
    ]
    assert spans
    requests.patch(
        f"{base}/coverage/history",
        params={"updateMask.fieldPaths": "open"},
        json={"fields": {"open": {"arrayValue": {"values": spans}}}},
        timeout=30,
    ).raise_for_status()


@pytest.fixture
def upgraded(world: World, firestore: Any) -> World:
    """The 09:00 tick left open (Mixpanel down) by an earlier version; then the upgrade."""
    world.environ.update({"STATE_STORE": "firestore", **firestore.environ})
    world.users("2026-11-28T08:30:00")
    mixpanel_down_for_the_nine_oclock_tick(world)
    as_kept_before_this_version(firestore)
    world.restart()
    return world


def test_a_message_kept_open_across_an_upgrade_ends_on_its_redelivery_telling_everyone_once(
    upgraded: World,
) -> None:
    hourly(upgraded, 11, 13)  # the upgraded deployment's ticks leave its time alone
    upgraded.clock.now = PUBLISHED + timedelta(hours=13, minutes=30)
    assert upgraded.deliver(message_id="tick-0", published=PUBLISHED).outcome.value == "sent"
    hourly(upgraded, 14, 30)
    assert sorted(upgraded.inboxes()) == sorted(EMAILS)
    assert not errors(upgraded)


def test_a_message_left_open_by_an_earlier_version_and_dropped_is_given_up_loudly(upgraded: World) -> None:
    hourly(upgraded, 1, 30)
    (ended,) = abandoned_lines(upgraded)
    assert (ended["outcome"], ended["severity"]) == ("stale_message", "ERROR")
    assert "who it told is unknown" in ended["error"]
