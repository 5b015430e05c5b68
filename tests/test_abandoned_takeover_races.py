"""A later run ending an abandoned message (tests/test_abandoned_messages.py) while another does the
same, or while Firestore fails: nobody lost or told twice, one line for the message, and no ERROR
that would send a person to re-run what the schedule reports by itself.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from notifier.errors import RedeliveryRequested
from notifier.services import Services
from notifier.state import Intent
from sandbox.firestore import FirestoreFaults
from sandbox.server import Fault
from tests.conftest import EMAILS, PHONES, PUBLISHED, World
from tests.test_abandoned_messages import abandoned_lines, hourly, mixpanel_down_for_the_nine_oclock_tick


class Gate:
    """Holds both runs after their own claim; then the first to take over the abandoned message
    holds it (before ending it) until the second has asked for it too."""

    def __init__(self) -> None:
        self.claimed = threading.Barrier(2, timeout=30)
        self.lock = threading.Lock()
        self.asked = 0
        self.second_asked = threading.Event()

    def after_take_over(self) -> None:
        with self.lock:
            self.asked += 1
            first = self.asked == 1
        if first:
            self.second_asked.wait(30)
        else:
            self.second_asked.set()


class GatedStore:
    def __init__(self, inner: Any, gate: Gate) -> None:
        self._inner, self._gate = inner, gate

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def begin(self, request: Any) -> Any:
        if request.intent is Intent.RUN and request.message.startswith("backlog-"):
            try:
                return self._inner.begin(request)
            finally:
                self._gate.claimed.wait()
        if request.intent is Intent.GIVE_UP:
            try:
                return self._inner.begin(request)
            finally:
                self._gate.after_take_over()
        return self._inner.begin(request)


@dataclass
class GatedServices(Services):
    gate: Gate | None = None

    def store(self, settings: Any, retrier: Any, environ: Any) -> Any:
        inner = super().store(settings, retrier, environ)
        return GatedStore(inner, self.gate) if self.gate else inner


def test_two_runs_ending_the_same_abandoned_message_log_one_line_and_no_false_in_progress(
    backend: World,
) -> None:
    backend.users("2026-11-28T08:30:00")
    mixpanel_down_for_the_nine_oclock_tick(backend)
    hourly(backend, 1, 24)
    firestore = backend.environ.get("STATE_STORE") == "firestore"
    gate = Gate()
    base = backend.services
    shared_memory = base.memory

    def instance(seed: int) -> GatedServices:
        # Memory: one instance (shared store); Firestore: two instances on one database.
        services = GatedServices(
            policy=base.policy, sleep=base.sleep, now=backend.clock, rng=random.Random(seed), gate=gate
        )
        if not firestore:
            services.memory = shared_memory
        return services

    # A backlog: ticks 25 and 26 delivered at once, both past tick-0's age plus lease.
    backend.clock.now = PUBLISHED + timedelta(hours=26, seconds=5)
    outcomes: dict[int, Any] = {}

    def deliver(hour: int, seed: int) -> None:
        world = World(**{**backend.__dict__, "services": instance(seed)})
        try:
            outcomes[hour] = world.deliver(
                message_id=f"backlog-{hour}", published=PUBLISHED + timedelta(hours=hour)
            ).outcome.value
        except RedeliveryRequested as error:
            outcomes[hour] = error

    threads = [threading.Thread(target=deliver, args=(h, 10 + h)) for h in (25, 26)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    backend.services = instance(99)
    backend.services.gate = None
    hourly(backend, 27, 29)

    about_tick0 = [
        (s["outcome"], s["severity"], s.get("error", "")[:160])
        for s in backend.log.summaries()
        if (s.get("window") or {}).get("end") == "2026-11-28T09:00:00+00:00"
    ][5:]  # after tick-0's own five deliveries
    # Nobody lost, nobody twice.
    assert sorted(backend.inboxes()) == sorted(EMAILS)
    assert sorted(backend.texts()) == sorted(PHONES)
    # One message ended once: one summary line for it, and no WARNING promising a redelivery that
    # Pub/Sub will never make ("another delivery ... Pub/Sub will deliver it again").
    assert len(about_tick0) == 1, about_tick0


@pytest.fixture
def durable(world: World, firestore: Any) -> World:
    world.environ.update({"STATE_STORE": "firestore", **firestore.environ})
    return world


@pytest.fixture
def commits(durable: World, firestore_emulator: Any) -> Iterator[FirestoreFaults]:
    with FirestoreFaults(firestore_emulator, only=":commit") as faults:
        durable.environ.update(faults.environ)
        yield faults


@dataclass
class ArmedServices(Services):
    """Scripts `faults` on the commits proxy the first time a run takes over an abandoned message;
    `after_begin`: once the takeover's claim went through (its ending meets them), else before."""

    proxy: FirestoreFaults | None = None
    faults: tuple[Fault, ...] = ()
    after_begin: bool = True
    armed: bool = True

    def store(self, settings: Any, retrier: Any, environ: Any) -> Any:
        inner = super().store(settings, retrier, environ)
        services = self

        class Armed:
            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

            def begin(self, request: Any) -> Any:
                proxy = services.proxy
                arm = request.intent is Intent.GIVE_UP and services.armed and proxy is not None
                if arm and proxy and not services.after_begin:
                    services.armed = False
                    proxy.script(*services.faults)
                try:
                    return inner.begin(request)
                finally:
                    if arm and proxy and services.after_begin:
                        services.armed = False
                        proxy.script(*services.faults)

        return Armed()


def armed(world: World, proxy: FirestoreFaults, faults: list[Fault], *, after_begin: bool) -> None:
    base = world.services
    world.services = ArmedServices(
        policy=base.policy,
        sleep=base.sleep,
        now=world.clock,
        rng=random.Random(3),
        proxy=proxy,
        faults=tuple(faults),
        after_begin=after_begin,
    )


CASES: dict[str, tuple[bool, Callable[[int], list[Fault]]]] = {
    # the takeover's claim: every attempt's commit answered 503
    "begin-503": (False, lambda n: [Fault.status(503)] * n),
    # the takeover's claim lands but its answer is lost, once
    "begin-lost-answer": (False, lambda n: [Fault.dropped(after_acting=True)]),
    # giving the time back (and the keep-open fallback) answered 503 on every attempt
    "release-503": (True, lambda n: [Fault.status(503)] * (2 * n)),
    # giving the time back lands, its answer is lost
    "release-lost-answer": (True, lambda n: [Fault.dropped(after_acting=True)]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_takeover_that_meets_firestore_faults_neither_loses_nor_repeats_and_never_cries_wolf(
    durable: World, commits: FirestoreFaults, case: str
) -> None:
    durable.users("2026-11-28T08:30:00")
    mixpanel_down_for_the_nine_oclock_tick(durable)
    hourly(durable, 1, 24)
    after_begin, faults = CASES[case]
    armed(durable, commits, faults(durable.services.policy.attempts), after_begin=after_begin)
    hourly(durable, 25, 29)
    lines = [
        (s["outcome"], s["severity"], s.get("history", {}).get("why", "")) for s in abandoned_lines(durable)
    ]
    # Nobody lost, nobody twice.
    assert sorted(durable.inboxes()) == sorted(EMAILS), lines
    assert sorted(durable.texts()) == sorted(PHONES), lines
    # An ERROR is for a person to act on; here the schedule reports the window by itself, so an
    # ERROR telling them to re-run it with start/end would make them tell everyone twice.
    wolf = [
        s
        for s in abandoned_lines(durable)
        if s["severity"] == "ERROR"
        and ("start/end" in s.get("error", "") or "start/end" in str(s.get("history")))
    ]
    assert not wolf, [(s["outcome"], s["error"][-200:], s.get("history")) for s in wolf]
    # A line must not say its time was given back when the history row says it was not.
    lies = [
        s
        for s in abandoned_lines(durable)
        if "given back" in s.get("error", "") and s.get("history", {}).get("end") != "release"
    ]
    assert not lies, [(s["outcome"], s["severity"], s["error"][-90:], s.get("history")) for s in lies]
