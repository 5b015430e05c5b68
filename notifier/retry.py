"""One retry policy for every outbound call: bounded attempts, jittered backoff, a run budget.

Retrying happens at the call site, as in hynek/stamina: the call site says what it retries by raising
TransientError (with the server's Retry-After, if any); everything else propagates at once. Waits
never run past the run's deadline, each retry leaves one log line and is counted, and every request
goes through the instance's one transport, which holds it to the time left.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, TypeVar

from notifier.errors import TransientError

if TYPE_CHECKING:
    from notifier.transport import Answer, Request, Transport

T = TypeVar("T")
LOG = logging.getLogger(__name__)
# No request and no wait is started with less than this left: it could not finish in time.
MIN_USEFUL_SECONDS = 0.25


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
    """A run's calls: its policy, its deadline and the instance's transport; `sleep`, `rng` and
    `on_retry` are where the run (and a test) decides how waits happen and who hears of retries."""

    policy: RetryPolicy
    deadline: Deadline
    transport: Transport
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    on_retry: Callable[[RetryEvent], None] = _ignore

    def send(self, request: Request, *, reserve: float = 0.0) -> Answer:
        """One attempt of `request` through the transport, within the time left (plus `reserve`)."""
        return self.transport.send(request, self.deadline, self.policy, reserve=reserve)

    def has_time(self) -> bool:
        """True while a request could still be started and finished within the run's budget."""
        return self.deadline.remaining() >= MIN_USEFUL_SECONDS

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
                    raise  # the attempt after the wait could not finish in time
                self.on_retry(RetryEvent(name, number, wait, str(error)))
                self.sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

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
