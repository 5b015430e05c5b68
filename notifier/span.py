"""Spans of time: half-open intervals ``[start, end)`` in whole Unix seconds, and their algebra."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, order=True)
class Span:
    """A half-open interval of time ``[start, end)`` in Unix seconds."""

    start: int
    end: int

    @property
    def seconds(self) -> int:
        """The span's length."""
        return self.end - self.start

    @property
    def start_at(self) -> datetime:
        """The first instant, as an aware UTC datetime."""
        return EPOCH + timedelta(seconds=self.start)  # arithmetic: no platform limit on the years

    @property
    def end_at(self) -> datetime:
        """The first instant after the span, as an aware UTC datetime."""
        return EPOCH + timedelta(seconds=self.end)

    @classmethod
    def between(cls, start: datetime, end: datetime) -> Span:
        """The span from one aware datetime to another, in whole seconds (partial ones rounded down)."""
        return cls(_seconds(start), _seconds(end))

    @classmethod
    def ending(cls, end: datetime, minutes: int) -> Span:
        """The span of `minutes` that ends at `end`."""
        return cls.between(end - timedelta(minutes=minutes), end)

    def holds(self, moment: int) -> bool:
        """True when `moment` (Unix seconds) lies inside the span."""
        return self.start <= moment < self.end


def _seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("span bounds must be timezone-aware")
    return (moment - EPOCH) // timedelta(seconds=1)


def merge(spans: Iterable[Span]) -> tuple[Span, ...]:
    """Sorted, with overlapping and touching spans joined and empty ones dropped."""
    merged: list[Span] = []
    for span in sorted(s for s in spans if s.end > s.start):
        if merged and span.start <= merged[-1].end:
            merged[-1] = Span(merged[-1].start, max(merged[-1].end, span.end))
        else:
            merged.append(span)
    return tuple(merged)


def subtract(spans: Iterable[Span], taken: Iterable[Span]) -> tuple[Span, ...]:
    """What of `spans` lies outside `taken`."""
    cuts = merge(taken)
    left: list[Span] = []
    for span in merge(spans):
        start = span.start
        for cut in cuts:
            if cut.end <= start or cut.start >= span.end:
                continue
            if cut.start > start:
                left.append(Span(start, cut.start))
            start = max(start, cut.end)
        if start < span.end:
            left.append(Span(start, span.end))
    return tuple(left)


def intersect(spans: Iterable[Span], within: Iterable[Span]) -> tuple[Span, ...]:
    """What of `spans` lies inside `within`."""
    merged = merge(spans)
    return subtract(merged, subtract(merged, within))


def total_seconds(spans: Iterable[Span]) -> int:
    """The seconds the spans hold together, counting overlaps once."""
    return sum(span.seconds for span in merge(spans))
