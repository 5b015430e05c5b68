"""Quiet hours for texts (SPEC: What the digest tells), through the function's handler on both
histories: no text while SMS_QUIET_HOURS holds, then one text counting everyone held, told once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notifier.outcome import Outcome
from notifier.summary import RunSummary
from sandbox.server import Fault
from tests.conftest import PHONES, World

BERLIN_EVENING = datetime(2026, 11, 28, 20, 0, tzinfo=UTC)  # 21:00 in Berlin (CET, UTC+1)


@pytest.fixture
def night(backend: World) -> World:
    backend.environ.update(TIMEZONE="Europe/Berlin", SMS_QUIET_HOURS="22:00-07:00", PROJECT_LABEL="Acme iOS")
    backend.mixpanel.profiles.clear()
    return backend


def tick(world: World, end: datetime) -> RunSummary:
    """The hourly tick for the window ending at `end`, delivered just after."""
    published = end + timedelta(seconds=42)
    world.clock.now = max(world.clock.now, published + timedelta(seconds=5))
    return world.deliver(message_id=f"tick-{end:%d%H%M}", published=published)


def sign_up(world: World, at: datetime) -> None:
    world.users(at.strftime("%Y-%m-%dT%H:%M:%S"))


def a_morning_text_reaches_only_the_second_phone(night: World) -> datetime:
    """A user held at 03:15 Berlin; the 07:00 tick's text fails for the first phone (redelivery
    requested) and reaches the second. Returns the 07:00 message's publish time."""
    sign_up(night, datetime(2026, 11, 29, 2, 15, tzinfo=UTC))
    tick(night, datetime(2026, 11, 29, 3, 0, tzinfo=UTC))  # 04:00 Berlin: held
    night.twilio.script(*[Fault.status(503)] * night.services.policy.attempts)  # the first phone fails
    published = datetime(2026, 11, 29, 6, 0, 42, tzinfo=UTC)
    night.clock.now = published + timedelta(seconds=5)
    night.redelivery(message_id="tick-morning", published=published)
    assert [m["To"] for m in night.twilio.messages()] == [PHONES[1]]
    return published


def texts(world: World) -> list[str]:
    return [m["Body"] for m in world.twilio.messages() if m["To"] == PHONES[0]]


def test_a_night_is_held_then_texted_once_counting_everyone(night: World) -> None:
    for hour in (20, 21, 22, 1, 4):  # UTC: 21:30, 22:30, 23:30, 02:30 and 05:30 in Berlin
        day = 28 if hour > 12 else 29
        sign_up(night, datetime(2026, 11, day, hour, 30, tzinfo=UTC))
    end = BERLIN_EVENING
    while end <= datetime(2026, 11, 29, 7, 0, tzinfo=UTC):  # the ticks from 21:00 to 08:00 Berlin
        tick(night, end)
        end += timedelta(hours=1)
    # The tick at 21:00 Berlin (for 20:00-21:00) had nobody. From the tick at 22:00 (quiet hours begin)
    # to the one at 06:00 nothing is texted; the tick at 07:00 texts once, everyone since 21:00.
    (text,) = texts(night)
    assert text.startswith("Acme iOS: 5 new users since 21:00")
    summaries = night.log.summaries()
    assert sum(s.get("texts_held", 0) for s in summaries) == 5  # each held by a quiet tick
    assert summaries[-2]["held_in_text"] == 5  # the 07:00 tick's
    assert len(night.emails()) == 5  # each hour with a sign-up had its email, as usual


def test_the_first_text_after_quiet_hours_goes_even_when_its_own_hour_found_nobody(night: World) -> None:
    sign_up(night, datetime(2026, 11, 28, 23, 15, tzinfo=UTC))  # 00:15 in Berlin
    tick(night, datetime(2026, 11, 29, 0, 0, tzinfo=UTC))  # 01:00 Berlin: quiet
    assert texts(night) == []
    summary = tick(night, datetime(2026, 11, 29, 6, 0, tzinfo=UTC))  # 07:00 Berlin: nobody new
    assert summary.users == 0
    (text,) = texts(night)
    assert text.startswith("Acme iOS: 1 new user since 00:00")
    assert len(night.emails()) == 1  # the email of the 07:00 tick, which had nobody, is not sent


def test_the_text_after_quiet_hours_is_sent_once_whatever_is_redelivered(night: World) -> None:
    published = a_morning_text_reaches_only_the_second_phone(night)
    if night.environ.get("STATE_STORE") == "firestore":
        night.restart()  # a fresh instance: the history in Firestore is all that survives
    night.deliver(message_id="tick-morning", published=published)  # the redelivery texts the first phone
    assert night.deliver(message_id="tick-morning", published=published).outcome is Outcome.ALREADY_SENT
    tick(night, datetime(2026, 11, 29, 7, 0, tzinfo=UTC))  # 08:00: nothing held any more
    assert sorted(m["To"] for m in night.twilio.messages()) == sorted(PHONES)
    assert all("1 new user since 03:00" in m["Body"] for m in night.twilio.messages())


@pytest.mark.parametrize("own_users", [0, 1], ids=["alone", "beside an email"])
def test_a_text_refused_by_every_phone_keeps_the_held_users_for_the_next(
    night: World, own_users: int
) -> None:
    sign_up(night, datetime(2026, 11, 29, 2, 15, tzinfo=UTC))
    tick(night, datetime(2026, 11, 29, 3, 0, tzinfo=UTC))  # 04:00 Berlin: held
    if own_users:
        sign_up(night, datetime(2026, 11, 29, 5, 30, tzinfo=UTC))  # emailed at 07:00 all the same
    night.twilio.script(*[Fault.status(400)] * len(PHONES))
    tick(night, datetime(2026, 11, 29, 6, 0, tzinfo=UTC))  # 07:00: every phone refuses (SMS_FROM wrong)
    assert texts(night) == []
    assert len(night.emails()) == 1 + own_users  # the quiet hour's email went out as usual
    tick(night, datetime(2026, 11, 29, 7, 0, tzinfo=UTC))  # 08:00: fixed; the held user is still owed
    (text,) = texts(night)
    assert text.startswith("Acme iOS: 1 new user since 03:00")


def test_quiet_hours_follow_the_clock_across_a_change_of_time(night: World) -> None:
    # The night Berlin's clocks go back (25 October 2026, 03:00 CEST -> 02:00 CET).
    sign_up(night, datetime(2026, 10, 25, 1, 10, tzinfo=UTC))  # 02:10 CET, after the change
    night.clock.now = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
    for hour in range(6):  # the ticks ending 00:00 ... 05:00 UTC: 02:00 CEST ... 06:00 CET, all quiet
        tick(night, datetime(2026, 10, 25, hour, 0, tzinfo=UTC))
    assert texts(night) == []
    tick(night, datetime(2026, 10, 25, 6, 0, tzinfo=UTC))  # 07:00 CET: the first text
    (text,) = texts(night)
    assert text.startswith("Acme iOS: 1 new user since")


def test_a_backfill_at_night_texts_as_asked(night: World) -> None:
    sign_up(night, datetime(2026, 11, 29, 1, 15, tzinfo=UTC))
    backfill = b'{"start": "2026-11-29T01:00:00Z", "end": "2026-11-29T02:00:00Z"}'
    night.clock.now = datetime(2026, 11, 29, 2, 5, tzinfo=UTC)
    night.deliver(backfill, message_id="backfill", published=datetime(2026, 11, 29, 2, 1, tzinfo=UTC))
    assert len(texts(night)) == 1


@pytest.mark.parametrize("late_arrival", ["0", "60"])
def test_a_quiet_run_that_only_texts_holds_its_users_through_a_redelivery(
    night: World, late_arrival: str
) -> None:
    for name in ("EMAIL_TO", "EMAIL_FROM", "SENDGRID_API_KEY"):
        night.environ.pop(name)  # texts are the only channel: a quiet run has nothing to send at all
    night.environ["LATE_ARRIVAL_MINUTES"] = late_arrival
    sign_up(night, datetime(2026, 11, 29, 2, 15, tzinfo=UTC))  # 03:15 Berlin
    quiet = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    night.mixpanel.script(*[Fault.status(503)] * night.services.policy.attempts)  # its first delivery
    published = quiet + timedelta(seconds=42)
    night.clock.now = published + timedelta(seconds=5)
    assert night.redelivery(message_id="tick-quiet", published=published)["outcome"] == "will_retry"
    if night.environ.get("STATE_STORE") == "firestore":
        night.restart()
    night.clock.advance(minutes=10)
    resumed = night.deliver(message_id="tick-quiet", published=published)
    assert (resumed.outcome, resumed.texts_held) == (Outcome.NOTHING_TO_SEND, 1)
    tick(night, datetime(2026, 11, 29, 6, 0, tzinfo=UTC))  # 07:00 Berlin
    (text,) = texts(night)
    assert text.startswith("Acme iOS: 1 new user since 03:00")


def test_a_morning_text_given_up_as_stale_keeps_the_count_it_texted_told(night: World) -> None:
    published = a_morning_text_reaches_only_the_second_phone(night)
    night.clock.advance(hours=25)  # a redelivery now is past MAX_MESSAGE_AGE_MINUTES: given up
    if night.environ.get("STATE_STORE") == "firestore":
        night.restart()
    assert night.deliver(message_id="tick-morning", published=published).outcome is Outcome.STALE_MESSAGE
    sign_up(night, datetime(2026, 11, 30, 7, 30, tzinfo=UTC))
    tick(night, datetime(2026, 11, 30, 8, 0, tzinfo=UTC))  # 09:00 Berlin, the next day
    second = [m["Body"] for m in night.twilio.messages() if m["To"] == PHONES[1]][1]
    assert second.startswith("Acme iOS: 1 new user")  # not 2: the held one was texted already


ONE_AM = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)  # 01:00 in Berlin: quiet


def a_quiet_tick_emails_and_its_slack_post_fails(night: World) -> None:
    """A user at 00:15 Berlin; the 01:00 tick emails, holds the text, and Slack fails to the end."""
    night.with_slack()
    sign_up(night, datetime(2026, 11, 28, 23, 15, tzinfo=UTC))
    night.slack.script(*[Fault.status(503)] * night.services.policy.attempts)
    published = ONE_AM + timedelta(seconds=42)
    night.clock.now = published + timedelta(seconds=5)
    line = night.redelivery(message_id="tick-one", published=published)
    assert (line["texts_held"], line["channels"]["slack"]["outcome"]) == (1, "will_retry")
    night.slack.faults.clear()


def test_a_quiet_message_given_up_as_stale_keeps_its_users_for_the_morning_text(night: World) -> None:
    night.environ["MAX_MESSAGE_AGE_MINUTES"] = "5"
    a_quiet_tick_emails_and_its_slack_post_fails(night)
    night.clock.now = ONE_AM + timedelta(minutes=11)  # Pub/Sub's next delivery: past the age, stale
    stale = night.deliver(message_id="tick-one", published=ONE_AM + timedelta(seconds=42))
    assert stale.outcome is Outcome.STALE_MESSAGE
    assert stale.error is not None
    assert "gave up on slack (1 recipient)" in stale.error  # not on the texts: they are held
    end = ONE_AM + timedelta(hours=1)
    while end <= datetime(2026, 11, 29, 6, 0, tzinfo=UTC):  # on to 07:00 Berlin
        tick(night, end)
        end += timedelta(hours=1)
    (text,) = texts(night)
    assert text.startswith("Acme iOS: 1 new user since 00:00")


def test_a_quiet_message_ended_by_a_later_run_keeps_its_users_for_the_next_text(night: World) -> None:
    a_quiet_tick_emails_and_its_slack_post_fails(night)  # and Pub/Sub never delivers it again
    end = ONE_AM + timedelta(hours=1)
    while end <= ONE_AM + timedelta(hours=31):  # to 08:00 Berlin the next day
        tick(night, end)
        end += timedelta(hours=1)
    (text,) = texts(night)  # at 07:00 the next day: the message had held its user until it ended
    assert text.startswith("Acme iOS: 1 new user since 29 Nov 00:00 CET")
