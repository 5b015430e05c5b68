"""A breakdown of the sign-ups by one profile property (BREAKDOWN_PROPERTY): how many per value."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from notifier.tally import Tally, tally


@dataclass(frozen=True)
class Breakdown:
    """Counts per value of `property`; the empty value stands for users without one."""

    property: str
    tally: Tally


def break_down(property_name: str, values: Iterable[str | None]) -> Breakdown:
    """Each user's value of the property (None or blank when missing), counted per value."""
    return Breakdown(property_name, tally(Counter((value or "").strip() for value in values)))
