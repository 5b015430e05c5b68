"""Told once, nobody owed left untold (SPEC: Durable state), as a rule-based machine on every backend.

Random scheduler ticks (in any order, delivered again, lost until the end, or dropped by Pub/Sub for
good), profiles that reach Mixpanel up to LATE_ARRIVAL_MINUTES after they were created, providers
and the history failing transiently, answers lost after the provider acted, every recipient refusing,
and (with Firestore) restarted instances. After every step no recipient has heard of any user twice;
at the end, once everything not dropped is delivered again without faults and the scheduler has run
on for a day, every recipient has heard of every user once, or a summary at ERROR gave them up.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from notifier.errors import RedeliveryRequested
from notifier.retry import RetryPolicy
from notifier.services import Services
from sandbox.firestore import FirestoreFaults
from sandbox.function import run_summaries
from sandbox.mixpanel import MixpanelStandIn, profile
from sandbox.sendgrid import SendGridStandIn
from sandbox.server import Fault
from sandbox.slack import SlackStandIn
from sandbox.twilio import ACCOUNT_SID, TwilioStandIn
from tests.conftest import (
    MIXPANEL_SECRET,
    PROJECT_ID,
    SENDGRID_KEY,
    SERVICE_ACCOUNT,
    SLACK_PATH,
    TWILIO_TOKEN,
    Clock,
    LogLines,
    Sleeps,
    World,
)

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
HOURS = 6  # ticks for the windows 08:00-09:00 ... 13:00-14:00
A_DAY_LATER = HOURS + 26  # ticks from here on find a dropped tick past MAX_MESSAGE_AGE_MINUTES
EMAIL, PHONE = "team@example.com", "+14155550100"
NAME = re.compile(r"\bUser[A-Z]\b")  # letters: an SMS drops a run of 3 digits from a name
EXAMPLES = {"memory": 200, "firestore": 40}
POLICY = RetryPolicy(attempts=2, base_delay=0.0, max_delay=0.0, connect_timeout=1.0, read_timeout=2.0)


def published(k: int) -> datetime:
    """When the scheduler publishes the tick for hour k."""
    return T0 + timedelta(hours=k + 1, seconds=42)


class TellsEveryoneOnce(RuleBasedStateMachine):
    """One deployment's life; `firestore` None: the memory history (one instance, never restarted)."""

    firestore: Any = None
    log: LogLines

    def __init__(self) -> None:
        super().__init__()
        self.stack = ExitStack()
        mixpanel = self.stack.enter_context(
            MixpanelStandIn(project_id=PROJECT_ID, username=SERVICE_ACCOUNT, secret=MIXPANEL_SECRET)
        )
        sendgrid = self.stack.enter_context(SendGridStandIn(api_key=SENDGRID_KEY))
        twilio = self.stack.enter_context(TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=TWILIO_TOKEN))
        slack = SlackStandIn(path=SLACK_PATH)  # off: two recipients are enough to tell
        environ = {
            "MIXPANEL_PROJECT_ID": str(PROJECT_ID),
            "MIXPANEL_SERVICE_ACCOUNT": SERVICE_ACCOUNT,
            "MIXPANEL_SECRET": MIXPANEL_SECRET,
            "EMAIL_TO": EMAIL,
            "EMAIL_FROM": "alerts@example.com",
            "SENDGRID_API_KEY": SENDGRID_KEY,
            "SMS_TO": PHONE,
            "SMS_FROM": "+14155550199",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "MIXPANEL_API_URL": mixpanel.url,
            "SENDGRID_API_URL": sendgrid.url,
            "TWILIO_API_URL": twilio.url,
            "PROJECT_LABEL": "Acme",
        }
        self.commits: FirestoreFaults | None = None
        if self.firestore is not None:
            self.firestore.clear()
            self.commits = self.stack.enter_context(FirestoreFaults(self.firestore, only=":commit"))
            environ.update({"STATE_STORE": "firestore", **self.commits.environ})
        clock = Clock(T0 + timedelta(hours=1))
        services = Services(policy=POLICY, sleep=Sleeps(), now=clock, rng=random.Random(1))
        self.world = World(mixpanel, sendgrid, twilio, slack, environ, services, Sleeps(), clock, self.log)
        self.arriving: list[tuple[datetime, dict[str, Any]]] = []  # (reaches Mixpanel at, profile)
        self.delivered: set[str] = set()  # messages delivered at least once
        self.dropped: set[int] = set()  # ticks Pub/Sub will never deliver again
        self.first_line = len(self.log.lines)  # the log is the test's, shared by every example
        self.names: list[str] = []

    def teardown(self) -> None:
        self.stack.close()

    # -- what happens --------------------------------------------------------------------------
    @rule(ago=st.integers(0, 59), late=st.integers(0, 59))
    def a_user_signs_up(self, ago: int, late: int) -> None:
        """Created `ago` minutes before now, reaching Mixpanel `late` minutes after it was created,
        but never before now (at most LATE_ARRIVAL_MINUTES after it was created, as SPEC allows)."""
        now = self.world.clock.now
        created = (now - timedelta(minutes=ago)).replace(second=0, microsecond=0)
        if len(self.names) >= 8 or not T0 <= created < T0 + timedelta(hours=HOURS):
            return  # enough to tell apart (every SMS still lists every name), or outside the ticks
        name = f"User{chr(ord('A') + len(self.names))}"
        self.names.append(name)
        entry = profile(name.lower(), created.strftime("%Y-%m-%dT%H:%M:%S"), name=name)
        self.arriving.append((max(created + timedelta(minutes=late), now), entry))

    @rule(minutes=st.integers(1, 90))
    def time_passes(self, minutes: int) -> None:
        if self.world.clock.now < T0 + timedelta(hours=HOURS + 4):
            self.world.clock.advance(minutes=minutes)

    @rule(k=st.integers(0, HOURS - 1))
    def a_tick_is_delivered(self, k: int) -> None:
        if self.world.clock.now < published(k):
            self.world.clock.now = published(k)
        self._deliver(k)

    @rule(k=st.integers(0, HOURS - 1))
    def pubsub_drops_a_tick(self, k: int) -> None:
        """Pub/Sub never delivers the tick again (its 24 hours of redeliveries ran out, or a redeploy
        dropped it): whatever the tick left open, a later run must end. (A tick never delivered is
        not dropped: the earliest would move the first digest, before which nothing is owed.)"""
        if f"tick-{k}" in self.delivered:
            self.dropped.add(k)

    @rule(provider=st.sampled_from(["mixpanel", "sendgrid", "twilio"]))
    def a_provider_fails_for_a_while(self, provider: str) -> None:
        getattr(self.world, provider).script(*[Fault.status(503)] * POLICY.attempts)

    @rule(provider=st.sampled_from(["sendgrid", "twilio"]))
    def an_answer_is_lost_after_the_provider_acted(self, provider: str) -> None:
        getattr(self.world, provider).script(Fault.dropped(after_acting=True))

    @rule(k=st.integers(0, HOURS - 1))
    def every_recipient_refuses_a_tick(self, k: int) -> None:
        """Both providers refuse one delivery of a tick nobody heard of yet (a bad key everywhere):
        its time is given back. A refusal of some recipients only is final for them, so it is not
        played here (test_failures.py has it)."""
        world = self.world
        faults = (
            world.mixpanel.faults,
            world.sendgrid.faults,
            world.twilio.faults,
            self.commits and self.commits.faults,
        )
        if any(faults) or f"tick-{k}" in self.delivered:
            return  # only then does the refusal reach every recipient of the message
        world.sendgrid.script(Fault.status(401))
        world.twilio.script(Fault.status(400))
        self.a_tick_is_delivered(k)
        world.sendgrid.faults.clear()  # the keys are fixed: what found nobody to refuse is not kept
        world.twilio.faults.clear()

    @rule(faults=st.lists(st.sampled_from(["through", "503", "lost"]), min_size=1, max_size=4))
    def the_history_fails_now_and_then(self, faults: list[str]) -> None:
        """Brief failures of the history: never so many in a row that a send's note and every write
        after it fail (a history down for the rest of a run leaves that send 'maybe sent', which is
        logged for a person: tests/test_exactly_once.py has that case)."""
        if self.commits is None or len(self.commits.faults) + len(faults) > 2 * POLICY.attempts + 1:
            return
        lost = Fault.dropped(after_acting=True)
        menu = {"through": Fault(accept=True), "503": Fault.status(503), "lost": lost}
        self.commits.script(*(menu[name] for name in faults))

    @rule()
    def an_instance_restarts(self) -> None:
        if self.firestore is not None:  # the memory history dies with its instance
            self.world.restart()

    # -- what must hold ------------------------------------------------------------------------
    @invariant()
    def nobody_hears_of_anyone_twice(self) -> None:
        told = self._told()
        assert max(told.values(), default=0) <= 1, f"told twice: {[k for k, n in told.items() if n > 1]}"

    def _told(self) -> Counter[tuple[str, str]]:
        told: Counter[tuple[str, str]] = Counter()
        for mail in self.world.sendgrid.mails():
            text = next(c["value"] for c in mail["content"] if c["type"] == "text/plain")
            for personalization in mail["personalizations"]:
                told.update((personalization["to"][0]["email"], name) for name in set(NAME.findall(text)))
        for message in self.world.twilio.messages():
            told.update((message["To"], name) for name in set(NAME.findall(message["Body"])))
        return told

    def settle(self) -> None:
        """The faults run out; every tick not dropped is delivered again, then three more hours of
        ticks, and two a day later (which end what dropped ticks left open, and catch it up)."""
        for server in (self.world.mixpanel, self.world.sendgrid, self.world.twilio, self.commits):
            if server is not None:
                server.faults.clear()
        self.world.clock.advance(minutes=10)  # past any lease a failed ending left behind
        for k in [*range(HOURS + 3), A_DAY_LATER, A_DAY_LATER + 1]:
            if self.world.clock.now < published(k):
                self.world.clock.now = published(k)
            self._deliver(k)
        told = self._told()
        untold = [(who, name) for who in (EMAIL, PHONE) for name in self.names if told[(who, name)] != 1]
        mine = run_summaries("\n".join(self.log.lines[self.first_line :]))
        given_up = [summary for summary in mine if summary["outcome"] == "stale_message"]
        assert not untold or given_up, f"owed and never told: {untold}"

    def _deliver(self, k: int) -> None:
        if k in self.dropped:
            return
        self.world.mixpanel.profiles += [p for at, p in self.arriving if at <= self.world.clock.now]
        self.arriving = [(at, p) for at, p in self.arriving if at > self.world.clock.now]
        self.delivered.add(f"tick-{k}")
        with contextlib.suppress(RedeliveryRequested):  # Pub/Sub delivers it again later
            self.world.deliver(message_id=f"tick-{k}", published=published(k))


class Settled(TellsEveryoneOnce):
    """The machine, with the final settling as its last step."""

    @initialize()
    def nothing_yet(self) -> None:
        pass

    def teardown(self) -> None:
        try:
            self.settle()
        finally:
            super().teardown()


@pytest.mark.parametrize("backend", ["memory", "firestore"])
def test_every_user_is_told_to_everyone_once_whatever_happens(
    backend: str, log_lines: LogLines, request: pytest.FixtureRequest
) -> None:
    firestore = request.getfixturevalue("firestore_emulator") if backend == "firestore" else None
    machine = type("Machine", (Settled,), {"firestore": firestore, "log": log_lines})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=EXAMPLES[backend],
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
