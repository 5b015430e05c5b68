"""Step one of a run: what this delivery of a message asks for, and, once the history has answered,
who it still owes.

`prepare` reads the trigger and resolves the secrets (a bad one stops the run before anything is
claimed); a message past the redelivery horizon asks only to give up (no secrets, nothing claimed).
`Plan.of` adds the history's answer: which recipients on each channel are left.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from notifier.errors import BadMessage, ExpiredMessage, StaleMessage
from notifier.mixpanel import MixpanelAuth
from notifier.quiet_hours import in_quiet_hours
from notifier.retry import Retrier
from notifier.services import Services
from notifier.settings import Settings, check_slack_webhook_url
from notifier.span import Span
from notifier.state import Intent, Note, OpenClaim, RunRequest, RunState, Start, recipient_key
from notifier.trigger import Trigger, parse_trigger
from notifier.variables import CHANNEL_VARIABLES

LOG = logging.getLogger(__name__)
# A publishTime this far ahead of the clock is not Pub/Sub's: claiming future time would silence it.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# Slack has one recipient per deployment, the webhook; its URL is a secret, so it is never the key.
SLACK_RECIPIENT = "webhook"
# The channel quiet hours hold back: its next text tells the tallies quiet runs kept.
TELLS_HELD = "sms"


@dataclass(frozen=True)
class PubSubMessage:
    """What a run needs of a Pub/Sub message: its data, when it was published, and its key."""

    data: bytes
    published: datetime
    message_id: str | None

    @property
    def key(self) -> str:
        """The message's key in the history: its id, or a hash of what it says and when."""
        if self.message_id:
            return self.message_id
        return "data:" + hashlib.sha256(self.published.isoformat().encode() + b"|" + self.data).hexdigest()


@dataclass(frozen=True)
class Secrets:
    """The secret values a run needs, read before anything is claimed, fetched or sent."""

    mixpanel: MixpanelAuth
    sendgrid_key: str = ""
    twilio_token: str = ""
    slack_url: str = ""


@dataclass(frozen=True)
class Prepared:
    """What a delivery asks of the history, and what it needs to do the work."""

    trigger: Trigger
    request: RunRequest
    secrets: Secrets | None  # None: a stale message, which only gives up
    recipients: Mapping[str, tuple[str, ...]]  # channel -> everyone the message is for
    published: datetime
    age: timedelta  # how long ago it was published, by this instance's clock
    holds_texts: bool = False  # quiet hours: no text now; the users found are held for the next one
    abandoned: bool = False  # a message no delivery can run any more, ended by a later run


@dataclass(frozen=True)
class Plan:
    """What this delivery will do: the trigger, the history's answer, who is left on each channel."""

    trigger: Trigger
    request: RunRequest
    state: RunState
    secrets: Secrets
    owed: Mapping[str, tuple[str, ...]]  # channel -> recipients no earlier delivery noted
    told_before: Mapping[str, int]  # channel -> how many recipients an earlier delivery noted
    holds_texts: bool = False  # quiet hours: no text now; the users found are held for the next one

    @classmethod
    def of(cls, prepared: Prepared, state: RunState, secrets: Secrets) -> Plan:
        """The plan once the history answered."""
        left, noted = owed(prepared.recipients, state)
        return cls(prepared.trigger, prepared.request, state, secrets, left, noted, prepared.holds_texts)

    @property
    def nothing_to_do(self) -> bool:
        """True when the history says there is nothing left for this delivery to fetch, send or hold."""
        if not self.state.holds_message:
            return True
        # A quiet delivery fetches to count what it holds, resumed too: its first may have failed first.
        return not any(self.owed.values()) and not self.holds_texts


def prepare(message: PubSubMessage, settings: Settings, services: Services, retrier: Retrier) -> Prepared:
    """Read the trigger and resolve the secrets; see the module docstring."""
    now = services.now()
    if message.published - now > MAX_CLOCK_SKEW:
        raise BadMessage(
            "publishTime is in the future; Pub/Sub sets it when a message is published", field="publishTime"
        )
    trigger = parse_trigger(
        message.data,
        publish_time=message.published,
        default_lookback=settings.default_lookback_minutes,
        zone=settings.timezone,
        reach_back=timedelta(
            minutes=settings.state.max_catch_up_minutes + settings.state.late_arrival_minutes
        ),
    )
    age = now - message.published
    stale = age > timedelta(minutes=settings.max_message_age_minutes)
    quiet = texts_held(trigger, settings)
    channels = settings.configured_channels if stale else _chosen_channels(trigger, settings)
    channels -= {TELLS_HELD} if quiet else set()
    lease = int(settings.run_budget_seconds) + 60  # a delivery's hold on its message: the run, and a minute
    request = RunRequest(
        message=message.key,
        owner=uuid.uuid4().hex,
        window=trigger.window,
        published=int(message.published.timestamp()),
        scheduled=trigger.scheduled,
        now=int(now.timestamp()),
        max_catch_up=settings.state.max_catch_up_minutes * 60,
        late_arrival=settings.state.late_arrival_minutes * 60,
        lease_seconds=lease,
        # Past MAX_MESSAGE_AGE_MINUTES a delivery only gives up; one begun before holds its lease.
        runs_for=settings.max_message_age_minutes * 60 + lease,
        keep_seconds=settings.max_message_age_minutes * 60 + 86400,
        intent=Intent.GIVE_UP if stale else Intent.DRY_RUN if trigger.dry_run else Intent.RUN,
        takes_held=trigger.scheduled and TELLS_HELD in channels,
        channels=tuple(sorted(channels)),
    )
    # Nothing is sent for a stale message: its secrets are not read (a Secret Manager outage must not
    # turn an old message into a retry storm).
    secrets = None if stale else read_secrets(settings, channels, trigger.dry_run, services, retrier)
    recipients = recipients_of(settings, channels)
    return Prepared(trigger, request, secrets, recipients, message.published, age, holds_texts=quiet)


def abandoned_message(claim: OpenClaim, prepared: Prepared, settings: Settings) -> Prepared:
    """A stale delivery of an abandoned message, for a later run to end it as the message's last
    redelivery would have, had Pub/Sub sent one past MAX_MESSAGE_AGE_MINUTES."""
    request = replace(
        prepared.request,
        message=claim.message,
        owner=uuid.uuid4().hex,
        window=claim.window,
        published=claim.published,
        scheduled=claim.scheduled,
        intent=Intent.GIVE_UP,
        takes_held=False,
        channels=claim.channels,
    )
    published = datetime.fromtimestamp(claim.published, UTC)
    age = timedelta(seconds=request.now - claim.published)
    trigger = Trigger(claim.window, explicit=not claim.scheduled)
    quiet = texts_held(trigger, settings)  # as its own deliveries decided: its texts are held, not owed
    recipients = recipients_of(settings, frozenset(claim.channels))
    return Prepared(trigger, request, None, recipients, published, age, holds_texts=quiet, abandoned=True)


def texts_held(trigger: Trigger, settings: Settings) -> bool:
    """True when texts wait: a scheduled run whose time (its window's end) is in SMS_QUIET_HOURS.
    A backfill or a message naming its channels texts whatever the hour: a person asked for it."""
    quiet = settings.sms_quiet_hours
    if quiet is None or settings.sms is None or not trigger.scheduled:
        return False
    return in_quiet_hours(trigger.window.end_at, quiet, settings.timezone)


def owed(
    recipients: Mapping[str, tuple[str, ...]], state: RunState
) -> tuple[dict[str, tuple[str, ...]], dict[str, int]]:
    """Per channel, the recipients no earlier delivery noted, and how many it did."""
    left: dict[str, tuple[str, ...]] = {}
    earlier: dict[str, int] = {}
    for channel, everyone in recipients.items():
        notes = state.notes.get(channel, {})
        left[channel] = tuple(r for r in everyone if recipient_key(channel, r) not in notes)
        earlier[channel] = len(everyone) - len(left[channel])
        interrupted = sum(1 for note in notes.values() if note is Note.SENDING)
        if interrupted and state.start is Start.RESUMED:
            LOG.error(
                "%s: an earlier delivery of this message stopped while sending to %d recipient(s); they "
                "may have it, so it is not sent again (docs/operations.md: re-sending)",
                channel,
                interrupted,
                extra={"fields": {"event": "unconfirmed", "channel": channel}},
            )
    return left, earlier


def stale_message(
    prepared: Prepared, state: RunState | None, *, unanswered: Exception | None = None
) -> StaleMessage:
    """The error a stale message ends with: how old it is and what it gives up, if anything (`state`
    None: the history did not answer, `unanswered` says how)."""
    said = f"message published {prepared.published.isoformat()} is {_duration(prepared.age)} old, past "
    if prepared.abandoned:
        said += "MAX_MESSAGE_AGE_MINUTES, and its deliveries stopped before it ended (Pub/Sub redelivers "
        said += "for 24 hours, and a redeploy drops what it holds): a later run ended it"
    else:
        said += "MAX_MESSAGE_AGE_MINUTES; acked without running"
    rerun = "; to re-run a window, publish start/end"
    if state is None:
        kind = type(unanswered).__name__
        return ExpiredMessage(
            f"{said}; the run history did not answer ({kind}): if it holds time, a later scheduled run "
            "ends it"
        )
    left, _noted = owed(prepared.recipients, state)
    untold = [
        f"{channel} ({len(who)} recipient{'s' * (len(who) != 1)})" for channel, who in left.items() if who
    ]
    if state.told_anyone and untold and state.start is Start.RESUMED:
        return StaleMessage(
            f"{said}; gave up on {', '.join(untold)} left untold by earlier deliveries{rerun}"
        )
    if state.start is Start.LAPSED:
        return StaleMessage(
            f"{said}; its record expired before it ended, so who it told is unknown: its time is not "
            f"reported again{rerun}"
        )
    if not prepared.request.scheduled and not state.told_anyone and state.start is not Start.ENDED:
        return StaleMessage(f"{said}: the window it asked for was never reported{rerun}")
    if state.start is Start.RESUMED and not state.told_anyone:
        return ExpiredMessage(f"{said}; nobody had been told: its time is given back for the next run")
    return ExpiredMessage(f"{said}; {_NOTHING_GIVEN_UP.get(state.start, 'nothing was left to do')}")


_NOTHING_GIVEN_UP = {
    Start.ABSENT: "nothing of it was claimed: the next scheduled run covers its time",
    Start.ENDED: "it had ended: nothing was left to do",
    Start.RESUMED: "every recipient had been told",
}


def out_of_reach(spans: Sequence[Span]) -> StaleMessage:
    """The error for time given back (nobody was told) that lies further back than this run's
    catch-up reaches: no run will report it, unless a person re-runs it."""
    reruns = ", ".join(
        f'{{"start": "{span.start_at.isoformat()}", "end": "{span.end_at.isoformat()}"}}' for span in spans
    )
    return StaleMessage(
        "time given back by messages nobody heard of lies further back than MAX_CATCH_UP_MINUTES "
        f"reaches, so no scheduled run reports it: publish {reruns} to report it"
    )


def recipients_of(settings: Settings, channels: frozenset[str]) -> dict[str, tuple[str, ...]]:
    """Everyone a message is for on `channels`: addresses, numbers, and Slack's one webhook."""
    everyone: dict[str, tuple[str, ...]] = {}
    if settings.email and "email" in channels:
        everyone["email"] = settings.email.to
    if settings.sms and "sms" in channels:
        everyone["sms"] = settings.sms.to
    if settings.slack and "slack" in channels:
        everyone["slack"] = (SLACK_RECIPIENT,)
    return everyone


def _chosen_channels(trigger: Trigger, settings: Settings) -> frozenset[str]:
    configured = settings.require_a_channel()
    if trigger.channels is None:
        return configured
    missing = sorted(trigger.channels - configured)
    if missing:
        raise BadMessage(
            f"channels asks for {', '.join(missing)}, which is not configured "
            f"(set {', '.join(CHANNEL_VARIABLES[name] for name in missing)})",
            field="channels",
        )
    return trigger.channels


def read_secrets(
    settings: Settings, channels: frozenset[str], dry_run: bool, services: Services, retrier: Retrier
) -> Secrets:
    """Every secret the run needs: Mixpanel's always, a channel's only when it will send."""

    def value(ref: Any) -> str:
        return services.secrets.value(ref, retrier, api_url=settings.endpoints.secret_manager)

    def needed(on: object, channel: str) -> bool:
        return bool(on) and channel in channels and not dry_run

    return Secrets(
        mixpanel=MixpanelAuth(settings.mixpanel_service_account, value(settings.mixpanel_secret)),
        sendgrid_key=value(settings.email.api_key)
        if settings.email and needed(settings.email, "email")
        else "",
        twilio_token=value(settings.sms.auth_token) if settings.sms and needed(settings.sms, "sms") else "",
        slack_url=check_slack_webhook_url(value(settings.slack.webhook_url))
        if settings.slack and needed(settings.slack, "slack")
        else "",
    )


def _duration(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"
