"""The run summary: one JSON line per delivery, what it did, for people and Cloud Logging."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from notifier.channels import Delivery, DeliveryStatus
from notifier.compose import Rendered
from notifier.decision import Decision, Disposition
from notifier.errors import NotifierError
from notifier.fetch import Fetched
from notifier.mixpanel import FetchStats
from notifier.outcome import Outcome
from notifier.plan import Plan, Prepared
from notifier.retry import RetryCounter
from notifier.services import Services
from notifier.span import Span
from notifier.state import Start, StateStore
from notifier.trigger import CHANNELS
from notifier.unit_of_work import RunUnit

LOG = logging.getLogger("notifier.run")  # the summary's logger name, which alert filters may use
MAX_ERRORS_SHOWN = 3  # distinct provider errors a channel's summary quotes


@dataclass(frozen=True)
class ChannelSummary:
    """How one channel fared in this delivery, and what earlier deliveries of the message did."""

    channel: str
    outcome: str  # sent | partial | failed | will_retry | not_sent | already_sent | dry_run
    recipients: int
    delivered: int = 0
    unconfirmed: int = 0
    rejected: int = 0
    left: int = 0  # untold after a transient failure: the redelivery tries them
    earlier: int = 0  # noted by an earlier delivery of this message
    error: str | None = None

    def log_fields(self) -> dict[str, Any]:
        """The channel as structured log fields."""
        fields = {k: v for k, v in self.__dict__.items() if k != "channel" and v not in (None, 0)}
        return {"outcome": self.outcome, "recipients": self.recipients, **fields}


@dataclass(frozen=True)
class RunSummary:
    """What a run did; logged as one JSON line and returned to callers and tests."""

    outcome: Outcome
    window: Span | None = None
    coverage: tuple[Span, ...] = ()
    users: int = 0
    late_users: int = 0
    excluded: int = 0
    texts_held: int = 0  # users quiet hours held back from the text, for the next one
    held_in_text: int = 0  # users held back earlier that this run's text counts
    stats: FetchStats = field(default_factory=FetchStats)
    channels: tuple[ChannelSummary, ...] = ()
    retries: int = 0
    state_round_trips: int = 0
    state_seconds: float = 0.0  # time spent waiting on the run history's answers
    duration_s: float = 0.0
    error: str | None = None
    error_type: str | None = None
    error_fields: Mapping[str, object] = field(default_factory=dict)
    history: Mapping[str, str] = field(default_factory=dict)  # how the message ended there, and why
    rendered: Rendered | None = None  # what was (or, in a dry run, would be) sent

    def log_fields(self) -> dict[str, Any]:
        """The summary as structured log fields: counts and outcomes, no names, emails or numbers."""
        covered = None
        if self.coverage:
            covered = {
                "start": _iso(self.coverage[0].start),
                "end": _iso(self.coverage[-1].end),
                "seconds": sum(span.seconds for span in self.coverage),
            }
        return {
            "event": "run_summary",
            "outcome": self.outcome.value,
            "window": (
                {"start": self.window.start_at.isoformat(), "end": self.window.end_at.isoformat()}
                if self.window
                else None
            ),
            **({"covered": covered} if covered else {}),
            "users": self.users,
            **({"late_users": self.late_users} if self.late_users else {}),
            **({"excluded": self.excluded} if self.excluded else {}),
            **({"texts_held": self.texts_held} if self.texts_held else {}),
            **({"held_in_text": self.held_in_text} if self.held_in_text else {}),
            "pages": self.stats.pages,
            "bytes_received": self.stats.bytes_received,
            "skipped_without_created": self.stats.skipped_without_created,
            "channels": {summary.channel: summary.log_fields() for summary in self.channels},
            "retries": self.retries,
            **({"state_round_trips": self.state_round_trips} if self.state_round_trips else {}),
            **({"state_ms": round(self.state_seconds * 1000)} if self.state_round_trips else {}),
            "duration_ms": round(self.duration_s * 1000),
            **({"error": self.error} if self.error else {}),
            **({"error_type": self.error_type} if self.error_type else {}),
            **dict(self.error_fields),
            **({"history": dict(self.history)} if self.history else {}),
        }


@dataclass
class Progress:
    """How far a run got: each step's result, once it has one, for the summary."""

    retries: RetryCounter = field(default_factory=RetryCounter)
    prepared: Prepared | None = None
    store: StateStore | None = None
    plan: Plan | None = None
    stats: FetchStats | None = None
    fetched: Fetched | None = None
    rendered: Rendered | None = None


def summarise(progress: Progress, unit: RunUnit) -> RunSummary:
    """The run summary of a delivery that `unit` has ended."""
    assert unit.decision is not None
    outcome = outcome_of(progress, unit)
    plan, fetched, prepared, store = progress.plan, progress.fetched, progress.prepared, progress.store
    decision = unit.decision
    return RunSummary(
        outcome=outcome,
        window=prepared.trigger.window if prepared else None,
        coverage=unit.hold.state.coverage if unit.hold else (),
        users=fetched.count if fetched else 0,
        late_users=fetched.late if fetched else 0,
        excluded=fetched.excluded if fetched else 0,
        texts_held=unit.held_back or 0,
        held_in_text=_held_in_text(progress),
        stats=progress.stats or FetchStats(),
        channels=_channel_summaries(plan, outcome, unit.deliveries) if plan else (),
        retries=progress.retries.count,
        state_round_trips=store.round_trips if store else 0,
        state_seconds=store.waited if store else 0.0,
        rendered=progress.rendered,
        history=_history(decision) if unit.hold and unit.hold.journal else {},
        **_error(unit.error),
    )


def outcome_of(progress: Progress, unit: RunUnit) -> Outcome:
    """What the run came to, as its summary names it."""
    assert unit.decision is not None
    redelivered = unit.decision.disposition is Disposition.REDELIVER
    if unit.error is not None:
        if isinstance(unit.error, NotifierError):
            transient_or_past_help = unit.error.outcome in (Outcome.WILL_RETRY, Outcome.IN_PROGRESS)
            return Outcome.WILL_RETRY if redelivered and not transient_or_past_help else unit.error.outcome
        return Outcome.FAILED  # a bug: redelivered all the same, which cannot repeat a send
    if redelivered:
        return Outcome.WILL_RETRY
    return _finished_outcome(progress, unit)


def _finished_outcome(progress: Progress, unit: RunUnit) -> Outcome:
    """The outcome of a delivery that raised nothing and is acked."""
    plan = progress.plan
    assert plan is not None
    if plan.state.start is Start.ALREADY_COVERED:
        return Outcome.ALREADY_COVERED
    told = unit.happened().told_anyone
    if plan.nothing_to_do:
        return Outcome.ALREADY_SENT if told or plan.state.start is Start.ENDED else Outcome.FAILED
    if progress.rendered is None:
        return Outcome.NOTHING_TO_SEND
    if plan.trigger.dry_run:
        return Outcome.DRY_RUN
    if all(d.status is DeliveryStatus.DELIVERED for d in unit.deliveries):
        return Outcome.SENT
    # An unconfirmed send may well have been read: "failed" would say nobody was told.
    return Outcome.PARTIAL if told else Outcome.FAILED


def _held_in_text(progress: Progress) -> int:
    """The users quiet runs held back that this run's text counts."""
    if progress.plan is None or progress.rendered is None or progress.rendered.sms is None:
        return 0
    return sum(tally.users for tally in progress.plan.state.held.values())


def _history(decision: Decision) -> dict[str, str]:
    return {"end": decision.end.value if decision.end else "none", "why": decision.meaning}


def _error(error: Exception | None) -> dict[str, Any]:
    if error is None:
        return {}
    if isinstance(error, NotifierError):
        return {"error": str(error), "error_type": type(error).__name__, "error_fields": error.log_fields()}
    # Only the type and where: an unexpected exception's text could quote a header, a key or a body.
    return {
        "error": f"unexpected {type(error).__name__}",
        "error_type": type(error).__name__,
        "error_fields": {"error_where": _where(error)},
    }


def _channel_summaries(
    plan: Plan, outcome: Outcome, deliveries: tuple[Delivery, ...]
) -> tuple[ChannelSummary, ...]:
    summaries = []
    for channel in sorted(plan.owed, key=CHANNELS.index):
        left, earlier = plan.owed[channel], plan.told_before.get(channel, 0)
        mine = [d for d in deliveries if d.channel == channel]
        counts = {status: sum(1 for d in mine if d.status is status) for status in DeliveryStatus}
        errors = list(dict.fromkeys(d.detail for d in mine if d.detail))
        if len(errors) > MAX_ERRORS_SHOWN:  # one per phone could make a line of megabytes
            errors = [*errors[:MAX_ERRORS_SHOWN], f"and {len(errors) - MAX_ERRORS_SHOWN} more"]
        summaries.append(
            ChannelSummary(
                channel=channel,
                outcome=_channel_outcome(outcome, left, mine, counts),
                recipients=len(left) + earlier,
                delivered=counts[DeliveryStatus.DELIVERED],
                unconfirmed=counts[DeliveryStatus.UNCONFIRMED],
                rejected=counts[DeliveryStatus.REJECTED],
                left=counts[DeliveryStatus.UNAVAILABLE],
                earlier=earlier,
                error="; ".join(errors) or None,
            )
        )
    return tuple(summaries)


def _channel_outcome(
    outcome: Outcome, left: tuple[str, ...], mine: list[Delivery], counts: Mapping[DeliveryStatus, int]
) -> str:
    if outcome is Outcome.DRY_RUN:
        return "dry_run"
    if not left:
        return "already_sent"
    if not mine:
        return "not_sent"
    if counts[DeliveryStatus.UNAVAILABLE]:
        return "will_retry"
    if counts[DeliveryStatus.DELIVERED] == len(mine):
        return "sent"
    if counts[DeliveryStatus.DELIVERED] or counts[DeliveryStatus.UNCONFIRMED]:
        return "partial"
    return "failed"


def _where(error: BaseException) -> str:
    """The last frames of a traceback, as file:line in function: enough to find a bug, no text."""
    frames = traceback.extract_tb(error.__traceback__)[-4:]
    return " < ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in reversed(frames))


def log_summary(summary: RunSummary, started: float, services: Services) -> RunSummary:
    """The summary with its duration, logged as one line at its outcome's severity."""
    summary = replace(summary, duration_s=services.clock() - started)
    message = f"run {summary.outcome.value}" + (f": {summary.error}" if summary.error else "")
    LOG.log(summary.outcome.severity, message, extra={"fields": summary.log_fields()})
    return summary


def _iso(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat()
