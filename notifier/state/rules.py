"""The history's rules, with no I/O: both backends read their documents, call these, and write back.

`claim` decides what a delivery covers and who it still owes; `noted` and `ended` are the documents
after a delivery writes notes or lets go of its message. The coverage document holds the union of
claimed time (coalesced spans), the messages still open and the time each claimed (`open`: not
searched for late arrivals, since their users are not final yet; a later run ends a message whose
deliveries stopped for good with it still open), the earliest time ever claimed (`genesis`: time
before the first digest was never owed to anyone), the time runs took to search again for late
arrivals (`searched`), time given back for the next run to catch up (`owed`), the tallies quiet runs
held back (`held`), and recent window counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from notifier.errors import InProgress
from notifier.span import Span, intersect, merge, subtract
from notifier.state import (
    End,
    Ending,
    Held,
    Intent,
    Mark,
    Note,
    OpenClaim,
    ReportedUsers,
    RunRequest,
    RunState,
    Start,
)

# Open time as the history kept it before each message's claim had its own entry (bare spans): a
# resumed message adopts its spans; spans nobody adopts by the time a record would expire are given up.
LEGACY = "legacy-"
MAX_COUNTS = 400  # window counts kept for the trend: weeks of hourly runs
REPORTED_MARGIN_SECONDS = 86400  # reported ids outlive every search that could find their users by this
FORGET_AFTER_SECONDS = 70 * 24 * 3600  # with room to spare past the longest window and oldest message


@dataclass(frozen=True)
class Coverage:
    """The coverage document: claimed time, the first instant ever claimed, recent window counts."""

    spans: tuple[Span, ...] = ()
    genesis: int | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    open: Mapping[str, OpenClaim] = field(default_factory=dict)  # messages not closed yet, by key
    searched: tuple[Span, ...] = ()  # claimed time a run took to search again for late arrivals
    held: Mapping[str, Held] = field(default_factory=dict)  # quiet runs' tallies, by message, not told yet
    owed: tuple[Span, ...] = ()  # time given back (nobody was told) that no run has caught up yet


@dataclass(frozen=True)
class RunRecord:
    """A message's document: its lease, what it covers, and every recipient it noted."""

    owner: str
    lease_until: int  # 0: nobody holds it
    closed: bool  # ended for good: a redelivery does nothing
    claims_time: bool  # a scheduled message, whose coverage is in the coverage document (not a backfill)
    window: Span
    coverage: tuple[Span, ...]
    late: tuple[Span, ...]
    notes: Mapping[str, Mapping[str, Note]]
    expire_at: int
    reported_chunks: int = 0  # documents holding the users this message reported (0: none yet)
    held: Mapping[str, Held] = field(default_factory=dict)  # quiet runs' tallies it took to tell


def reported_expiry(request: RunRequest, reported: ReportedUsers) -> int:
    """When a message's reported ids may go: once no later run's catch-up or look-back reaches them,
    and not before its record could expire: a message ended late (by a later run, past
    MAX_MESSAGE_AGE_MINUTES) opens its time to the late search only then."""
    reach = max(reported.max_created + request.max_catch_up, request.now + request.keep_seconds)
    return reach + request.late_arrival + REPORTED_MARGIN_SECONDS


def count_key(window: Span) -> str:
    """The key of a window's user count."""
    return f"w{window.start}_{window.end}"


def previous_count(coverage: Coverage, window: Span) -> int | None:
    """The user count of the window of the same length just before `window`: the trend."""
    return coverage.counts.get(count_key(Span(window.start - window.seconds, window.start)))


def claim(
    key: str, record: RunRecord | None, coverage: Coverage, request: RunRequest
) -> tuple[RunState, RunRecord | None, Coverage]:
    """What this delivery covers, the message's record (stored as `key`) after it, and the coverage
    after it.

    Raises InProgress when another delivery of the same message holds a live lease.
    """
    if record is not None:
        return _resume(key, record, coverage, request)
    previous = previous_count(coverage, request.window)
    if request.intent is Intent.GIVE_UP:
        if key in coverage.open:  # its record expired while it was open
            return RunState(Start.LAPSED), None, _told_unknown(coverage, [key])
        return RunState(Start.ABSENT), None, coverage
    if not request.scheduled:
        # A backfill or a hand-picked window reports what it asks for and claims no time.
        state = RunState(Start.FRESH, coverage=(request.window,), previous_users=previous)
        return state, _new_record(request, state), _opened(coverage, key, request, ())
    if not subtract([request.window], coverage.spans):
        return RunState(Start.ALREADY_COVERED, previous_users=previous), None, coverage
    coverage, abandoned, lapsed, beyond_reach = _what_was_left(coverage, request)
    covered = _new_time(coverage, request)
    late = _late_search(coverage, request)
    held = coverage.held if request.takes_held else {}
    state = RunState(
        Start.FRESH,
        coverage=covered,
        late=late,
        previous_users=previous,
        held=held,
        abandoned=abandoned,
        lapsed=lapsed,
        beyond_reach=beyond_reach,
    )
    after = _claimed(key, coverage, request, covered, late)
    # What was owed up to its window's end is claimed now, or out of reach (the run says so).
    owed = subtract(coverage.owed, [Span(0, request.window.end)])
    return state, _new_record(request, state), replace(after, held={} if held else after.held, owed=owed)


def _new_time(coverage: Coverage, request: RunRequest) -> tuple[Span, ...]:
    """The window and the unclaimed time before it, back to the catch-up horizon (never before the
    first digest: the first one covers its own window, not a week of history)."""
    return subtract([Span(_reach_back(coverage, request), request.window.end)], coverage.spans)


def _reach_back(coverage: Coverage, request: RunRequest) -> int:
    """How far back a scheduled run covers unclaimed time: MAX_CATCH_UP_MINUTES, not before genesis."""
    window = request.window
    if coverage.genesis is None:
        return window.start
    return min(window.start, max(coverage.genesis, window.end - request.max_catch_up))


def _late_search(coverage: Coverage, request: RunRequest) -> tuple[Span, ...]:
    """Time to search again for late arrivals: every instant once, by the first run after all of its
    late arrivals are in.

    A profile reaches Mixpanel at most `late_arrival` after it was created, so a search of an
    instant run more than that after it finds every profile its digest missed. A run takes all
    closed time (the time of digests that ended: one still open reports its own users) earlier
    than that frontier that no run took before; taking it is part of the claim, so no two runs
    ever search the same instant, however many run at once.
    """
    if not request.late_arrival:
        return ()
    # Never further back than the reported ids are kept (reported_expiry): after a pause of days the
    # hour before it would otherwise be searched once the ids that protect its users are gone.
    oldest = max(coverage.genesis or 0, request.now - request.max_catch_up - REPORTED_MARGIN_SECONDS)
    if oldest >= request.now - request.late_arrival:
        return ()
    frontier = Span(oldest, request.now - request.late_arrival)
    still_open = [span for open_claim in coverage.open.values() for span in open_claim.spans]
    unsearched = subtract(subtract(coverage.spans, still_open), coverage.searched)
    return intersect(unsearched, [frontier])


def _claimed(
    key: str, coverage: Coverage, request: RunRequest, covered: tuple[Span, ...], late: tuple[Span, ...]
) -> Coverage:
    """The coverage document once this delivery's new time is claimed (and kept small)."""
    window = request.window
    genesis = window.start if coverage.genesis is None else min(coverage.genesis, window.start)
    horizon = request.now - request.max_catch_up - request.late_arrival - FORGET_AFTER_SECONDS

    def recent(spans: Iterable[Span]) -> tuple[Span, ...]:
        return tuple(span for span in spans if span.end > horizon)

    # Firestore's closing adds a window's count without reading the document: the claim, which reads
    # and rewrites it anyway, is where the counts are kept to the most recent MAX_COUNTS.
    return replace(
        coverage,
        spans=recent(merge([*coverage.spans, *covered])),
        genesis=genesis,
        open=_opened(coverage, key, request, covered).open,
        searched=recent(merge([*coverage.searched, *late])),
        counts=_recent(coverage.counts),
    )


def _what_was_left(
    coverage: Coverage, request: RunRequest
) -> tuple[Coverage, tuple[OpenClaim, ...], tuple[OpenClaim, ...], tuple[Span, ...]]:
    """What earlier deliveries left for a claiming run to end or name, and the coverage after it:
    open messages no delivery can run any more (Pub/Sub stopped redelivering them); legacy open time
    past that (its record cannot be found from it, so it is given up); time owed from before this
    run's catch-up reaches. A dry run writes nothing, so it ends and names nothing."""
    if request.intent is not Intent.RUN:
        return coverage, (), (), ()
    gone = {
        key: claim for key, claim in coverage.open.items() if claim.published + request.runs_for < request.now
    }
    legacy = [key for key in gone if key.startswith(LEGACY)]
    abandoned = tuple(claim for key, claim in gone.items() if key not in legacy)
    beyond_reach = intersect(coverage.owed, [Span(0, _reach_back(coverage, request))])
    return _told_unknown(coverage, legacy), abandoned, tuple(gone[key] for key in legacy), beyond_reach


def _told_unknown(coverage: Coverage, keys: Iterable[str]) -> Coverage:
    """The coverage with messages `keys` given up while who they told is unknown (their records, and
    maybe the users they reported, are gone): no longer open, their time never searched again."""
    keys = list(keys)
    spans = [span for key in keys for span in coverage.open[key].spans]
    return replace(
        coverage,
        open={key: claim for key, claim in coverage.open.items() if key not in keys},
        searched=merge([*coverage.searched, *spans]),
    )


def _adopted(key: str, record: RunRecord, coverage: Coverage, request: RunRequest) -> Coverage:
    """The coverage with the legacy open spans inside this message's claim made its own entry, so
    that its ending finds them."""
    inside = [
        legacy
        for legacy, claim in coverage.open.items()
        if legacy.startswith(LEGACY) and not subtract(claim.spans, record.coverage)
    ]
    if not inside or not record.claims_time:
        return coverage
    rest = {other: claim for other, claim in coverage.open.items() if other not in inside}
    return _opened(replace(coverage, open=rest), key, request, record.coverage)


def _resume(
    key: str, record: RunRecord, coverage: Coverage, request: RunRequest
) -> tuple[RunState, RunRecord | None, Coverage]:
    if record.closed:
        return RunState(Start.ENDED, coverage=record.coverage, notes=record.notes), None, coverage
    if record.owner != request.owner and record.lease_until > request.now:
        raise InProgress(
            "another delivery of this message is running; Pub/Sub will deliver it again after it ends"
        )
    state = RunState(
        Start.RESUMED,
        coverage=record.coverage,
        late=record.late,
        notes=record.notes,
        previous_users=previous_count(coverage, record.window),
        reported=b"" if record.reported_chunks else None,  # the store fills in what was reported
        held=record.held,
    )
    taken = replace(record, owner=request.owner, lease_until=request.now + request.lease_seconds)
    return state, taken, _adopted(key, record, coverage, request)


def _new_record(request: RunRequest, state: RunState) -> RunRecord:
    return RunRecord(
        owner=request.owner,
        lease_until=request.now + request.lease_seconds,
        closed=False,
        claims_time=request.scheduled,
        window=request.window,
        coverage=state.coverage,
        late=state.late,
        notes={},
        expire_at=request.now + request.keep_seconds,
        held=state.held,
    )


def noted(record: RunRecord, marks: Iterable[Mark]) -> RunRecord:
    """The record with recipients' notes written (a None note clears one)."""
    notes = {channel: dict(keys) for channel, keys in record.notes.items()}
    for mark in marks:
        if mark.note is None:
            notes.get(mark.channel, {}).pop(mark.recipient, None)
        else:
            notes.setdefault(mark.channel, {})[mark.recipient] = mark.note
    return replace(record, notes={channel: keys for channel, keys in notes.items() if keys})


def ended(
    key: str, record: RunRecord, coverage: Coverage, ending: Ending
) -> tuple[RunRecord | None, Coverage]:
    """The record (None: deleted) and the coverage once a delivery lets go of message `key`."""
    if ending.how is End.RELEASE:
        return None, released(key, coverage, record)
    record = replace(noted(record, ending.marks), lease_until=0)
    if ending.how is End.KEEP_OPEN:
        return record, coverage
    if not record.claims_time:
        return replace(record, closed=True), replace(coverage, open=_without(coverage.open, key))
    held = {**coverage.held, **ending.held_returned}
    if ending.held_back is not None:
        held[key] = Held(since=record.window.start, users=ending.held_back)
    closed = replace(coverage, held=held, open=_without(coverage.open, key))
    if ending.window_users is not None:
        closed = replace(
            closed, counts=_recent({**closed.counts, count_key(record.window): ending.window_users})
        )
    return replace(record, closed=True), closed


def released(key: str, coverage: Coverage, record: RunRecord) -> Coverage:
    """The coverage with message `key`'s claim given back, so the next run catches its time up, and
    the time it took to search for late arrivals handed on to the next run."""
    if not record.claims_time:  # a backfill claimed nothing, so it has nothing to give back
        return replace(coverage, open=_without(coverage.open, key))
    return replace(
        coverage,
        held={**coverage.held, **record.held},  # nobody was told: the tallies it took go back
        spans=subtract(coverage.spans, record.coverage),
        owed=merge([*coverage.owed, *record.coverage]),
        open=_without(coverage.open, key),
        searched=subtract(coverage.searched, record.late),
    )


def _opened(coverage: Coverage, key: str, request: RunRequest, spans: tuple[Span, ...]) -> Coverage:
    """The coverage with message `key` open, holding `spans`."""
    claim = OpenClaim(
        request.message, request.published, request.window, spans, request.scheduled, request.channels
    )
    return replace(coverage, open={**coverage.open, key: claim})


def _without(claims: Mapping[str, OpenClaim], key: str) -> dict[str, OpenClaim]:
    return {other: open_claim for other, open_claim in claims.items() if other != key}


def _recent(counts: Mapping[str, int]) -> Mapping[str, int]:
    """The most recent MAX_COUNTS window counts (by the window's end)."""
    if len(counts) <= MAX_COUNTS:
        return counts
    by_end = sorted(counts, key=lambda key: int(key.rsplit("_", 1)[1]))
    return {key: counts[key] for key in by_end[-MAX_COUNTS:]}
