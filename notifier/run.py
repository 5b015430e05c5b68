"""One run: a Pub/Sub message in, one summary line out; plan -> fetch -> render -> deliver.

`handle_message` is what the Cloud Function calls. It returns normally when the message should be
acked (done, nothing to do, or a permanent error, logged) and raises TransientError when Pub/Sub
should redeliver it: while recipients are left untold after a transient failure. The steps live in
plan.py, fetch.py and deliver.py; the summary line in summary.py; the I/O edges in services.py.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from notifier.deliver import Delivered, channels_for, deliver, nobody_told, outcome_of, render
from notifier.errors import BadMessage, NotifierError, TransientError
from notifier.fetch import Fetched, fetch
from notifier.journal import StoreJournal
from notifier.mixpanel import MixpanelClient
from notifier.outcome import Outcome
from notifier.plan import Plan, early_outcome, make_plan
from notifier.retry import Deadline, Retrier, RetryCounter
from notifier.services import Services
from notifier.settings import Settings
from notifier.state import Ending, Span, StateStore
from notifier.summary import RunSummary, failure_summary, log_summary, summarise
from notifier.trigger import decode_data, parse_timestamp

LOG = logging.getLogger(__name__)


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
        return log_summary(failure_summary(error, None, None, 0), started, services)
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
    journal: StoreJournal | None = None
    store: StateStore = services.memory

    def log(summary: RunSummary) -> RunSummary:
        trips, waited = store.round_trips, store.waited
        return log_summary(replace(summary, state_round_trips=trips, state_seconds=waited), started, services)

    try:
        settings = Settings.from_environ(environ)
        retrier = Retrier(
            policy=services.policy,
            deadline=Deadline(settings.run_budget_seconds, services.clock),
            transport=services.transport,
            sleep=services.sleep,
            rng=services.rng,
            on_retry=retries,
        )
        store = services.store(settings, retrier, environ)
        plan = make_plan(data, publish_time, message_id, settings, services, retrier, store)
        early = early_outcome(plan)
        if early is not None:
            summary = summarise(early, plan, None, None, retries.count)
            if early is Outcome.ALREADY_SENT:
                store.finish(plan.request, Ending(covered=plan.state.coverage))
            if early is Outcome.FAILED:
                # Every recipient refused it earlier, and giving its time back had not got through.
                store.finish(plan.request, Ending(release=True))
                given_back = "every recipient refused it earlier: its time is given back for the next run"
                summary = replace(summary, error=given_back)
            return log(summary)
        client = MixpanelClient(
            base_url=settings.endpoints.mixpanel,
            project_id=settings.mixpanel_project_id,
            auth=plan.secrets.mixpanel,
            retrier=retrier,
            extra_properties=settings.digest.extra_properties,
        )
        fetched = fetch(plan, client, store, settings)
        if not fetched.users and not settings.notify_when_empty:
            if not plan.trigger.dry_run:
                store.finish(
                    plan.request, Ending(users_in_window=fetched.in_window, covered=plan.state.coverage)
                )
            return log(summarise(Outcome.NOTHING_TO_SEND, plan, fetched, client, retries.count))
        rendered = render(plan, fetched, settings)
        fetched = replace(fetched, users=())  # what is rendered holds what it needs; free the rest
        if plan.trigger.dry_run:
            summary = summarise(Outcome.DRY_RUN, plan, fetched, client, retries.count, rendered=rendered)
            return log(summary)
        journal = StoreJournal(store, plan.request, fetched.reported)
        delivered = deliver(plan, channels_for(plan, rendered, settings, retrier), journal)
        outcome = outcome_of(plan, delivered)
        journal.close(
            Ending(
                users_in_window=None if outcome is Outcome.WILL_RETRY else fetched.in_window,
                # Nobody could be told for a reason a person must fix: give the time back, so the
                # next scheduled run after the fix catches it up instead of it being lost.
                release=outcome is Outcome.FAILED and nobody_told(plan, delivered),
                covered=() if outcome is Outcome.WILL_RETRY else plan.state.coverage,
            )
        )
        summary = summarise(
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
        # Recipients still left after a transient failure are the redelivery's, whatever broke since.
        untold_left = plan is not None and delivered is not None and outcome_of(plan, delivered)
        redeliver = isinstance(error, TransientError) or untold_left is Outcome.WILL_RETRY
        summary = failure_summary(error, plan, client, retries.count, delivered, fetched)
        summary = log(replace(summary, outcome=Outcome.WILL_RETRY) if redeliver else summary)
        if plan is not None:
            # Acked, so no redelivery will finish it. Refused before any send (Mixpanel or the history
            # said no) and nobody told earlier: give the time back for the run after the fix.
            # Otherwise its time was someone's: close it, so later runs search it for late arrivals.
            release = not redeliver and journal is None and not plan.state.heard
            _let_go(store, plan, journal, release=release, covered=() if redeliver else plan.state.coverage)
        if isinstance(error, TransientError):
            raise
        if redeliver:
            raise _ChannelsLeft(f"recipients left untold, then {type(error).__name__}") from None
        return summary
    except Exception as error:
        # A bug, or a library raising what it does not document: still one summary line, no text
        # that could hold a secret; redelivered, which the history keeps from telling anyone twice.
        log(failure_summary(error, plan, client, retries.count, delivered, fetched))
        if plan is not None:
            _let_go(store, plan, journal, release=False, covered=())
        raise


class _ChannelsLeft(TransientError):
    """Recipients are left after a transient failure: Pub/Sub redelivers, the history skips the told."""


def _let_go(
    store: StateStore, plan: Plan, journal: StoreJournal | None, *, release: bool, covered: tuple[Span, ...]
) -> None:
    """After a failure: free the message's lease (so a redelivery resumes at once), with the notes
    the journal still holds and `covered` closed, or give its time back."""
    if plan.trigger.dry_run:
        return
    if journal is not None and not release:
        journal.abandon(covered)
        return
    try:
        store.finish(plan.request, Ending(release=release, covered=() if release else covered))
    except NotifierError as error:
        LOG.warning("could not update the run history after a failure (%s)", type(error).__name__)


def _publish_time(message: Mapping[str, Any], event_time: str | None) -> datetime:
    raw = message.get("publishTime") or message.get("publish_time") or event_time
    if not isinstance(raw, str):
        raise BadMessage("the Pub/Sub message has no publishTime", field="publishTime")
    return parse_timestamp(raw, field="publishTime")
