"""The run summary: one JSON line per delivery, what it did, for people and Cloud Logging."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from notifier.channels import DeliveryStatus
from notifier.deliver import Delivered, Rendered
from notifier.errors import NotifierError
from notifier.fetch import Fetched
from notifier.mixpanel import FetchStats, MixpanelClient
from notifier.outcome import Outcome
from notifier.plan import Plan
from notifier.services import Services
from notifier.state import Span
from notifier.trigger import Window

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
    earlier: int = 0  # settled by an earlier delivery of this message
    error: str | None = None

    def log_fields(self) -> dict[str, Any]:
        """The channel as structured log fields."""
        fields = {k: v for k, v in self.__dict__.items() if k != "channel" and v not in (None, 0)}
        return {"outcome": self.outcome, "recipients": self.recipients, **fields}


@dataclass(frozen=True)
class RunSummary:
    """What a run did; logged as one JSON line and returned to callers and tests."""

    outcome: Outcome
    window: Window | None = None
    coverage: tuple[Span, ...] = ()
    users: int = 0
    late_users: int = 0
    excluded: int = 0
    stats: FetchStats = field(default_factory=FetchStats)
    channels: tuple[ChannelSummary, ...] = ()
    retries: int = 0
    state_round_trips: int = 0
    state_seconds: float = 0.0  # time spent waiting on the run history's answers
    duration_s: float = 0.0
    error: str | None = None
    error_type: str | None = None
    error_fields: Mapping[str, object] = field(default_factory=dict)
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
                {"start": self.window.start.isoformat(), "end": self.window.end.isoformat()}
                if self.window
                else None
            ),
            **({"covered": covered} if covered else {}),
            "users": self.users,
            **({"late_users": self.late_users} if self.late_users else {}),
            **({"excluded": self.excluded} if self.excluded else {}),
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
        }


def summarise(
    outcome: Outcome,
    plan: Plan,
    fetched: Fetched | None,
    client: MixpanelClient | None,
    retries: int,
    *,
    delivered: Delivered | None = None,
    rendered: Rendered | None = None,
) -> RunSummary:
    return RunSummary(
        outcome=outcome,
        window=plan.trigger.window,
        coverage=plan.state.coverage,
        users=fetched.count if fetched else 0,
        late_users=fetched.late if fetched else 0,
        excluded=fetched.excluded if fetched else 0,
        stats=client.stats if client else FetchStats(),
        channels=_channel_summaries(plan, outcome, delivered),
        retries=retries,
        rendered=rendered,
    )


def _channel_summaries(
    plan: Plan, outcome: Outcome, delivered: Delivered | None
) -> tuple[ChannelSummary, ...]:
    summaries = []
    for channel in sorted(plan.left, key=("email", "sms", "slack").index):
        left, earlier = plan.left[channel], plan.earlier.get(channel, 0)
        mine = [d for d in delivered.deliveries if d.channel == channel] if delivered else []
        counts = {status: sum(1 for d in mine if d.status is status) for status in DeliveryStatus}
        if outcome is Outcome.DRY_RUN:
            state = "dry_run"
        elif not left:
            state = "already_sent"
        elif not mine:
            state = "not_sent"
        elif counts[DeliveryStatus.UNAVAILABLE]:
            state = "will_retry"
        elif counts[DeliveryStatus.DELIVERED] == len(mine):
            state = "sent"
        elif counts[DeliveryStatus.DELIVERED] or counts[DeliveryStatus.UNCONFIRMED]:
            state = "partial"
        else:
            state = "failed"
        errors = list(dict.fromkeys(d.detail for d in mine if d.detail))
        if len(errors) > MAX_ERRORS_SHOWN:  # one per phone could make a line of megabytes
            errors = [*errors[:MAX_ERRORS_SHOWN], f"and {len(errors) - MAX_ERRORS_SHOWN} more"]
        summaries.append(
            ChannelSummary(
                channel=channel,
                outcome=state,
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


def failure_summary(
    error: BaseException,
    plan: Plan | None,
    client: MixpanelClient | None,
    retries: int,
    delivered: Delivered | None = None,
    fetched: Fetched | None = None,
) -> RunSummary:
    if isinstance(error, NotifierError):
        outcome, text, fields = error.outcome, str(error), error.log_fields()
    else:
        # Only the type and where: an unexpected exception's text could quote a header, a key or a body.
        outcome, text, fields = (
            Outcome.FAILED,
            f"unexpected {type(error).__name__}",
            {"error_where": _where(error)},
        )
    return RunSummary(
        outcome=outcome,
        window=plan.trigger.window if plan else None,
        coverage=plan.state.coverage if plan else (),
        users=fetched.count if fetched else 0,
        late_users=fetched.late if fetched else 0,
        excluded=fetched.excluded if fetched else 0,
        stats=client.stats if client else FetchStats(),
        channels=_channel_summaries(plan, outcome, delivered) if plan else (),
        retries=retries,
        error=text,
        error_type=type(error).__name__,
        error_fields=fields,
    )


def _where(error: BaseException) -> str:
    """The last frames of a traceback, as file:line in function: enough to find a bug, no text."""
    frames = traceback.extract_tb(error.__traceback__)[-4:]
    return " < ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in reversed(frames))


def log_summary(summary: RunSummary, started: float, services: Services) -> RunSummary:
    summary = RunSummary(**{**summary.__dict__, "duration_s": services.clock() - started})
    message = f"run {summary.outcome.value}" + (f": {summary.error}" if summary.error else "")
    LOG.log(summary.outcome.severity, message, extra={"fields": summary.log_fields()})
    return summary


def _iso(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat()
