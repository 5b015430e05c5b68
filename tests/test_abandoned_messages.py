"""A message whose deliveries stop before it ends (docs/failures.md; SPEC: Durable state).

Pub/Sub redelivers a failing message for 24 hours, then drops it; a redeploy drops what the old
trigger held. Its time must not stay claimed for ever: the first scheduled run after the message is
past MAX_MESSAGE_AGE_MINUTES (and any delivery of it is over) ends it as its last stale redelivery
would have, with a summary line of its own, and the run after catches up what was given back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

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
    backend.users("2026-11-28T08:30:00")
    backend.twilio.script(*[Fault.status(503)] * backend.services.policy.attempts * len(PHONES))
    backend.redelivery(message_id="tick-0", published=PUBLISHED)  # emailed; texts left for a redelivery
    assert sorted(backend.inboxes()) == sorted(EMAILS)
    assert backend.texts() == []
    # A redeploy recreates the trigger: Pub/Sub never delivers tick-0 again.
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
