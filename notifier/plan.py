"""Step one of a run: what this delivery of a message will do.

The trigger is read, its secrets resolved (a bad one stops the run before anything is claimed),
the message claimed in (or resumed from) the run history, and the recipients left on each channel
worked out. A stale message gives its time back or gives up on who is left.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from notifier.channels import DeliveryStatus
from notifier.channels.slack import webhook_recipient
from notifier.errors import BadMessage, NotifierError, StaleMessage
from notifier.mixpanel import MixpanelAuth
from notifier.outcome import Outcome
from notifier.retry import Retrier
from notifier.services import Services
from notifier.settings import CHANNEL_VARIABLES, Settings, check_slack_webhook_url
from notifier.state import Ending, RunRequest, RunState, Span, Start, StateStore, recipient_key
from notifier.trigger import Trigger, Window, parse_trigger

LOG = logging.getLogger(__name__)
# A publishTime this far ahead of the clock is not Pub/Sub's: claiming future time would silence it.
MAX_CLOCK_SKEW = timedelta(minutes=5)


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


def make_plan(
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
            + give_up(store, key, settings, now)
            + "; to re-run a window, publish start/end."
        )
    if publish_time - now > MAX_CLOCK_SKEW:
        raise BadMessage(
            "publishTime is in the future; Pub/Sub sets it when a message is published", field="publishTime"
        )
    trigger = parse_trigger(
        data,
        publish_time=publish_time,
        default_lookback=settings.default_lookback_minutes,
        zone=settings.timezone,
        reach_back=timedelta(
            minutes=settings.state.max_catch_up_minutes + settings.state.late_arrival_minutes
        ),
    )
    channels = _chosen_channels(trigger, settings)
    # Every secret is read before anything is claimed, fetched or sent: a bad one stops the run clean.
    secrets = _read_secrets(settings, channels, trigger.dry_run, services, retrier)
    request = RunRequest(
        message=key,
        owner=uuid.uuid4().hex,
        window=span_of(trigger.window),
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


def early_outcome(plan: Plan) -> Outcome | None:
    """The outcome of a delivery that has nothing to fetch, or None."""
    if plan.state.start is Start.ALREADY_COVERED:
        return Outcome.ALREADY_COVERED
    if plan.state.start is Start.RESUMED and not any(plan.left.values()):
        return Outcome.ALREADY_SENT if plan.state.heard else Outcome.FAILED
    return None


def give_up(store: StateStore, key: str, settings: Settings, now: datetime) -> str:
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
        if not state.heard:
            store.finish(request, Ending(release=True))
            return ". Nobody had heard of it: its time is given back and the next scheduled run covers it"
        store.finish(request, Ending(covered=state.coverage))
    except NotifierError as error:
        # Acked all the same (SPEC: no retry storm for stale messages), so say what may be left.
        return (
            f". The run history could not be read or updated ({type(error).__name__}): time this "
            "message claimed may stay unreported until it is re-run with start/end"
        )
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


def span_of(window: Window) -> Span:
    """A window as the history's Unix-second span."""
    return Span(int(window.start.timestamp()), int(window.end.timestamp()))


def _duration(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"
