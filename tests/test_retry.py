"""The retry policy: bounded attempts, jittered backoff, Retry-After, and the run's deadline.

What one attempt may take (the transport's share of the deadline) is in test_transport.py.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.errors import SourceRejected, SourceUnavailable
from notifier.replies import is_transient_status
from notifier.retry import Deadline, Retrier, RetryEvent, RetryPolicy, parse_retry_after
from notifier.transport import Transport
from tests.conftest import Sleeps


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def under(policy: RetryPolicy, deadline: Deadline, **options: Any) -> Retrier:
    """The policy under test, with a transport its calls never use."""
    return Retrier(policy, deadline, Transport(), **options)


def flaky(failures: list[Exception]) -> tuple[list[int], object]:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "ok"

    return calls, attempt


def test_transient_errors_are_retried_until_success(sleeps: Sleeps) -> None:
    calls, attempt = flaky([SourceUnavailable("503", service="x"), SourceUnavailable("503", service="x")])
    retrier = under(RetryPolicy(attempts=5), Deadline(60), sleep=sleeps)
    assert retrier.call(attempt) == "ok"  # type: ignore[arg-type]
    assert len(calls) == 3
    assert len(sleeps.calls) == 2


def test_permanent_errors_are_not_retried(sleeps: Sleeps) -> None:
    calls, attempt = flaky([SourceRejected("401", service="x")])
    with pytest.raises(SourceRejected):
        under(RetryPolicy(), Deadline(60), sleep=sleeps).call(attempt)  # type: ignore[arg-type]
    assert (len(calls), sleeps.calls) == (1, [])


def test_attempts_are_bounded(sleeps: Sleeps) -> None:
    calls, attempt = flaky([SourceUnavailable("503", service="x") for _ in range(10)])
    with pytest.raises(SourceUnavailable):
        under(RetryPolicy(attempts=3), Deadline(60), sleep=sleeps).call(attempt)  # type: ignore[arg-type]
    assert len(calls) == 3


def test_retry_after_is_honoured_over_the_backoff(sleeps: Sleeps) -> None:
    _calls, attempt = flaky([SourceUnavailable("429", service="x", retry_after=7.0)])
    under(RetryPolicy(base_delay=0.1), Deadline(60), sleep=sleeps).call(attempt)  # type: ignore[arg-type]
    assert sleeps.calls == [7.0]


def test_a_wait_that_would_pass_the_deadline_gives_up_at_once(sleeps: Sleeps) -> None:
    calls, attempt = flaky([SourceUnavailable("429", service="x", retry_after=120.0)])
    with pytest.raises(SourceUnavailable):
        under(RetryPolicy(), Deadline(60), sleep=sleeps).call(attempt)  # type: ignore[arg-type]
    assert (len(calls), sleeps.calls) == (1, [])


@given(st.integers(min_value=1, max_value=12), st.integers(min_value=0, max_value=2**32))
def test_backoff_is_full_jitter_under_an_exponential_ceiling(attempt: int, seed: int) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=20.0)
    retrier = under(policy, Deadline(3600), rng=random.Random(seed))
    wait = retrier._wait(attempt, None)
    assert 0 <= wait <= min(20.0, 0.5 * 2 ** (attempt - 1))


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("5", 5.0),
        ("0", 0.0),
        ("Sat, 28 Nov 2026 09:00:30 GMT", 30.0),
        ("Sat, 28 Nov 2026 08:59:00 GMT", 0.0),
        ("soon", None),
        ("", None),
    ],
)
def test_retry_after_reads_seconds_or_an_http_date(header: str, seconds: float | None) -> None:
    now = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    assert parse_retry_after({"Retry-After": header}, now=lambda: now) == seconds


def test_retry_after_is_case_insensitive_and_optional() -> None:
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({}) is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("status", "transient"), [(429, True), (500, True), (503, True), (400, False), (401, False), (404, False)]
)
def test_only_429_and_5xx_are_transient(status: int, transient: bool) -> None:
    assert is_transient_status(status) is transient


def test_no_wait_is_started_when_the_attempt_after_it_could_not_finish(sleeps: Sleeps) -> None:
    clock = FakeClock()
    calls, attempt = flaky([SourceUnavailable("503", service="x")] * 3)
    retrier = under(RetryPolicy(base_delay=0.01), Deadline(10, clock), sleep=sleeps)
    clock.now = 9.9  # 0.1 s left: less than any request needs
    with pytest.raises(SourceUnavailable):
        retrier.call(attempt)  # type: ignore[arg-type]
    assert (len(calls), sleeps.calls) == (1, [])
    assert not retrier.has_time()


def test_each_retry_is_reported_with_the_call_the_attempt_the_wait_and_why(sleeps: Sleeps) -> None:
    events: list[RetryEvent] = []
    _calls, attempt = flaky([SourceUnavailable("Mixpanel answered 503", service="Mixpanel", retry_after=2.0)])
    retrier = under(RetryPolicy(), Deadline(60), sleep=sleeps, on_retry=events.append)
    retrier.call(attempt, name="Mixpanel engage")  # type: ignore[arg-type]
    assert events == [RetryEvent("Mixpanel engage", 1, 2.0, "Mixpanel answered 503")]
