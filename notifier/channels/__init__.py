"""Delivery channels. Each sends one rendered digest and reports a ChannelResult, never raising
for what the service answered: the run decides between redelivery and an ERROR log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["sent", "partial", "failed", "dry_run", "already_sent"]


@dataclass(frozen=True)
class ChannelResult:
    """How one channel fared: recipients attempted and delivered, and why any failed."""

    channel: str
    outcome: Outcome
    attempted: int
    delivered: int
    error: str | None = None
    retryable: bool = False  # the failure was transient: a redelivery might succeed
    delivered_to: tuple[str, ...] = ()

    @classmethod
    def tally(
        cls,
        channel: str,
        recipients: tuple[str, ...],
        delivered_to: list[str],
        errors: list[str],
        retryable: bool,
    ) -> ChannelResult:
        """Summarise per-recipient outcomes into one result."""
        attempted, delivered = len(recipients), len(delivered_to)
        outcome: Outcome = "sent" if delivered == attempted else "partial" if delivered else "failed"
        return cls(
            channel=channel,
            outcome=outcome,
            attempted=attempted,
            delivered=delivered,
            error="; ".join(dict.fromkeys(errors)) or None,
            retryable=retryable and delivered < attempted,
            delivered_to=tuple(delivered_to),
        )
