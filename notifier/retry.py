"""One retry policy for every outbound call: bounded attempts, jittered backoff, a run budget.

A call site says what it retries by raising TransientError (with the server's Retry-After, if any);
everything else propagates at once. Waits never run past the run's deadline.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from notifier.errors import TransientError

T = TypeVar("T")


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

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return self.clock() - self.started


@dataclass(frozen=True)
class Retrier:
    """Runs calls under a policy and a deadline; `sleep` and `rng` are seams for tests."""

    policy: RetryPolicy
    deadline: Deadline
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def timeouts(self) -> tuple[float, float]:
        """(connect, read) timeouts for the next request, shortened to the time left."""
        left = max(self.deadline.remaining(), 0.05)
        return min(self.policy.connect_timeout, left), min(self.policy.read_timeout, left)

    def timeout(self) -> float:
        """One timeout for clients that take a single number, never past the time left."""
        connect, read = self.timeouts()
        return min(connect + read, max(self.deadline.remaining(), 0.05))

    def call(self, attempt: Callable[[], T]) -> T:
        """Run `attempt`, retrying TransientError until attempts or the deadline run out."""
        for number in range(1, self.policy.attempts + 1):
            try:
                return attempt()
            except TransientError as error:
                if number == self.policy.attempts:
                    raise
                wait = self._wait(number, error.retry_after)
                if wait >= self.deadline.remaining() - 0.05:
                    raise
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
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now()).total_seconds(), 0.0)


def is_transient_status(status: int) -> bool:
    """429 and 5xx may succeed later; other 4xx will not."""
    return status == 429 or status >= 500
