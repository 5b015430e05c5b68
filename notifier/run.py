"""One run: a Pub/Sub message in, one summary line out; plan -> fetch -> render -> deliver.

`handle_message` is what the Cloud Function calls. It returns normally when the message should be
acked (done, nothing to do, or a permanent error, logged) and raises TransientError when Pub/Sub
should redeliver it: while recipients are left untold after a transient failure, and only while
the history makes sure the redelivery tells nobody twice.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from notifier.channels import Channel, Delivery, DeliveryStatus, Journal
from notifier.channels.email import EmailChannel
from notifier.channels.slack import SlackChannel, webhook_recipient
from notifier.channels.sms import SmsChannel
from notifier.errors import (
    BadMessage,
    ConfigError,
    NotifierError,
    SourceRejected,
    StaleMessage,
    TransientError,
)
from notifier.journal import StoreJournal
from notifier.mixpanel import FetchStats, MixpanelAuth, MixpanelClient, NewUser
from notifier.outcome import Outcome
from notifier.render.email import EmailDigest, render_email
from notifier.render.report import BY_CREATED_THEN_ID, Catchup, Report
from notifier.render.slack import render_slack
from notifier.render.sms import render_sms
from notifier.retry import Deadline, Retrier, RetryCounter, RetryPolicy
from notifier.secrets import SecretResolver
from notifier.settings import Settings, check_slack_webhook_url
from notifier.state import (
    Ending,
    ReportedUsers,
    RunRequest,
    RunState,
    Span,
    Start,
    StateStore,
    recipient_key,
    split_keys,
    user_key,
)
from notifier.state.memory import MemoryStore
from notifier.trigger import Trigger, Window, decode_data, parse_timestamp, parse_trigger

LOG = logging.getLogger(__name__)
# A publishTime this far ahead of the clock is not Pub/Sub's: claiming future time would silence it.
MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_ERRORS_SHOWN = 3  # distinct provider errors a channel's summary quotes


@dataclass
class Services:
    """The I/O edges of a run, built once per instance and shared by its runs."""

    secrets: SecretResolver = field(default_factory=SecretResolver)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    rng: random.Random = field(default_factory=random.Random)
    memory: MemoryStore = field(default_factory=MemoryStore)
    firestore_session: requests.Session | None = None

    def store(self, settings: Settings, retrier: Retrier, environ: Mapping[str, str]) -> StateStore:
        """The run history STATE_STORE names: this instance's memory, or Firestore."""
        if settings.state.store == "memory":
            return self.memory
        from notifier.state.firestore import open_firestore

        store, self.firestore_session = open_firestore(
            database=settings.state.firestore_database,
            session=self.firestore_session,
            retrier=retrier,
            environ=environ,
        )
        return store


@dataclass(frozen=True)
class ChannelSummary:
    """How one channel fared in this delivery, and what earlier deliveries of the message did."""

    channel: str
    outcome: str  # sent | partial | failed | will_retry | already_sent | dry_run
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
            "duplicates_dropped": self.stats.duplicates_dropped,
            "channels": {summary.channel: summary.log_fields() for summary in self.channels},
            "retries": self.retries,
            **({"state_round_trips": self.state_round_trips} if self.state_round_trips else {}),
            "duration_ms": round(self.duration_s * 1000),
            **({"error": self.error} if self.error else {}),
            **({"error_type": self.error_type} if self.error_type else {}),
            **dict(self.error_fields),
        }


@dataclass(frozen=True)
class Secrets:
    """The secret values a run needs, read before anything is fetched or sent."""

    mixpanel: MixpanelAuth
    sendgrid_key: str = ""
    twilio_token: str = ""
    slack_url: str = ""


@dataclass(frozen=True)
class Plan:
    """What this delivery will do: the trigger, its history, and who is left to tell on each channel."""

    trigger: Trigger
    request: RunRequest
    state: RunState
    secrets: Secrets
    left: Mapping[str, tuple[str, ...]]  # channel -> recipients not yet settled
    earlier: Mapping[str, int]  # channel -> recipients settled by earlier deliveries


@dataclass(frozen=True)
class Fetched:
    """The users to report, sorted, and what fetching them took."""

    users: Sequence[NewUser]  # emptied once rendered: at 100,000 users the run's peak is the sending
    count: int
    in_window: int  # the message window's own users (for the next run's trend)
    late: int
    excluded: int
    reported: ReportedUsers | None  # to record with the first send; None: nothing to record


@dataclass(frozen=True)
class Rendered:
    """Each channel's rendered message."""

    email: EmailDigest | None = None
    sms: str | None = None
    slack: dict[str, Any] | None = None


@dataclass(frozen=True)
class Delivered:
    """Every recipient's outcome in this delivery."""

    deliveries: tuple[Delivery, ...]


def handle_message(
    message: Mapping[str, Any] | None,
    *,
    event_time: str | None,
    environ: Mapping[str, str],
    services: Services,
) -> RunSummary:
    """Run for one Pub/Sub message (`data` base64, `publishTime`, `messageId`); see the module docstring."""
    started = services.clock()
    try:
        if not isinstance(message, Mapping):
            raise BadMessage("the event carries no Pub/Sub message", field="message")
        publish_time = _publish_time(message, event_time)
        data = decode_data(message.get("data"))
    except BadMessage as error:
        return _log(_failure_summary(error, None, None, 0), started, services)
    message_id = message.get("messageId") or message.get("message_id")
    return run(
        data,
        publish_time,
        environ=environ,
        services=services,
        message_id=message_id if isinstance(message_id, str) and message_id else None,
    )


def run(
    data: bytes,
    publish_time: datetime,
    *,
    environ: Mapping[str, str],
    services: Services,
    message_id: str | None = None,
) -> RunSummary:
    """Run for raw message data published at `publish_time`; see the module docstring."""
    started = services.clock()
    retries = RetryCounter()
    plan: Plan | None = None
    client: MixpanelClient | None = None
    fetched: Fetched | None = None
    delivered: Delivered | None = None
    store: StateStore = services.memory

    def log(summary: RunSummary) -> RunSummary:
        return _log(replace(summary, state_round_trips=store.round_trips), started, services)

    try:
        settings = Settings.from_environ(environ)
        retrier = Retrier(
            policy=services.policy,
            deadline=Deadline(settings.run_budget_seconds, services.clock),
            sleep=services.sleep,
            rng=services.rng,
            on_retry=retries,
        )
        store = services.store(settings, retrier, environ)
        plan = _plan(data, publish_time, message_id, settings, services, retrier, store)
        early = _early_outcome(plan)
        if early is not None:
            if early is Outcome.ALREADY_SENT:
                store.finish(plan.request, Ending(covered=plan.state.coverage))
            return log(_summary(early, plan, None, None, retries.count))
        client = MixpanelClient(
            base_url=settings.endpoints.mixpanel,
            project_id=settings.mixpanel_project_id,
            auth=plan.secrets.mixpanel,
            session=requests.Session(),
            retrier=retrier,
            extra_properties=settings.digest.extra_properties,
        )
        fetched = _fetch(plan, client, store, settings)
        if not fetched.users and not settings.notify_when_empty:
            if not plan.trigger.dry_run:
                store.finish(
                    plan.request, Ending(users_in_window=fetched.in_window, covered=plan.state.coverage)
                )
            return log(_summary(Outcome.NOTHING_TO_SEND, plan, fetched, client, retries.count))
        rendered = _render(plan, fetched, settings)
        fetched = replace(fetched, users=())  # what is rendered holds what it needs; free the rest
        if plan.trigger.dry_run:
            summary = _summary(Outcome.DRY_RUN, plan, fetched, client, retries.count, rendered=rendered)
            return log(summary)
        journal = StoreJournal(store, plan.request, fetched.reported)
        delivered = _deliver(plan, _channels_for(plan, rendered, settings, retrier), journal)
        outcome = _outcome(plan, delivered)
        journal.close(
            Ending(
                users_in_window=None if outcome is Outcome.WILL_RETRY else fetched.in_window,
                # Nobody could be told for a reason a person must fix: give the time back, so the
                # next scheduled run after the fix catches it up instead of it being lost.
                release=outcome is Outcome.FAILED and _nobody_told(plan, delivered),
                covered=() if outcome is Outcome.WILL_RETRY else plan.state.coverage,
            )
        )
        summary = _summary(
            outcome, plan, fetched, client, retries.count, delivered=delivered, rendered=rendered
        )
        if outcome is Outcome.WILL_RETRY:
            log(summary)
            left = sum(1 for d in delivered.deliveries if not d.status.settled)
            raise _ChannelsLeft(
                f"{left} recipient(s) left untold after a transient failure; redelivery tells only them"
            )
        return log(summary)
    except _ChannelsLeft:
        raise
    except NotifierError as error:
        # Redelivering is always safe: every request was noted before it went out.
        summary = log(_failure_summary(error, plan, client, retries.count, delivered, fetched))
        if plan is not None:
            _let_go(store, plan, release=isinstance(error, SourceRejected) and not any(plan.earlier.values()))
        if isinstance(error, TransientError):
            raise
        return summary
    except Exception as error:
        # A bug, or a library raising what it does not document: still one summary line, no text
        # that could hold a secret; redelivered, which the history keeps from telling anyone twice.
        log(_failure_summary(error, plan, client, retries.count, delivered, fetched))
        if plan is not None:
            _let_go(store, plan, release=False)
        raise


class _ChannelsLeft(TransientError):
    """Recipients are left after a transient failure: Pub/Sub redelivers, the history skips the told."""


# -- plan ---------------------------------------------------------------------------------------
def _plan(
    data: bytes,
    publish_time: datetime,
    message_id: str | None,
    settings: Settings,
    services: Services,
    retrier: Retrier,
    store: StateStore,
) -> Plan:
    now = services.now()
    key = message_id or "data:" + hashlib.sha256(publish_time.isoformat().encode() + b"|" + data).hexdigest()
    age = now - publish_time
    if age > timedelta(minutes=settings.max_message_age_minutes):
        raise StaleMessage(
            f"message published {publish_time.isoformat()} is {_duration(age)} old, past "
            f"MAX_MESSAGE_AGE_MINUTES={settings.max_message_age_minutes}; acked without running"
            + _give_up(store, key, settings, now)
            + "; to re-run a window, publish start/end."
        )
    if publish_time - now > MAX_CLOCK_SKEW:
        raise BadMessage(
            "publishTime is in the future; Pub/Sub sets it when a message is published", field="publishTime"
        )
    trigger = parse_trigger(
        data, publish_time=publish_time, default_lookback=settings.default_lookback_minutes
    )
    channels = _chosen_channels(trigger, settings)
    # Every secret is read before anything is claimed, fetched or sent: a bad one stops the run clean.
    secrets = _read_secrets(settings, channels, trigger.dry_run, services, retrier)
    request = RunRequest(
        message=key,
        owner=uuid.uuid4().hex,
        window=_span(trigger.window),
        scheduled=trigger.scheduled,
        now=int(now.timestamp()),
        max_catch_up=settings.state.max_catch_up_minutes * 60,
        late_arrival=settings.state.late_arrival_minutes * 60,
        lease_seconds=int(settings.run_budget_seconds) + 60,
        keep_seconds=settings.max_message_age_minutes * 60 + 86400,
        peek=trigger.dry_run,
    )
    state = store.begin(request)
    everyone = _recipients(settings, channels, secrets)
    left: dict[str, tuple[str, ...]] = {}
    earlier: dict[str, int] = {}
    for channel, recipients in everyone.items():
        settled = state.settled.get(channel, {})
        left[channel] = tuple(r for r in recipients if recipient_key(channel, r) not in settled)
        earlier[channel] = len(recipients) - len(left[channel])
        interrupted = sum(1 for status in settled.values() if status is DeliveryStatus.SENDING)
        if interrupted and not request.peek:
            LOG.error(
                "%s: an earlier delivery of this message stopped while sending to %d recipient(s); they "
                "may have it, so it is not sent again (README, Operations: re-sending)",
                channel,
                interrupted,
                extra={"fields": {"event": "unconfirmed", "channel": channel}},
            )
    return Plan(trigger, request, state, secrets, left, earlier)


def _early_outcome(plan: Plan) -> Outcome | None:
    """The outcome of a delivery that has nothing to fetch, or None."""
    if plan.state.start is Start.ALREADY_COVERED:
        return Outcome.ALREADY_COVERED
    if plan.state.start is Start.RESUMED and not any(plan.left.values()):
        return Outcome.ALREADY_SENT
    return None


def _give_up(store: StateStore, key: str, settings: Settings, now: datetime) -> str:
    """For a stale message: give its claimed time back when nobody heard of it (so the next scheduled
    run covers it), or give up on the recipients left; say which."""
    request = RunRequest(
        message=key,
        owner="stale",
        window=Span(0, 1),
        scheduled=False,
        now=int(now.timestamp()),
        max_catch_up=0,
        late_arrival=0,
        lease_seconds=0,
        keep_seconds=0,
        peek=True,
    )
    try:
        state = store.begin(request)
        if state.start is not Start.RESUMED:
            return ". Nothing of it was claimed: the next scheduled run covers its time"
        heard = (DeliveryStatus.DELIVERED, DeliveryStatus.UNCONFIRMED, DeliveryStatus.SENDING)
        if not any(status in heard for keys in state.settled.values() for status in keys.values()):
            store.finish(request, Ending(release=True))
            return ". Nobody had heard of it: its time is given back and the next scheduled run covers it"
        store.finish(request, Ending(covered=state.coverage))
    except NotifierError as error:
        return f". The run history could not be read ({type(error).__name__})"
    untold = []
    for channel, count in _untold(settings, state).items():
        untold.append(f"{channel} ({count} recipient{'s' if count != 1 else ''})")
    return f"; gave up on {', '.join(untold)} left untold by earlier deliveries" if untold else ""


def _untold(settings: Settings, state: RunState) -> dict[str, int]:
    """Per channel, how many configured recipients the message never settled."""
    untold: dict[str, int] = {}
    for channel, recipients in _configured_recipients(settings).items():
        settled = state.settled.get(channel, {})
        missing = sum(1 for r in recipients if recipient_key(channel, r) not in settled)
        if missing:
            untold[channel] = missing
    if settings.slack and not state.settled.get("slack"):
        untold["slack"] = 1  # its one recipient, the webhook
    return untold


def _chosen_channels(trigger: Trigger, settings: Settings) -> frozenset[str]:
    configured = settings.configured_channels
    if not configured:
        raise ConfigError(
            "no channel is configured: set EMAIL_TO, SMS_TO or SLACK_WEBHOOK_URL", variable="EMAIL_TO"
        )
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


def _read_secrets(
    settings: Settings, channels: frozenset[str], dry_run: bool, services: Services, retrier: Retrier
) -> Secrets:
    def value(ref: Any) -> str:
        return services.secrets.value(ref, retrier, api_url=settings.endpoints.secret_manager)

    mixpanel = MixpanelAuth(settings.mixpanel_service_account, value(settings.mixpanel_secret))
    sending = not dry_run
    slack_url = ""
    if settings.slack and "slack" in channels:
        # The webhook names its recipient, so a dry run reads it too (never to log it).
        slack_url = check_slack_webhook_url(value(settings.slack.webhook_url))
    return Secrets(
        mixpanel=mixpanel,
        sendgrid_key=value(settings.email.api_key)
        if settings.email and "email" in channels and sending
        else "",
        twilio_token=value(settings.sms.auth_token) if settings.sms and "sms" in channels and sending else "",
        slack_url=slack_url,
    )


def _configured_recipients(settings: Settings) -> dict[str, tuple[str, ...]]:
    recipients: dict[str, tuple[str, ...]] = {}
    if settings.email:
        recipients["email"] = settings.email.to
    if settings.sms:
        recipients["sms"] = settings.sms.to
    return recipients


def _recipients(settings: Settings, channels: frozenset[str], secrets: Secrets) -> dict[str, tuple[str, ...]]:
    everyone = {name: to for name, to in _configured_recipients(settings).items() if name in channels}
    if "slack" in channels and secrets.slack_url:
        everyone["slack"] = (webhook_recipient(secrets.slack_url),)
    return everyone


# -- fetch --------------------------------------------------------------------------------------
def _fetch(plan: Plan, client: MixpanelClient, store: StateStore, settings: Settings) -> Fetched:
    """The users to report: the coverage's, and the late spans' that no other message reported.

    A resumed message reports exactly the users it first reported, so every recipient of one
    message hears about the same users; any that reached Mixpanel since are the next run's.
    """
    state = plan.state
    ranges = [_window(span) for span in _merge([*state.coverage, *state.late])]
    late_spans = state.late
    reported_elsewhere: frozenset[bytes] = frozenset()
    if late_spans:
        reported_elsewhere = store.reported(late_spans[0].start, excluding=plan.request.message)
    own = split_keys(state.reported) if state.reported else None
    excluded_domains = settings.digest.exclude_email_domains
    users: list[NewUser] = []
    excluded = late = 0
    for user in client.new_users(ranges):
        key = user_key(user.distinct_id) if own is not None or reported_elsewhere else b""
        if own is not None and key not in own:
            continue
        if key in reported_elsewhere:
            continue
        if excluded_domains and _excluded(user.email, excluded_domains):
            excluded += 1
            continue
        created = int(user.created.timestamp())
        if any(span.start <= created < span.end for span in late_spans):
            user = user._replace(late=True)
            late += 1
        users.append(user)
    window = plan.trigger.window
    in_window = sum(1 for u in users if not u.late and window.start <= u.created < window.end)
    users.sort(key=BY_CREATED_THEN_ID)  # in place: no second list of 100,000
    first = int(users[0].created.timestamp()) if users else plan.request.window.start
    last = int(users[-1].created.timestamp()) if users else plan.request.window.start
    # Only a scheduled message's users count as reported (a backfill changes nothing), and only the
    # first time: a resumed delivery keeps what its message first reported.
    reported = None
    if plan.trigger.scheduled and state.reported is None:
        reported = ReportedUsers.of((user_key(u.distinct_id) for u in users), first, last)
    return Fetched(users, len(users), in_window, late, excluded, reported)


def _excluded(email: str, domains: tuple[str, ...]) -> bool:
    """True when `email` is at one of `domains` or a subdomain of one (case-insensitive)."""
    domain = email.rpartition("@")[2].lower().rstrip(".")
    return bool(domain) and any(domain == d or domain.endswith("." + d) for d in domains)


# -- render -------------------------------------------------------------------------------------
def _render(plan: Plan, fetched: Fetched, settings: Settings) -> Rendered:
    report = Report(
        users=fetched.users,
        window=plan.trigger.window,
        zone=settings.timezone,
        label=settings.digest.project_label,
        catchup=_catchup(plan),
        previous_users=plan.state.previous_users,
        window_users=fetched.in_window,
        profile_url_template=settings.digest.profile_url_template,
        extra_properties=settings.digest.extra_properties,
    )
    left = plan.left
    return Rendered(
        email=render_email(report, row_limit=settings.email_row_limit) if left.get("email") else None,
        sms=render_sms(report) if left.get("sms") else None,
        slack=render_slack(report, email_on=bool(left.get("email") or plan.earlier.get("email")))
        if left.get("slack")
        else None,
    )


def _catchup(plan: Plan) -> Catchup | None:
    window = _span(plan.trigger.window)
    missed = [span for span in plan.state.coverage if span.end <= window.start or span.start < window.start]
    seconds = sum(min(span.end, window.start) - span.start for span in missed)
    if seconds <= 0:
        return None
    since = datetime.fromtimestamp(missed[0].start, UTC)
    return Catchup(since=since, seconds=seconds)


# -- deliver ------------------------------------------------------------------------------------
def _channels_for(plan: Plan, rendered: Rendered, settings: Settings, retrier: Retrier) -> list[Channel]:
    channels: list[Channel] = []
    secrets = plan.secrets
    if rendered.email is not None and settings.email:
        channels.append(
            EmailChannel(
                rendered.email, settings.email, secrets.sendgrid_key, settings.endpoints.sendgrid, retrier
            )
        )
    if rendered.sms is not None and settings.sms:
        channels.append(
            SmsChannel(rendered.sms, settings.sms, secrets.twilio_token, settings.endpoints.twilio, retrier)
        )
    if rendered.slack is not None:
        channels.append(SlackChannel(rendered.slack, secrets.slack_url, retrier))
    return channels


def _deliver(plan: Plan, channels: list[Channel], journal: Journal) -> Delivered:
    """Every channel is attempted, each request noted in the journal before it goes out."""
    deliveries: list[Delivery] = []
    for channel in channels:
        deliveries.extend(channel.send(plan.left.get(channel.name, ()), journal))
    for delivery in deliveries:
        if delivery.status is DeliveryStatus.UNCONFIRMED:
            LOG.error(
                "%s: sent but unconfirmed, not retried: %s (README, Operations: re-sending)",
                delivery.channel,
                delivery.detail,
                extra={"fields": {"event": "unconfirmed", "channel": delivery.channel}},
            )
    return Delivered(tuple(deliveries))


def _outcome(plan: Plan, delivered: Delivered) -> Outcome:
    statuses = [d.status for d in delivered.deliveries]
    if any(not status.settled for status in statuses):
        return Outcome.WILL_RETRY
    told = sum(1 for s in statuses if s is DeliveryStatus.DELIVERED) + sum(plan.earlier.values())
    if all(s is DeliveryStatus.DELIVERED for s in statuses):
        return Outcome.SENT
    return Outcome.PARTIAL if told else Outcome.FAILED


# -- summary ------------------------------------------------------------------------------------
def _summary(
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


def _failure_summary(
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


def _nobody_told(plan: Plan, delivered: Delivered) -> bool:
    settled = any(
        d.status in (DeliveryStatus.DELIVERED, DeliveryStatus.UNCONFIRMED) for d in delivered.deliveries
    )
    return not settled and not any(plan.earlier.values())


def _let_go(store: StateStore, plan: Plan, *, release: bool) -> None:
    """After a failure: free the message's lease (so a redelivery resumes at once), or give its time back."""
    if plan.trigger.dry_run:
        return
    try:
        store.finish(plan.request, Ending(release=release))
    except NotifierError as error:
        LOG.warning("could not update the run history after a failure (%s)", type(error).__name__)


def _log(summary: RunSummary, started: float, services: Services) -> RunSummary:
    summary = RunSummary(**{**summary.__dict__, "duration_s": services.clock() - started})
    message = f"run {summary.outcome.value}" + (f": {summary.error}" if summary.error else "")
    LOG.log(summary.outcome.severity, message, extra={"fields": summary.log_fields()})
    return summary


# -- small helpers ------------------------------------------------------------------------------
def _publish_time(message: Mapping[str, Any], event_time: str | None) -> datetime:
    raw = message.get("publishTime") or message.get("publish_time") or event_time
    if not isinstance(raw, str):
        raise BadMessage("the Pub/Sub message has no publishTime", field="publishTime")
    return parse_timestamp(raw, field="publishTime")


def _span(window: Window) -> Span:
    return Span(int(window.start.timestamp()), int(window.end.timestamp()))


def _window(span: Span) -> Window:
    return Window(datetime.fromtimestamp(span.start, UTC), datetime.fromtimestamp(span.end, UTC))


def _merge(spans: Sequence[Span]) -> list[Span]:
    from notifier.state.history import merge

    return list(merge(spans))


def _iso(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat()


def _duration(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"
