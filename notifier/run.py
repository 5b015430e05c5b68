"""One run: a Pub/Sub message in, one summary line out, and an ack or a redelivery.

The steps (`_steps`: plan, fetch, compose, deliver) run inside a unit of work (`RunUnit`), which
ends the message in the run history exactly once whatever they reach, as the decision table
(`notifier.decision`) says; the summary (`notifier.summary`) is logged; the function then returns
(Pub/Sub acks) or raises RedeliveryRequested (Pub/Sub delivers the message again).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, NoReturn

from notifier.compose import compose, profile_properties
from notifier.decision import Disposition
from notifier.deliver import channels_for, deliver
from notifier.errors import BadMessage, InProgress, NotifierError, RedeliveryRequested
from notifier.fetch import fetch
from notifier.mixpanel import MixpanelClient
from notifier.plan import (
    TELLS_HELD,
    Plan,
    Prepared,
    PubSubMessage,
    abandoned_message,
    out_of_reach,
    prepare,
    stale_message,
)
from notifier.retry import Deadline, Retrier
from notifier.services import Services
from notifier.settings import Settings
from notifier.span import Span
from notifier.state import USER_KEY_BYTES, RunState, Start, StateStore
from notifier.summary import Progress, RunSummary, log_summary, summarise
from notifier.trigger import Trigger, decode_data, parse_timestamp
from notifier.unit_of_work import RunUnit
from notifier.users import Users


def handle_message(
    message: Mapping[str, Any] | None,
    *,
    event_time: str | None,
    environ: Mapping[str, str],
    services: Services,
) -> RunSummary:
    """Run for one Pub/Sub message (`data` base64, `publishTime`, `messageId`); see the module docstring."""
    return _execute(lambda: read_message(message, event_time), environ, services)


def run(
    data: bytes,
    publish_time: datetime,
    *,
    environ: Mapping[str, str],
    services: Services,
    message_id: str | None = None,
) -> RunSummary:
    """Run for raw message data published at `publish_time`; see the module docstring."""
    return _execute(lambda: PubSubMessage(data, publish_time, message_id), environ, services)


def _execute(read: Callable[[], PubSubMessage], environ: Mapping[str, str], services: Services) -> RunSummary:
    started = services.clock()
    progress = Progress()
    with RunUnit() as unit:
        _steps(read(), environ, services, unit, progress)
    summary = log_summary(summarise(progress, unit), started, services)
    assert unit.decision is not None
    if unit.decision.disposition is Disposition.REDELIVER:
        # functions-framework prints what a function raises: the outcome only, never a provider's words.
        raise RedeliveryRequested(f"redelivery requested ({summary.outcome.value}): see the run summary")
    return summary


def _steps(
    message: PubSubMessage, environ: Mapping[str, str], services: Services, unit: RunUnit, progress: Progress
) -> None:
    settings = Settings.from_environ(environ)
    retrier = Retrier(
        policy=services.policy,
        deadline=Deadline(settings.run_budget_seconds, services.clock),
        transport=services.transport,
        sleep=services.sleep,
        rng=services.rng,
        on_retry=progress.retries,
    )
    prepared = progress.prepared = prepare(message, settings, services, retrier)
    if prepared.secrets is None:
        _give_up(prepared, unit, lambda: services.store(settings, retrier, environ), progress)
    store = progress.store = services.store(settings, retrier, environ)
    plan = progress.plan = Plan.of(prepared, unit.begin(store, prepared.request), prepared.secrets)
    _end_what_was_left(plan, prepared, settings, services, store)
    _holds(unit, prepared, plan.state)
    if plan.nothing_to_do:
        return
    fetched = progress.fetched = fetch(plan, _mixpanel(settings, plan, retrier, progress), store, settings)
    unit.window_users = fetched.in_window
    if fetched.reported is not None:
        unit.reports(fetched.reported)
    if plan.holds_texts:
        unit.held_back = fetched.count
    rendered = progress.rendered = compose(plan, fetched, settings)
    # What is rendered holds what it needs: the users go before the requests are built.
    progress.fetched = fetched = replace(fetched, users=Users())
    if rendered is None or plan.trigger.dry_run:
        return
    unit.deliveries = deliver(plan, channels_for(plan, rendered, settings, retrier), unit.journal)


def _holds(unit: RunUnit, prepared: Prepared, state: RunState) -> None:
    """What the unit keeps for quiet hours: a quiet message holds its users back (a resumed or stale
    one, those it first reported); the tallies a message took stay told only if its texts were heard."""
    if prepared.holds_texts and state.reported is not None:
        unit.held_back = len(state.reported) // USER_KEY_BYTES
    unit.held_told_on = TELLS_HELD


def _end_what_was_left(
    plan: Plan, prepared: Prepared, settings: Settings, services: Services, store: StateStore
) -> None:
    """What earlier deliveries left, each with a summary line of its own: messages whose deliveries
    stopped for good while they held time open, ended as their last stale redelivery would have (time
    given back if nobody was told); open time an earlier version kept; given-back time no run reaches."""
    for claim in plan.state.abandoned:
        started, progress = services.clock(), Progress()
        stale = progress.prepared = abandoned_message(claim, prepared, settings)
        with RunUnit() as unit:
            _give_up(stale, unit, lambda: store, progress)
        if unit.hold is None or unit.ending_lost:
            continue  # another run is ending it, or the history did not answer: the next run tries again
        log_summary(summarise(progress, unit), started, services)
    for claim in plan.state.lapsed:  # left open by an earlier version, past its record's life
        stale = abandoned_message(claim, prepared, settings)
        _log_given_up(stale, stale_message(stale, RunState(Start.LAPSED)), services)
    if spans := plan.state.beyond_reach:
        whole = Span(spans[0].start, spans[-1].end)
        _log_given_up(replace(prepared, trigger=Trigger(whole)), out_of_reach(spans), services)


def _log_given_up(prepared: Prepared, error: NotifierError, services: Services) -> None:
    """A summary line of its own for what this run found given up (it holds nothing of it)."""
    started, progress = services.clock(), Progress(prepared=prepared)
    with RunUnit() as unit:
        raise error
    log_summary(summarise(progress, unit), started, services)


def _mixpanel(settings: Settings, plan: Plan, retrier: Retrier, progress: Progress) -> MixpanelClient:
    client = MixpanelClient(
        base_url=settings.endpoints.mixpanel,
        project_id=settings.mixpanel_project_id,
        auth=plan.secrets.mixpanel,
        retrier=retrier,
        extra_properties=profile_properties(settings),
        created_property=settings.created_property,
        where_filter=settings.mixpanel_filter,
        page_concurrency=settings.mixpanel_page_concurrency,
    )
    progress.stats = client.stats
    return client


def _give_up(
    prepared: Prepared, unit: RunUnit, open_store: Callable[[], StateStore], progress: Progress
) -> NoReturn:
    """A stale message takes over its record, if any, only for the unit to end it; it always ends
    as stale (acked), even when the history does not answer: an old message must not loop."""
    try:
        store = progress.store = open_store()
        state = unit.begin(store, prepared.request)
    except InProgress:
        raise  # another delivery is ending it: the redelivery finds it ended
    except NotifierError as error:
        raise stale_message(prepared, None, unanswered=error) from None
    _holds(unit, prepared, state)  # a quiet message's users stay held for the next text
    raise stale_message(prepared, state)


def read_message(message: Mapping[str, Any] | None, event_time: str | None) -> PubSubMessage:
    """The parts of a Pub/Sub message a run needs; BadMessage when it has none of them."""
    if not isinstance(message, Mapping):
        raise BadMessage("the event carries no Pub/Sub message", field="message")
    raw = message.get("publishTime") or message.get("publish_time") or event_time
    if not isinstance(raw, str):
        raise BadMessage("the Pub/Sub message has no publishTime", field="publishTime")
    published = parse_timestamp(raw, field="publishTime")
    message_id = message.get("messageId") or message.get("message_id")
    return PubSubMessage(
        decode_data(message.get("data")),
        published,
        message_id if isinstance(message_id, str) and message_id else None,
    )
