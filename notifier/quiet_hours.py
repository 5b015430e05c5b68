"""Quiet hours for texts: the part of each day, in TIMEZONE, when no SMS is sent."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class QuietHours:
    """From `start` up to but not including `end`; wraps midnight when `end` comes before `start`."""

    start: dt.time
    end: dt.time
