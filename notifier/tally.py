"""Counts per value, most first: the top few, then what is left, in an order every run repeats."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

TOP = 5  # values a digest names before it sums up the rest


@dataclass(frozen=True)
class Tally:
    """The most common values with their counts, and how many values and counts lie past them."""

    top: tuple[tuple[str, int], ...]
    rest_values: int = 0
    rest_count: int = 0


def tally(counts: Mapping[str, int], *, top: int = TOP) -> Tally:
    """Most first; ties in alphabetical order (case aside), the empty value last among them."""
    ordered = sorted(counts.items(), key=_most_first)
    rest = ordered[top:]
    return Tally(tuple(ordered[:top]), len(rest), sum(count for _value, count in rest))


def _most_first(item: tuple[str, int]) -> tuple[int, bool, str, str]:
    value, count = item
    return -count, value == "", value.casefold(), value
