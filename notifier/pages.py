"""Numbered pages fetched a few at a time on threads and handed on in page order.

The first failure, or the consumer closing the iterator, stops the rest: pages not started are
cancelled and the running ones are waited for, so no thread outlives the iteration.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
# The longest a page's retry wait keeps running after the others failed: it sleeps in slices.
SLEEP_SLICE_SECONDS = 0.25


class Stopped(Exception):
    """A page was about to start an attempt after the fetch had stopped; nobody reads its result."""


def in_order(
    numbers: range,
    fetch: Callable[[int, threading.Event], T],
    *,
    at_once: int,
    on_page: Callable[[int], None],
) -> Iterator[T]:
    """Yield `fetch(n, stop)` for each n in `numbers`, in order, with at most `at_once` running.

    `on_page(n)` runs on the caller's thread after page n arrives and may raise to stop them all.
    """
    stop = threading.Event()
    upcoming = iter(numbers)
    arrived: dict[int, T] = {}
    running: dict[Future[T], int] = {}
    executor = ThreadPoolExecutor(max_workers=max(at_once, 1), thread_name_prefix="page")

    def start_next() -> None:
        number = next(upcoming, None)
        if number is not None:
            running[executor.submit(fetch, number, stop)] = number

    try:
        for _ in range(max(at_once, 1)):
            start_next()
        for wanted in numbers:
            while wanted not in arrived:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    number = running.pop(future)
                    arrived[number] = future.result()  # a page's error stops them all
                    on_page(number)
                    start_next()
            yield arrived.pop(wanted)
    finally:
        stop.set()
        executor.shutdown(wait=True, cancel_futures=True)


def stoppable(sleep: Callable[[float], None], stop: threading.Event) -> Callable[[float], None]:
    """`sleep` in slices that end early once `stop` is set, so a stopped fetch is not kept waiting."""

    def sleep_unless_stopped(seconds: float) -> None:
        left = seconds
        while left > 0 and not stop.is_set():
            step = min(left, SLEEP_SLICE_SECONDS)
            sleep(step)
            left -= step

    return sleep_unless_stopped
