"""One run: a Pub/Sub message in, at most one email and one SMS per phone out.

`handle_message` is what the Cloud Function calls. It returns normally when the message should be
acked (done, nothing to do, or a permanent error, logged) and raises TransientError when Pub/Sub
should redeliver it, which happens only while nothing has been delivered.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import requests

from notifier.channels import ChannelResult
from notifier.channels.email import build_mail, send_email
from notifier.channels.sms import send_sms
from notifier.digest import EmailDigest, render_email, render_sms, sort_users
from notifier.errors import (
    BadMessage,
    ChannelUnavailable,
    ConfigError,
    PermanentError,
    SourceRejected,
    StaleMessage,
    TransientError,
)
from notifier.ledger import DeliveryLedger
from notifier.mixpanel import FetchStats, MixpanelAuth, MixpanelClient, NewUser
from notifier.retry import Deadline, Retrier, RetryPolicy
from notifier.secrets import SecretResolver
from notifier.settings import EmailSettings, SecretRef, Settings, SmsSettings
from notifier.trigger import Trigger, Window, decode_data, parse_timestamp, parse_trigger

LOG = logging.getLogger(__name__)
ChannelT = TypeVar("ChannelT", EmailSettings, SmsSettings)


@dataclass
class Services:
    """The I/O edges of a run, built once per instance and shared by its runs."""

    secrets: SecretResolver = field(default_factory=SecretResolver)
    session: requests.Session = field(default_factory=requests.Session)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    rng: random.Random = field(default_factory=random.Random)
    ledger: DeliveryLedger = field(default_factory=DeliveryLedger)


@dataclass(frozen=True)
class RunSummary:
    """What a run did; logged as one JSON line and returned to callers and tests."""

    outcome: str
    window: Window | None = None
    users: int = 0
    stats: FetchStats = field(default_factory=FetchStats)
    channels: tuple[ChannelResult, ...] = ()
    duration_s: float = 0.0
    error: str | None = None
    email: EmailDigest | None = None
    sms_body: str | None = None

    def log_fields(self) -> dict[str, Any]:
        """The summary as structured log fields: counts and outcomes, no names or emails."""
        return {
            "event": "run_summary",
            "outcome": self.outcome,
            "window": (
                {"start": self.window.start.isoformat(), "end": self.window.end.isoformat()}
                if self.window
                else None
            ),
            "users": self.users,
            "pages": self.stats.pages,
            "bytes_received": self.stats.bytes_received,
            "skipped_without_created": self.stats.skipped_without_created,
            "duplicates_dropped": self.stats.duplicates_dropped,
            "channels": {
                result.channel: {
                    "outcome": result.outcome,
                    "attempted": result.attempted,
                    "delivered": result.delivered,
                    **({"error": result.error} if result.error else {}),
                }
                for result in self.channels
            },
            "duration_ms": round(self.duration_s * 1000),
            **({"error": self.error} if self.error else {}),
        }


_PERMANENT_OUTCOMES: dict[type[PermanentError], str] = {
    BadMessage: "bad_message",
    ConfigError: "bad_config",
    StaleMessage: "stale_message",
    SourceRejected: "source_rejected",
}


def handle_message(
    message: Mapping[str, Any],
    *,
    event_time: str | None,
    environ: Mapping[str, str],
    services: Services,
) -> RunSummary:
    """Run for one Pub/Sub message (`data` base64, `publishTime`); see the module docstring."""
    started = services.clock()
    try:
        publish_time = _publish_time(message, event_time)
        data = decode_data(message.get("data"))
    except BadMessage as error:
        return _finish(RunSummary("bad_message", error=str(error)), started, services)
    message_id = message.get("messageId") or message.get("message_id")
    return run(
        data,
        publish_time,
        environ=environ,
        services=services,
        message_id=message_id if isinstance(message_id, str) else None,
    )


def run(
    data: bytes,
    publish_time: datetime,
    *,
    environ: Mapping[str, str],
    services: Services,
    message_id: str | None = None,
) -> RunSummary:
    """Run for raw message data published at `publish_time`; see the module docstring.

    With a `message_id`, recipients this instance already served for that message are skipped.
    """
    started = services.clock()
    progress = _Progress()
    try:
        summary = _run(data, publish_time, environ, services, progress, message_id)
    except PermanentError as error:
        outcome = next(
            (name for kind, name in _PERMANENT_OUTCOMES.items() if isinstance(error, kind)), "failed"
        )
        summary = progress.summary(outcome, error=str(error))
    except TransientError as error:
        _finish(progress.summary("will_retry", error=str(error)), started, services)
        raise
    return _finish(summary, started, services)


@dataclass
class _Progress:
    """What a run has learned so far, so an early failure still logs a useful summary."""

    window: Window | None = None
    stats: FetchStats = field(default_factory=FetchStats)
    users: int = 0
    channels: list[ChannelResult] = field(default_factory=list)

    def summary(self, outcome: str, **extra: Any) -> RunSummary:
        return RunSummary(
            outcome=outcome,
            window=self.window,
            users=self.users,
            stats=self.stats,
            channels=tuple(self.channels),
            **extra,
        )


def _run(
    data: bytes,
    publish_time: datetime,
    environ: Mapping[str, str],
    services: Services,
    progress: _Progress,
    message_id: str | None,
) -> RunSummary:
    settings = Settings.from_environ(environ)
    age = services.now() - publish_time
    if age > timedelta(minutes=settings.max_message_age_minutes):
        raise StaleMessage(
            f"message published {publish_time.isoformat()} is {age} old, past "
            f"MAX_MESSAGE_AGE_MINUTES={settings.max_message_age_minutes}; acked without running. "
            "Re-run its window by publishing start/end."
        )
    trigger = parse_trigger(
        data, publish_time=publish_time, default_lookback=settings.default_lookback_minutes
    )
    progress.window = trigger.window
    channels = _channels(trigger, settings)
    retrier = Retrier(
        policy=services.policy,
        deadline=Deadline(settings.run_budget_seconds, services.clock),
        sleep=services.sleep,
        rng=services.rng,
    )

    def secret(ref: SecretRef) -> str:
        return services.secrets.value(ref, retrier, api_url=settings.endpoints.secret_manager)

    ledger = services.ledger
    email, sms = _recipients_left(settings, channels, ledger, message_id, progress)
    if email is None and sms is None and progress.channels:
        return progress.summary("already_sent")

    # Every secret is read before anything is fetched or sent, so a bad one stops the run clean.
    sending = not trigger.dry_run
    auth = MixpanelAuth(settings.mixpanel_service_account, secret(settings.mixpanel_secret))
    email_key = secret(email.api_key) if email and sending else ""
    sms_token = secret(sms.auth_token) if sms and sending else ""

    users = _fetch_users(settings, auth, trigger.window, services, retrier, progress)
    if not users and not settings.notify_when_empty:
        return progress.summary("nothing_to_send")

    zone = settings.timezone
    digest = render_email(users, trigger.window, zone, row_limit=settings.email_row_limit) if email else None
    sms_body = render_sms(users, trigger.window, zone) if sms else None
    # Everything to send is rendered: free the users for the email's encoding, which at 100,000
    # users is the run's other big allocation (README, Performance).
    del users
    if trigger.dry_run:
        progress.channels = _dry_run_results(email, sms)
        return progress.summary("dry_run", email=digest, sms_body=sms_body)

    deliveries: list[Callable[[], ChannelResult]] = []
    if email and digest:
        mail = build_mail(digest, email)
        digest = None  # the mail body holds the attachment now, base64-encoded; the raw copy can go
        endpoint = settings.endpoints.sendgrid
        deliveries.append(
            partial(send_email, mail, email, api_key=email_key, base_url=endpoint, retrier=retrier)
        )
    if sms and sms_body:
        endpoint = settings.endpoints.twilio
        deliveries.append(
            partial(send_sms, sms_body, sms, auth_token=sms_token, base_url=endpoint, retrier=retrier)
        )
    outcome = _deliver(deliveries, progress, lambda r: ledger.record(message_id, r.channel, r.delivered_to))
    return progress.summary(outcome, sms_body=sms_body)


def _recipients_left(
    settings: Settings,
    channels: frozenset[str],
    ledger: DeliveryLedger,
    message_id: str | None,
    progress: _Progress,
) -> tuple[EmailSettings | None, SmsSettings | None]:
    """The chosen channels, less recipients this instance already served for this message."""
    email = _unserved(settings.email, ledger.delivered(message_id, "email")) if "email" in channels else None
    sms = _unserved(settings.sms, ledger.delivered(message_id, "sms")) if "sms" in channels else None
    for name, left in (("email", email), ("sms", sms)):
        if name in channels and left is None:
            progress.channels.append(ChannelResult(name, "already_sent", 0, 0))
    return email, sms


def _fetch_users(
    settings: Settings,
    auth: MixpanelAuth,
    window: Window,
    services: Services,
    retrier: Retrier,
    progress: _Progress,
) -> list[NewUser]:
    """Every user created in `window`, sorted by created time; counts go to `progress`."""
    client = MixpanelClient(
        base_url=settings.endpoints.mixpanel,
        project_id=settings.mixpanel_project_id,
        auth=auth,
        session=services.session,
        retrier=retrier,
    )
    progress.stats = client.stats
    users = sort_users(list(client.new_users(window)))
    progress.users = len(users)
    return users


def _deliver(
    deliveries: list[Callable[[], ChannelResult]],
    progress: _Progress,
    remember: Callable[[ChannelResult], None],
) -> str:
    """Send on each channel in turn; raise for redelivery only while nobody has been told."""
    delivered = sum(1 for result in progress.channels if result.outcome == "already_sent")
    for deliver in deliveries:
        result = deliver()
        remember(result)
        progress.channels.append(result)
        if result.retryable and result.delivered == 0 and delivered == 0:
            # Nobody has been told anything yet: a redelivery can retry the whole window safely.
            raise ChannelUnavailable(
                f"{result.channel} failed and nothing was delivered: {result.error}", channel=result.channel
            )
        delivered += result.delivered
    if all(result.outcome in ("sent", "already_sent") for result in progress.channels):
        return "sent"
    return "partial" if delivered else "failed"


def _unserved(channel: ChannelT | None, served: frozenset[str]) -> ChannelT | None:
    """The channel's settings without recipients already served; None when nobody is left."""
    if channel is None or not served:
        return channel
    left = tuple(address for address in channel.to if address not in served)
    return replace(channel, to=left) if left else None


def _channels(trigger: Trigger, settings: Settings) -> frozenset[str]:
    configured = settings.configured_channels
    if not configured:
        raise ConfigError("no channel is configured: set EMAIL_TO, SMS_TO or both", variable="EMAIL_TO")
    if trigger.channels is None:
        return configured
    missing = sorted(trigger.channels - configured)
    if missing:
        variables = {"email": "EMAIL_TO", "sms": "SMS_TO", "slack": "SLACK_WEBHOOK_URL"}
        raise BadMessage(
            f"channels asks for {', '.join(missing)}, which is not configured "
            f"(set {', '.join(variables[name] for name in missing)})",
            field="channels",
        )
    return trigger.channels


def _dry_run_results(email: EmailSettings | None, sms: SmsSettings | None) -> list[ChannelResult]:
    results = []
    if email:
        results.append(ChannelResult("email", "dry_run", len(email.to), 0))
    if sms:
        results.append(ChannelResult("sms", "dry_run", len(sms.to), 0))
    return results


def _publish_time(message: Mapping[str, Any], event_time: str | None) -> datetime:
    raw = message.get("publishTime") or message.get("publish_time") or event_time
    if not isinstance(raw, str):
        raise BadMessage("the Pub/Sub message has no publishTime", field="publishTime")
    return parse_timestamp(raw, field="publishTime")


def _finish(summary: RunSummary, started: float, services: Services) -> RunSummary:
    summary = RunSummary(**{**summary.__dict__, "duration_s": services.clock() - started})
    severity = logging.INFO if summary.outcome in _QUIET_OUTCOMES else logging.ERROR
    message = f"run {summary.outcome}" + (f": {summary.error}" if summary.error else "")
    LOG.log(severity, message, extra={"fields": summary.log_fields()})
    return summary


_QUIET_OUTCOMES = frozenset({"sent", "nothing_to_send", "dry_run", "already_sent"})
