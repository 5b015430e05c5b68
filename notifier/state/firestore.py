"""The `firestore` backend: the history in Firestore (Native mode), through its REST API.

REST on the instance's transport, with its Google token, rather than google-cloud-firestore: the
gRPC client adds about 0.35 s and 21 MiB to a cold start. Documents (docs/run-history.md):

    coverage/history       claimed, open and late-searched spans, genesis, held tallies, window counts
    runs/{message}         lease, closed, window, coverage, late spans, recipients' notes (hashed
                           keys, in the field `settled`), the held counts it took, expire_at
    reported/{message}-N   hashed ids of the users a message reported, their latest created time, expire_at

Round trips: `begin` is one transaction (a read and a commit, two for a resumed message that
reported users), the late search's reported ids one query, each `note` one commit, and `end` one
commit (a transaction of two when the time is given back).
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from notifier.errors import ConfigError, InProgress, SourceUnavailable, StateRejected
from notifier.replies import error_detail, is_transient_status
from notifier.retry import Retrier
from notifier.span import Span
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
    split_keys,
)
from notifier.state.rules import (
    LEGACY,
    Coverage,
    RunRecord,
    claim,
    count_key,
    released,
    reported_expiry,
)
from notifier.transport import Answer, NoCredentials, Request, Unanswered

SERVICE = "Firestore"
PRODUCTION_URL = "https://firestore.googleapis.com/v1"
IDS_PER_DOCUMENT = 60_000  # 8 bytes each, base64 in JSON: about 640 KB, under the 1 MiB document limit
T = TypeVar("T")
Found = dict[str, dict[str, Any] | None]  # document name -> fields, None when missing
_HINT = "grant the function's service account roles/datastore.user on the database (docs/deploy.md)"
# The history's writes may run this far past the run's budget, so a run that used it all is recorded.
STATE_RESERVE_SECONDS = 5.0
_NO_CREDENTIALS = (
    "STATE_STORE=firestore needs Google credentials: deployed functions have them; a local run "
    "needs `gcloud auth application-default login`, FIRESTORE_EMULATOR_HOST, or STATE_STORE=memory"
)


class FirestoreStore:
    """The history in one Firestore database; `retrier` bounds every call by the run's budget;
    `google`: add the instance's Google token (not for the emulator)."""

    def __init__(self, *, base_url: str, project: str, database: str, google: bool, retrier: Retrier):
        self._root = f"projects/{project}/databases/{database}"
        self._url = f"{base_url.rstrip('/')}/{self._root}/documents"
        self._database = database
        self._google = google
        self._retrier = retrier
        self.round_trips = 0  # requests made, for the run summary and the benchmark
        self.waited = 0.0  # seconds those requests took, likewise

    # -- the StateStore interface ---------------------------------------------------------------
    def begin(self, request: RunRequest) -> RunState:
        """Claim or resume the message in one transaction; see StateStore."""
        key = _message_id(request.message)
        names = [self._name("runs", key), self._name("coverage", "history")]
        if request.intent is Intent.DRY_RUN:
            found, _ = self._batch_get(names, transaction=False)
            state, _record, _coverage = claim(
                key, _record_from(found[names[0]]), _coverage_from(found[names[1]]), request
            )
            return state

        chunks = 0

        def decide(found: Found) -> tuple[RunState, list[dict[str, Any]]]:
            nonlocal chunks
            before_record, before_coverage = _record_from(found[names[0]]), _coverage_from(found[names[1]])
            chunks = before_record.reported_chunks if before_record else 0
            state, record, coverage = claim(key, before_record, before_coverage, request)
            writes = []
            if record is not None and record != before_record:
                writes.append({"update": {"name": names[0], "fields": _record_fields(record)}})
            if coverage != before_coverage:
                writes.append({"update": {"name": names[1], "fields": _coverage_fields(coverage)}})
            return state, writes

        state = self._transaction(names, decide)
        if state.reported is not None and chunks:
            state = replace(state, reported=self._own_reported(_message_id(request.message), chunks))
        return state

    def reported(self, since: int, *, excluding: str) -> frozenset[bytes]:
        """Hashed ids other messages reported, created at or after `since` (one query)."""
        query = {
            "structuredQuery": {
                "from": [{"collectionId": "reported"}],
                "where": {
                    "fieldFilter": {
                        "field": {"fieldPath": "max_created"},
                        "op": "GREATER_THAN_OR_EQUAL",
                        "value": {"integerValue": str(since)},
                    }
                },
            }
        }
        rows = self._call("POST", f"{self._url}:runQuery", query, name="Firestore reported users")
        ids: set[bytes] = set()
        excluded = _message_id(excluding)
        for row in rows if isinstance(rows, list) else []:
            fields = (row.get("document") or {}).get("fields") if isinstance(row, dict) else None
            if not isinstance(fields, dict) or _string(fields.get("message")) == excluded:
                continue
            ids |= split_keys(base64.b64decode(_bytes(fields.get("ids"))))
        return frozenset(ids)

    def note(self, request: RunRequest, marks: Iterable[Mark], *, reported: ReportedUsers | None) -> None:
        """One commit of notes (retried: every write in it is idempotent); see StateStore."""
        self._commit(self._run_writes(request, marks, reported, {}))

    def end(self, request: RunRequest, ending: Ending) -> None:
        """Let go of the message in one commit, or give its time back in one transaction."""
        if ending.how is End.RELEASE:
            self._release(self._name("runs", _message_id(request.message)))
            return
        let_go: dict[str, Any] = {"lease_until": _int(0)}
        if ending.how is End.CLOSE:
            let_go["closed"] = {"booleanValue": True}
        writes = self._run_writes(request, ending.marks, ending.reported, let_go)
        if ending.how is End.CLOSE:
            writes.append(self._coverage_closing(request, ending))
        self._commit(writes)

    def _run_writes(
        self,
        request: RunRequest,
        marks: Iterable[Mark],
        reported: ReportedUsers | None,
        fields: dict[str, Any],
    ) -> list[dict[str, Any]]:
        """The writes to a message's document (and its reported users) for notes and `fields`."""
        message = _message_id(request.message)
        paths = list(fields)
        notes: dict[str, dict[str, Any]] = {}
        for mark in marks:
            # A path with no value in `fields` deletes the field: how a SENDING note is cleared.
            # The field is `settled`, as records written before notes had their own name spell it.
            paths.append(f"settled.{mark.channel}.{mark.recipient}")
            if mark.note is not None:
                notes.setdefault(mark.channel, {})[mark.recipient] = _str(mark.note.value)
        if notes:
            fields["settled"] = _map({channel: _map(keys) for channel, keys in notes.items()})
        writes: list[dict[str, Any]] = []
        if reported is not None:
            chunks = self._reported_writes(request, message, reported)
            writes.extend(chunks)
            fields["reported_chunks"] = _int(len(chunks))
            paths.append("reported_chunks")
        if paths:
            run = self._name("runs", message)
            # Only onto a record that exists: after a release whose answer was lost, a masked update
            # would make a new document with no window, claim or expiry that a redelivery resumes.
            mask = {"fieldPaths": paths}
            writes.insert(
                0,
                {
                    "update": {"name": run, "fields": fields},
                    "updateMask": mask,
                    "currentDocument": {"exists": True},
                },
            )
        return writes

    def _reported_writes(
        self, request: RunRequest, message: str, reported: ReportedUsers
    ) -> list[dict[str, Any]]:
        expire_at = reported_expiry(request, reported)
        chunk_bytes = IDS_PER_DOCUMENT * 8
        writes = []
        for index in range(0, max(len(reported.keys), 1), chunk_bytes):
            fields = {
                "message": _str(message),
                "max_created": _int(reported.max_created),
                "ids": {"bytesValue": base64.b64encode(reported.keys[index : index + chunk_bytes]).decode()},
                "expire_at": _timestamp(expire_at),
            }
            name = self._name("reported", f"{message}-{index // chunk_bytes}")
            writes.append({"update": {"name": name, "fields": fields}})
        return writes

    def _coverage_closing(self, request: RunRequest, ending: Ending) -> dict[str, Any]:
        """The coverage document's part of closing: the window's count, its time no longer open.

        No read is needed: the message's open claim is a field of its own, which the mask deletes."""
        fields: dict[str, Any] = {}
        paths: list[str] = [f"open.{_message_id(request.message)}"]
        if not request.scheduled:  # a backfill claimed no time: it has no count and holds no tally
            return self._coverage_update(fields, paths)
        if ending.window_users is not None:
            key = count_key(request.window)
            fields["counts"] = _map({key: _int(ending.window_users)})
            paths.append(f"counts.{key}")
        held = dict(ending.held_returned)
        if ending.held_back is not None:
            held[_message_id(request.message)] = Held(since=request.window.start, users=ending.held_back)
        if held:
            fields["held"] = _held(held)
            paths += [f"held.{key}" for key in held]
        return self._coverage_update(fields, paths)

    def _coverage_update(self, fields: dict[str, Any], paths: list[str]) -> dict[str, Any]:
        """A write of the coverage document's `paths` (a path `fields` has no value for is deleted)."""
        return {
            "update": {"name": self._name("coverage", "history"), "fields": fields},
            "updateMask": {"fieldPaths": paths},
        }

    def _own_reported(self, message: str, chunks: int) -> bytes:
        """The users a message reported, from its reported documents (a resumed delivery's one extra read)."""
        names = [self._name("reported", f"{message}-{n}") for n in range(chunks)]
        found, _ = self._batch_get(names, transaction=False)
        return b"".join(base64.b64decode(_bytes((found[name] or {}).get("ids"))) for name in names)

    def check(self) -> None:
        """Read the coverage document and write a check document (which expires in a day)."""
        self._batch_get([self._name("coverage", "history")], transaction=False)
        now = int(datetime.now(UTC).timestamp())
        fields = {"checked_at": _int(now), "expire_at": _timestamp(now + 86400)}
        self._commit([{"update": {"name": self._name("runs", "check"), "fields": fields}}])

    # -- transactions and calls -----------------------------------------------------------------
    def _release(self, run: str) -> None:
        names = [run, self._name("coverage", "history")]

        def decide(found: Found) -> tuple[None, list[dict[str, Any]]]:
            record = _record_from(found[run])
            if record is None:
                return None, []
            message = run.rsplit("/", 1)[1]
            coverage = released(message, _coverage_from(found[names[1]]), record)
            # Nobody heard of its users: they must not count as reported when its time is caught up.
            reported = [
                {"delete": self._name("reported", f"{message}-{n}")} for n in range(record.reported_chunks)
            ]
            return None, [
                {"update": {"name": names[1], "fields": _coverage_fields(coverage)}},
                {"delete": run},
                *reported,
            ]

        self._transaction(names, decide)

    def _transaction(self, names: list[str], decide: Callable[[Found], tuple[T, list[dict[str, Any]]]]) -> T:
        """Read `names` in a transaction, let `decide` say what to write, commit; retried as a whole.

        A lost race (ABORTED) or a lost answer starts again from the reads, which see the commit if it
        did land (the record then names this delivery as its owner, so it resumes).
        """

        def attempt() -> T | InProgress:
            found, transaction = self._batch_get(names, transaction=True, retry=False)
            try:
                result, writes = decide(found)
                self._commit(writes, transaction)
            except InProgress as error:
                self._rollback(transaction)
                return error  # handed out of the retrier: waiting for the other delivery is Pub/Sub's job
            except BaseException:
                # An unfinished transaction keeps its documents locked for about a minute, which would
                # fail this retry and every other instance's claims: let go of it now.
                self._rollback(transaction)
                raise
            return result

        outcome = self._retrier.call(attempt, name="Firestore transaction")
        if isinstance(outcome, InProgress):
            raise outcome
        return outcome

    def _batch_get(
        self, names: list[str], *, transaction: bool, retry: bool = True
    ) -> tuple[Found, str | None]:
        body: dict[str, Any] = {"documents": names}
        if transaction:
            body["newTransaction"] = {"readWrite": {}}
        rows = self._call("POST", f"{self._url}:batchGet", body, name="Firestore read", retry=retry)
        found: Found = dict.fromkeys(names)
        token: str | None = None
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict):
                continue
            token = row.get("transaction") or token
            document = row.get("found")
            if isinstance(document, dict) and document.get("name") in found:
                found[document["name"]] = document.get("fields") or {}
        if transaction and not token:
            raise SourceUnavailable(f"{SERVICE} began no transaction", service=SERVICE)
        return found, token

    def _commit(self, writes: list[dict[str, Any]], transaction: str | None = None) -> None:
        """Commit `writes`; outside a transaction they are idempotent, so the call itself is retried."""
        body: dict[str, Any] = {"writes": writes}
        if transaction:
            body["transaction"] = transaction
        self._call("POST", f"{self._url}:commit", body, name="Firestore commit", retry=transaction is None)

    def _rollback(self, transaction: str | None) -> None:
        if transaction:
            # Best effort: an abandoned transaction expires by itself; this only frees its locks sooner.
            try:
                self._call(
                    "POST",
                    f"{self._url}:rollback",
                    {"transaction": transaction},
                    name="Firestore rollback",
                    retry=False,
                )
            except (SourceUnavailable, StateRejected, ConfigError):
                return

    def _call(self, method: str, url: str, body: Mapping[str, Any], *, name: str, retry: bool = True) -> Any:
        request = Request.json(method, url, body, google=self._google)

        def attempt() -> Any:
            self.round_trips += 1
            started = time.perf_counter()
            try:
                answer = self._retrier.send(request, reserve=STATE_RESERVE_SECONDS)
            except NoCredentials:
                raise ConfigError(_NO_CREDENTIALS, variable="STATE_STORE") from None
            except Unanswered as error:
                raise SourceUnavailable(f"{SERVICE} {error.reason}", service=SERVICE) from None
            finally:
                # Observed, not decided on: the real clock, for the summary's state_ms.
                self.waited += time.perf_counter() - started
            return _answer(answer, self._database)

        if not retry:
            return attempt()
        return self._retrier.call(attempt, name=name)

    def _name(self, collection: str, document: str) -> str:
        return f"{self._root}/documents/{collection}/{document}"


def open_firestore(
    *, database: str, retrier: Retrier, environ: Mapping[str, str] = os.environ
) -> FirestoreStore:
    """The store for this run: the emulator's (FIRESTORE_EMULATOR_HOST), or Google's with the token."""
    emulator = environ.get("FIRESTORE_EMULATOR_HOST", "").strip()
    project = environ.get("GOOGLE_CLOUD_PROJECT", "").strip() or None
    if emulator:
        base_url, project = f"http://{emulator}/v1", project or "demo-notifierator"
    else:
        base_url = PRODUCTION_URL
        try:
            project = project or retrier.transport.google_project()
        except NoCredentials:
            raise ConfigError(_NO_CREDENTIALS, variable="STATE_STORE") from None
    if not project:
        raise ConfigError(
            "Firestore needs a project: none in the default credentials; set GOOGLE_CLOUD_PROJECT",
            variable="STATE_STORE",
        )
    return FirestoreStore(
        base_url=base_url, project=project, database=database, google=not emulator, retrier=retrier
    )


def _answer(answer: Answer, database: str) -> Any:
    """What Firestore's answer means: its JSON, or the error its status says (409 is a lost race)."""
    status = answer.status
    if answer.accepted:
        return _json(answer)
    detail = error_detail(answer.body)
    if is_transient_status(status) or status == 409:  # 409: ABORTED, a transaction lost a race
        raise SourceUnavailable(f"{SERVICE} answered {status}: {detail}", service=SERVICE, status=status)
    if status in (401, 403):
        raise ConfigError(f"{SERVICE} refused access ({status}); {_HINT}", variable="STATE_STORE")
    if status == 404 and "database" in detail.lower():  # "The database (default) does not exist ..."
        raise ConfigError(
            f"the Firestore database {database!r} was not found (create it: docs/deploy.md)",
            variable="FIRESTORE_DATABASE",
        )
    if status == 404:  # a write with the precondition that its record exists: it was deleted
        raise StateRejected(f"{SERVICE}: the message's record is gone ({detail})", status=status)
    raise StateRejected(f"{SERVICE} refused the request with {status}: {detail}", status=status)


def _json(answer: Answer) -> Any:
    try:
        if answer.complete:
            return answer.json()
    except ValueError:
        pass
    raise SourceUnavailable(
        f"{SERVICE} answered {answer.status} with a body cut short or not JSON", service=SERVICE
    )


# -- documents <-> records ----------------------------------------------------------------------
def _message_id(message: str) -> str:
    # Document ids cannot hold "/" and a message id comes from outside: a hash is always safe.
    return "m" + hashlib.sha256(message.encode("utf-8", "replace")).hexdigest()[:32]


def _record_fields(record: RunRecord) -> dict[str, Any]:
    return {
        "owner": _str(record.owner),
        "lease_until": _int(record.lease_until),
        "closed": {"booleanValue": record.closed},
        "claims_time": {"booleanValue": record.claims_time},
        "window": _span(record.window),
        "coverage": _spans(record.coverage),
        "late": _spans(record.late),
        "settled": _map(
            {
                channel: _map({key: _str(note.value) for key, note in keys.items()})
                for channel, keys in record.notes.items()
            }
        ),
        "expire_at": _timestamp(record.expire_at),
        "reported_chunks": _int(record.reported_chunks),
        "held": _held(record.held),
    }


def _record_from(fields: Mapping[str, Any] | None) -> RunRecord | None:
    if fields is None:
        return None
    notes: dict[str, dict[str, Note]] = {}
    for channel, keys in _fields_of(fields.get("settled")).items():
        for key, value in _fields_of(keys).items():
            try:
                notes.setdefault(channel, {})[key] = Note(_string(value))
            except ValueError:
                continue
    window = _span_from(fields.get("window")) or Span(0, 1)
    return RunRecord(
        owner=_string(fields.get("owner")),
        lease_until=_integer(fields.get("lease_until")),
        closed=_boolean(fields.get("closed"), missing=False),
        claims_time=_boolean(fields.get("claims_time"), missing=True),
        window=window,
        coverage=_spans_from(fields.get("coverage")),
        late=_spans_from(fields.get("late")),
        notes=notes,
        expire_at=_unix(fields.get("expire_at")),
        reported_chunks=_integer(fields.get("reported_chunks")),
        held=_held_from(fields.get("held")),
    )


def _coverage_fields(coverage: Coverage) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "spans": _spans(coverage.spans),
        "counts": _map({key: _int(value) for key, value in coverage.counts.items()}),
        "open": _map({key: _open_claim(claim) for key, claim in coverage.open.items()}),
        "searched": _spans(coverage.searched),
        "owed": _spans(coverage.owed),
        "held": _held(coverage.held),
    }
    if coverage.genesis is not None:
        fields["genesis"] = _int(coverage.genesis)
    return fields


def _coverage_from(fields: Mapping[str, Any] | None) -> Coverage:
    if not fields:
        return Coverage()
    counts = {key: _integer(value) for key, value in _fields_of(fields.get("counts")).items()}
    genesis = fields.get("genesis")
    return Coverage(
        spans=_spans_from(fields.get("spans")),
        genesis=_integer(genesis) if genesis else None,
        counts=counts,
        open=_open_claims_from(fields.get("open")),
        searched=_spans_from(fields.get("searched")),
        owed=_spans_from(fields.get("owed")),
        held=_held_from(fields.get("held")),
    )


def _open_claim(claim: OpenClaim) -> dict[str, Any]:
    return _map(
        {
            "message": _str(claim.message),
            "published": _int(claim.published),
            "window": _span(claim.window),
            "spans": _spans(claim.spans),
            "scheduled": {"booleanValue": claim.scheduled},
            "channels": {"arrayValue": {"values": [_str(channel) for channel in claim.channels]}},
        }
    )


def _open_claims_from(value: object) -> dict[str, OpenClaim]:
    if isinstance(value, dict) and "arrayValue" in value:  # bare spans, as kept before claims had keys
        return {
            f"{LEGACY}{span.start}-{span.end}": OpenClaim("", span.end, span, (span,))
            for span in _spans_from(value)
        }
    return {key: _open_claim_from(claim) for key, claim in _fields_of(value).items()}


def _open_claim_from(value: object) -> OpenClaim:
    fields = _fields_of(value)
    return OpenClaim(
        message=_string(fields.get("message")),
        published=_integer(fields.get("published")),
        window=_span_from(fields.get("window")) or Span(0, 1),
        spans=_spans_from(fields.get("spans")),
        scheduled=_boolean(fields.get("scheduled"), missing=True),
        channels=tuple(_string(value) for value in _values_of(fields.get("channels"))),
    )


def _held(held: Mapping[str, Held]) -> dict[str, Any]:
    return _map({key: _map({"since": _int(h.since), "users": _int(h.users)}) for key, h in held.items()})


def _held_from(value: object) -> dict[str, Held]:
    tallies = {key: _fields_of(tally) for key, tally in _fields_of(value).items()}
    return {
        key: Held(since=_integer(tally.get("since")), users=_integer(tally.get("users")))
        for key, tally in tallies.items()
    }


def _str(value: str) -> dict[str, Any]:
    return {"stringValue": value}


def _int(value: int) -> dict[str, Any]:
    return {"integerValue": str(value)}


def _map(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {"mapValue": {"fields": dict(fields)}}


def _timestamp(unix: int) -> dict[str, Any]:
    return {"timestampValue": datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


def _span(span: Span) -> dict[str, Any]:
    return _map({"start": _int(span.start), "end": _int(span.end)})


def _spans(spans: tuple[Span, ...]) -> dict[str, Any]:
    return {"arrayValue": {"values": [_span(span) for span in spans]}}


def _fields_of(value: object) -> dict[str, Any]:
    if isinstance(value, dict):
        fields = (value.get("mapValue") or {}).get("fields")
        return fields if isinstance(fields, dict) else {}
    return {}


def _string(value: object) -> str:
    return str(value.get("stringValue", "")) if isinstance(value, dict) else ""


def _boolean(value: object, *, missing: bool) -> bool:
    return bool(value.get("booleanValue", missing)) if isinstance(value, dict) else missing


def _bytes(value: object) -> str:
    return str(value.get("bytesValue", "")) if isinstance(value, dict) else ""


def _integer(value: object) -> int:
    if isinstance(value, dict):
        try:
            return int(value.get("integerValue", 0))
        except (TypeError, ValueError):
            return 0
    return 0


def _unix(value: object) -> int:
    text = str(value.get("timestampValue", "")) if isinstance(value, dict) else ""
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def _span_from(value: object) -> Span | None:
    fields = _fields_of(value)
    start, end = _integer(fields.get("start")), _integer(fields.get("end"))
    return Span(start, end) if end > start else None


def _spans_from(value: object) -> tuple[Span, ...]:
    spans = [_span_from(item) for item in _values_of(value)]
    return tuple(span for span in spans if span is not None)


def _values_of(value: object) -> list[object]:
    values = ((value or {}).get("arrayValue") or {}).get("values") if isinstance(value, dict) else None
    return values if isinstance(values, list) else []
