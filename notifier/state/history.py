"""The history's rules, with no I/O: both backends read their documents, call these, and write back.

`claim` decides what a delivery covers; `released`, `closed`, `counted` and `marked` are the documents
after the other steps. The coverage document holds the union of claimed time (coalesced spans), the
time claimed by messages still running (`open`: no late search there, their users are not final
yet), the earliest time ever claimed (`genesis`: time before the first digest was never owed to
anyone) and recent window counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from notifier.channels import DeliveryStatus
from notifier.errors import InProgress
from notifier.state import Mark, ReportedUsers, RunRequest, RunState, Span, Start

MAX_COUNTS = 400  # window counts kept for the trend: weeks of hourly runs
FORGET_AFTER_SECONDS = 70 * 24 * 3600


@dataclass(frozen=True)
class Coverage:
    """The coverage document: claimed time, the first instant ever claimed, recent window counts."""

    spans: tuple[Span, ...] = ()
    genesis: int | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    open: tuple[Span, ...] = ()  # claimed by messages not finished yet, as each claimed them
    deferred: tuple[Span, ...] = ()  # time a run wanted to search for late arrivals while it was open


@dataclass(frozen=True)
class RunRecord:
    """A message's document: its lease, what it covers, and every recipient it settled."""

    owner: str
    lease_until: int
    finished: bool
    window: Span
    coverage: tuple[Span, ...]
    late: tuple[Span, ...]
    settled: Mapping[str, Mapping[str, DeliveryStatus]]
    expire_at: int
    reported_chunks: int = 0  # documents holding the users this message reported (0: none yet)


def reported_expiry(request: RunRequest, reported: ReportedUsers) -> int:
    """When a message's reported ids may go: once no later run's catch-up or look-back reaches them."""
    return reported.max_created + request.max_catch_up + request.late_arrival + 86400


def count_key(window: Span) -> str:
    """The key of a window's user count."""
    return f"w{window.start}_{window.end}"


def merge(spans: Iterable[Span]) -> tuple[Span, ...]:
    """Sorted, with overlapping and touching spans joined."""
    merged: list[Span] = []
    for span in sorted(s for s in spans if s.end > s.start):
        if merged and span.start <= merged[-1].end:
            merged[-1] = Span(merged[-1].start, max(merged[-1].end, span.end))
        else:
            merged.append(span)
    return tuple(merged)


def subtract(spans: Iterable[Span], taken: Iterable[Span]) -> tuple[Span, ...]:
    """What of `spans` lies outside `taken`."""
    taken = merge(taken)
    left: list[Span] = []
    for span in merge(spans):
        start = span.start
        for cut in taken:
            if cut.end <= start or cut.start >= span.end:
                continue
            if cut.start > start:
                left.append(Span(start, cut.start))
            start = max(start, cut.end)
        if start < span.end:
            left.append(Span(start, span.end))
    return tuple(left)


def intersect(spans: Iterable[Span], within: Iterable[Span]) -> tuple[Span, ...]:
    """What of `spans` lies inside `within`."""
    spans = merge(spans)
    return subtract(spans, subtract(spans, within))


def claim(
    record: RunRecord | None, coverage: Coverage, request: RunRequest
) -> tuple[RunState, RunRecord | None, Coverage]:
    """What this delivery covers, the message's record after it, and the coverage after it.

    Raises InProgress when another delivery of the same message holds a live lease.
    """
    if record is not None:
        return _resume(record, coverage, request)
    window = request.window
    previous = coverage.counts.get(count_key(Span(window.start - window.seconds, window.start)))
    if not request.scheduled:
        # A backfill or a hand-picked window reports what it asks for and changes no claim.
        state = RunState(Start.FRESH, coverage=(window,), previous_users=previous)
        return state, _new_record(request, state), coverage
    if not subtract([window], coverage.spans):
        return RunState(Start.ALREADY_COVERED, previous_users=previous), None, coverage
    if coverage.genesis is None:
        reach_back = window.start  # the first digest covers its own window, not a week of history
    else:
        reach_back = min(window.start, max(coverage.genesis, window.end - request.max_catch_up))
    covered = subtract([Span(reach_back, window.end)], coverage.spans)
    first = covered[0].start
    # Late arrivals are looked for only in time an earlier digest covered and finished: unclaimed
    # time gets its own digest, and a digest still running reports its own users. Time that was
    # still running when an earlier run wanted to search it waits (deferred) for the next run.
    # The look-back reaches from before the first instant covered up to the window, so time other
    # digests covered between caught-up gaps is searched too.
    settled_time = subtract(coverage.spans, coverage.open)
    reach = [Span(first - request.late_arrival, window.start)] if request.late_arrival else []
    lookback = subtract(reach, covered)
    wanted = merge([*lookback, *coverage.deferred])
    late = intersect(wanted, settled_time)
    deferred = intersect(wanted, coverage.open)
    state = RunState(Start.FRESH, coverage=covered, late=late, previous_users=previous)
    genesis = window.start if coverage.genesis is None else min(coverage.genesis, window.start)
    # Spans too old for any message to reach (catch-up, lateness, the longest window and the oldest
    # message, with room to spare) are dropped, so the document stays small.
    horizon = request.now - request.max_catch_up - request.late_arrival - FORGET_AFTER_SECONDS
    kept = tuple(span for span in merge([*coverage.spans, *covered]) if span.end > horizon)
    still_open = tuple(span for span in (*coverage.open, *covered) if span.end > horizon)
    deferred = tuple(span for span in deferred if span.end > horizon)
    # Firestore's ending adds a window's count without reading the document: the claim, which reads
    # and rewrites it anyway, is where the counts are kept to the most recent MAX_COUNTS.
    after = replace(
        coverage,
        spans=kept,
        genesis=genesis,
        open=still_open,
        deferred=deferred,
        counts=_recent(coverage.counts),
    )
    return state, _new_record(request, state), after


def _resume(
    record: RunRecord, coverage: Coverage, request: RunRequest
) -> tuple[RunState, RunRecord | None, Coverage]:
    if not record.finished and record.owner != request.owner and record.lease_until > request.now:
        raise InProgress(
            "another delivery of this message is running; Pub/Sub will deliver it again after it ends"
        )
    window = record.window
    previous = coverage.counts.get(count_key(Span(window.start - window.seconds, window.start)))
    state = RunState(
        Start.RESUMED,
        coverage=record.coverage,
        late=record.late,
        settled=record.settled,
        previous_users=previous,
        reported=b"" if record.reported_chunks else None,  # the store fills in what was reported
    )
    taken = replace(
        record, owner=request.owner, lease_until=request.now + request.lease_seconds, finished=False
    )
    return state, taken, coverage


def _new_record(request: RunRequest, state: RunState) -> RunRecord:
    return RunRecord(
        owner=request.owner,
        lease_until=request.now + request.lease_seconds,
        finished=False,
        window=request.window,
        coverage=state.coverage,
        late=state.late,
        settled={},
        expire_at=request.now + request.keep_seconds,
    )


def released(coverage: Coverage, record: RunRecord) -> Coverage:
    """The coverage with a message's claim given back, so the next run catches its time up, and
    the time it was to search for late arrivals handed on (deferred) to the next run."""
    given_back = replace(
        coverage,
        spans=subtract(coverage.spans, record.coverage),
        deferred=merge([*coverage.deferred, *record.late]),
    )
    return closed(given_back, record.coverage)


def closed(coverage: Coverage, covered: tuple[Span, ...]) -> Coverage:
    """The coverage with a finished message's time no longer open (late search may look there)."""
    return replace(coverage, open=tuple(span for span in coverage.open if span not in covered))


def counted(coverage: Coverage, window: Span, users: int) -> Coverage:
    """The coverage with a window's user count stored (the most recent MAX_COUNTS kept)."""
    return replace(coverage, counts=_recent({**coverage.counts, count_key(window): users}))


def _recent(counts: Mapping[str, int]) -> Mapping[str, int]:
    """The most recent MAX_COUNTS window counts (by the window's end)."""
    if len(counts) <= MAX_COUNTS:
        return counts
    by_end = sorted(counts, key=lambda key: int(key.rsplit("_", 1)[1]))
    return {key: counts[key] for key in by_end[-MAX_COUNTS:]}


def marked(record: RunRecord, marks: Iterable[Mark]) -> RunRecord:
    """The record with recipients marked (a None status clears a mark)."""
    settled = {name: dict(keys) for name, keys in record.settled.items()}
    for mark in marks:
        if mark.status is None:
            settled.get(mark.channel, {}).pop(mark.recipient, None)
        else:
            settled.setdefault(mark.channel, {})[mark.recipient] = mark.status
    return replace(record, settled=settled)


def finished(record: RunRecord) -> RunRecord:
    """The record with its lease let go."""
    return replace(record, finished=True, lease_until=0)
