"""Delivery channels. Each sends one rendered digest and reports a ChannelResult, never raising
for what the service answered: the run decides between redelivery and an ERROR log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["sent", "partial", "failed", "dry_run"]


@dataclass(frozen=True)
class ChannelResult:
    """How one channel fared: recipients attempted and delivered, and why any failed."""

    channel: str
    outcome: Outcome
    attempted: int
    delivered: int
    error: str | None = None
    retryable: bool = False  # the failure was transient: a redelivery might succeed

    @classmethod
    def tally(
        cls, channel: str, attempted: int, delivered: int, errors: list[str], retryable: bool
    ) -> ChannelResult:
        """Summarise per-recipient outcomes into one result."""
        outcome: Outcome = "sent" if delivered == attempted else "partial" if delivered else "failed"
        return cls(
            channel=channel,
            outcome=outcome,
            attempted=attempted,
            delivered=delivered,
            error="; ".join(dict.fromkeys(errors)) or None,
            retryable=retryable and delivered < attempted,
        )
