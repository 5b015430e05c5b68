"""Step two of a run: the users to report, from Mixpanel, checked against the run history."""

from __future__ import annotations

from dataclasses import dataclass

from notifier.mixpanel import MixpanelClient
from notifier.plan import Plan
from notifier.settings import Settings
from notifier.span import merge
from notifier.state import ReportedUsers, StateStore, split_keys, user_key
from notifier.users import Users


@dataclass(frozen=True)
class Fetched:
    """The users to report, sorted, and what fetching them found."""

    users: Users  # emptied once rendered: sending needs only what is rendered
    count: int
    in_window: int  # the message window's own users (for the next run's trend)
    late: int
    excluded: int
    reported: ReportedUsers | None  # to record with the first send; None: a resumed or unscheduled message


def fetch(plan: Plan, client: MixpanelClient, store: StateStore, settings: Settings) -> Fetched:
    """The users to report: the coverage's, and the late spans' that no other message reported.

    A resumed message reports exactly the users it first reported, so every recipient of one
    message hears about the same users; any that reached Mixpanel since are the next run's.
    """
    state = plan.state
    late_spans = state.late
    reported_elsewhere: frozenset[bytes] = frozenset()
    if late_spans:
        reported_elsewhere = store.reported(late_spans[0].start, excluding=plan.request.message)
    own = split_keys(state.reported) if state.reported is not None else None  # b"": reported nobody
    excluded_domains = settings.digest.exclude_email_domains
    users = Users()
    excluded = late = 0
    ranges = merge([*state.coverage, *late_spans])
    for user in client.new_users(ranges):
        key = user_key(user.distinct_id) if own is not None or reported_elsewhere else b""
        if own is not None and key not in own:
            continue
        created = int(user.created.timestamp())
        is_late = any(span.holds(created) for span in late_spans)
        # Only the late spans were covered by other digests: users of this run's own coverage are
        # its own, whatever another message once meant to report.
        if is_late and key in reported_elsewhere:
            continue
        if excluded_domains and _excluded(user.email, excluded_domains):
            excluded += 1
            continue
        if is_late:
            user = user._replace(late=True)
            late += 1
        users.append(user)
    window = plan.request.window
    in_window = users.on_time_in(window.start, window.end)
    users.sort()
    return Fetched(users, len(users), in_window, late, excluded, _to_record(plan, users))


def _to_record(plan: Plan, users: Users) -> ReportedUsers | None:
    """What the history keeps of the users a message reports: only a scheduled message's count (a
    backfill changes nothing), and only the first time (a resumed delivery keeps what it had)."""
    if not plan.trigger.scheduled or plan.state.reported is not None:
        return None
    latest = int(users[-1].created.timestamp()) if users else plan.request.window.start
    return ReportedUsers.of(map(user_key, users.distinct_ids()), latest)


def _excluded(email: str, domains: tuple[str, ...]) -> bool:
    """True when `email` is at one of `domains` or a subdomain of one (case-insensitive)."""
    domain = email.rpartition("@")[2].lower().rstrip(".")
    return bool(domain) and any(domain == d or domain.endswith("." + d) for d in domains)
