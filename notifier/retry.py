"""One retry policy for every outbound call: bounded attempts, jittered backoff, a run budget.

A call site says what it retries by raising TransientError (with the server's Retry-After, if any);
everything else propagates at once. Waits never run past the run's deadline, each retry leaves one
log line, and `bounded` holds a single call to the time left however slowly a server answers.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from notifier.errors import TransientError

T = TypeVar("T")
LOG = logging.getLogger(__name__)
# A wait shorter than this before the deadline is not started: the retry could not finish anyway.
MIN_USEFUL_SECONDS = 0.05
# How far past its deadline a bounded call may run: the time to notice and give up (README, Retries).
OVERRUN_GRACE_SECONDS = 0.5


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one call: attempts, backoff and per-request timeouts (seconds)."""

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    connect_timeout: float = 5.0
    read_timeout: float = 30.0


@dataclass
class Deadline:
    """The time left for the whole run; every wait and request timeout fits inside it."""

    seconds: float
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def remaining(self) -> float:
        """Seconds left before the run must give up."""
        return self.seconds - (self.clock() - self.started)


class DeadlinePassed(Exception):
    """A bounded call was still running when the run's time ran out; it was abandoned."""


@dataclass(frozen=True)
class RetryEvent:
    """One retry about to happen: which call, which attempt failed, how long until the next, and why."""

    call: str
    attempt: int
    wait: float
    reason: str


@dataclass
class RetryCounter:
    """Counts the retries of a run and logs each one; the summary reports the count."""

    count: int = 0

    def __call__(self, event: RetryEvent) -> None:
        self.count += 1
        LOG.warning(
            "retrying %s after attempt %d in %.2f s: %s",
            event.call,
            event.attempt,
            event.wait,
            event.reason,
            extra={"fields": {"event": "retry", "call": event.call, "attempt": event.attempt}},
        )


def _ignore(_event: RetryEvent) -> None:
    return None


@dataclass(frozen=True)
class Retrier:
    """Runs calls under a policy and a deadline; `sleep`, `rng` and `on_retry` are seams for tests."""

    policy: RetryPolicy
    deadline: Deadline
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    on_retry: Callable[[RetryEvent], None] = _ignore

    def timeouts(self) -> tuple[float, float]:
        """(connect, read) timeouts for the next request, shortened to the time left."""
        left = max(self.deadline.remaining(), MIN_USEFUL_SECONDS)
        return min(self.policy.connect_timeout, left), min(self.policy.read_timeout, left)

    def timeout(self) -> float:
        """One timeout for clients that take a single number, never past the time left."""
        connect, read = self.timeouts()
        return min(connect + read, max(self.deadline.remaining(), MIN_USEFUL_SECONDS))

    def call(self, attempt: Callable[[], T], *, name: str = "call") -> T:
        """Run `attempt`, retrying TransientError until attempts or the deadline run out."""
        for number in range(1, self.policy.attempts + 1):
            try:
                return attempt()
            except TransientError as error:
                if number == self.policy.attempts:
                    raise
                wait = self._wait(number, error.retry_after)
                if wait >= self.deadline.remaining() - MIN_USEFUL_SECONDS:
                    raise
                self.on_retry(RetryEvent(name, number, wait, str(error)))
                self.sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def bounded(self, call: Callable[[], T]) -> T:
        """Run one blocking call, abandoning it (DeadlinePassed) when the run's time is up.

        Socket timeouts apply per read, so a server that trickles a byte at a time could hold a call
        for ever; the call runs in a daemon thread and is left behind at the deadline.
        """
        outcome: list[T] = []
        failure: list[BaseException] = []

        def target() -> None:
            try:
                outcome.append(call())
            except BaseException as error:  # noqa: BLE001 - handed to the caller's thread as is
                failure.append(error)

        worker = threading.Thread(target=target, name="bounded-call", daemon=True)
        worker.start()
        worker.join(max(self.deadline.remaining(), MIN_USEFUL_SECONDS) + OVERRUN_GRACE_SECONDS)
        if worker.is_alive():
            raise DeadlinePassed("the run's time ran out while waiting for an answer")
        if failure:
            raise failure[0]
        return outcome[0]

    def _wait(self, number: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return max(retry_after, 0.0)
        # "Full jitter": spread retries from many instances instead of synchronising them.
        ceiling = min(self.policy.max_delay, self.policy.base_delay * 2 ** (number - 1))
        return self.rng.uniform(0, ceiling)


def parse_retry_after(
    headers: Mapping[str, str] | None, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not headers:
        return None
    value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    if not isinstance(value, str):
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value) if len(value) <= 9 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now()).total_seconds(), 0.0)


def is_transient_status(status: int) -> bool:
    """429 and 5xx may succeed later; other 4xx will not."""
    return status == 429 or status >= 500
