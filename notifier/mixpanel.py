"""The Mixpanel Engage API client: the profiles created in a set of time ranges, page by page.

``POST {host}/api/query/engage?project_id=ID`` with a form body; later pages are fetched with the
first response's ``session_id`` until one comes back empty or ``total`` profiles have arrived.
Text from Mixpanel is made valid and safe once, here, where it enters.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple

from notifier.answers import error_detail, is_transient_status
from notifier.errors import SourceRejected, SourceUnavailable
from notifier.retry import Retrier, parse_retry_after
from notifier.transport import ACCEPT_JSON, Request, Unanswered
from notifier.trigger import Window

SERVICE = "Mixpanel"
OUTPUT_PROPERTIES = ("$email", "$name", "$first_name", "$last_name", "$created")
MAX_NAME_CHARS = 200
MAX_EXTRA_CHARS = 100
LOG = logging.getLogger(__name__)


class NewUser(NamedTuple):
    """One profile created in the window, reduced to what the digest shows.

    A NamedTuple rather than a frozen dataclass: as immutable, and much cheaper to build and hold
    100,000 times.
    """

    distinct_id: str
    name: str
    email: str
    created: datetime  # aware, UTC
    extra: tuple[str, ...] = ()  # EXTRA_PROPERTIES values, as text, in their order
    late: bool = False  # created in time an earlier digest covered: it reached Mixpanel late


@dataclass
class FetchStats:
    """What fetching cost: pages, bytes, and profiles dropped for a missing $created or as repeats."""

    pages: int = 0
    bytes_received: int = 0
    skipped_without_created: int = 0
    duplicates_dropped: int = 0
    total_mismatch: bool = False  # Mixpanel's `total` was smaller than what it returned


@dataclass(frozen=True)
class MixpanelAuth:
    """Service-account credentials, or the legacy project secret when `username` is None."""

    username: str | None
    secret: str

    def as_basic(self) -> tuple[str, str]:
        """The HTTP Basic pair; the legacy form is the secret as user with an empty password."""
        return (self.username, self.secret) if self.username else (self.secret, "")


def where_created_in(window: Window) -> str:
    """The Engage `where` selecting ``start <= $created < end`` with ``datetime(<unix seconds>)`` bounds.

    Mixpanel evaluates `<`/`>=` on numbers and dates only; a ``datetime("...")`` string literal is
    read in the project's timezone, so Unix seconds are the one form that means UTC everywhere.
    """
    start, end = _unix_seconds(window.start), _unix_seconds(window.end)
    return f'datetime({start}) <= properties["$created"] and properties["$created"] < datetime({end})'


def where_created_in_any(windows: Sequence[Window]) -> str:
    """The `where` for several ranges at once (a catch-up with a gap): one query, `or`-ed."""
    if not windows:
        raise ValueError("no ranges: an empty where would select every profile in the project")
    if len(windows) == 1:
        return where_created_in(windows[0])
    return " or ".join(f"({where_created_in(window)})" for window in windows)


def _unix_seconds(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp())


class MixpanelClient:
    """Fetches new users from one project; I/O goes through the retrier's transport."""

    def __init__(
        self,
        *,
        base_url: str,
        project_id: int,
        auth: MixpanelAuth,
        retrier: Retrier,
        extra_properties: tuple[str, ...] = (),
    ) -> None:
        self._url = f"{base_url.rstrip('/')}/api/query/engage"
        self._project_id = project_id
        self._auth = auth
        self._retrier = retrier
        self._extra = extra_properties
        self.stats = FetchStats()

    def new_users(self, windows: Window | Sequence[Window]) -> Iterator[NewUser]:
        """Yield each profile created in `windows` once, in the order Mixpanel returns them."""
        ranges = (windows,) if isinstance(windows, Window) else tuple(windows)
        if not ranges:
            return  # no time to search: nothing is asked of Mixpanel
        form: dict[str, str] = {
            "where": where_created_in_any(ranges),
            "output_properties": json.dumps([*OUTPUT_PROPERTIES, *self._extra]),
        }
        seen: set[str] = set()
        total: int | None = None  # Mixpanel's count of matches, from the first page
        received = 0
        while True:
            page = self._retrier.call(partial(self._post, form), name="Mixpanel engage")
            results = page.get("results")
            if not isinstance(results, list):
                raise SourceUnavailable(
                    f"{SERVICE} answered without a results list (page {form.get('page', 0)})",
                    service=SERVICE,
                )
            if total is None and _is_int(page.get("total")):
                total = page["total"]
            received += len(results)
            fresh = 0
            for raw in results:
                user = self._to_user(raw, ranges)
                if user is None:
                    continue
                if user.distinct_id in seen:
                    self.stats.duplicates_dropped += 1
                    continue
                seen.add(user.distinct_id)
                fresh += 1
                yield user
            if results and fresh == 0 and all(_distinct_id(r) in seen for r in results):
                raise SourceUnavailable(
                    f"{SERVICE} returned page {page.get('page')} with only profiles already seen; "
                    "stopping rather than looping",
                    service=SERVICE,
                )
            if not self._more(page, results, received, total):
                return
            session_id = page.get("session_id")
            if not isinstance(session_id, str) or not session_id:
                raise SourceUnavailable(
                    f"{SERVICE} returned {received} profiles of {'?' if total is None else total} "
                    "and no session_id, so the rest cannot be fetched",
                    service=SERVICE,
                )
            number = page.get("page", 0)
            form = {**form, "session_id": session_id, "page": str((number if _is_int(number) else 0) + 1)}

    def total(self, where: str) -> int:
        """How many profiles match `where`, by Mixpanel's own count: one query, its first page's `total`."""
        # Only $created comes back: the count is what matters, not a thousand profiles' properties.
        form = {"where": where, "output_properties": json.dumps(["$created"])}
        page = self._retrier.call(partial(self._post, form), name="Mixpanel engage")
        total = page.get("total")
        if not isinstance(total, int) or isinstance(total, bool):
            raise SourceUnavailable(f"{SERVICE} answered without a total count", service=SERVICE)
        return total

    def _more(self, page: dict[str, Any], results: list[Any], received: int, total: int | None) -> bool:
        """Whether another page is needed; an inconsistency that paging cannot resolve is raised."""
        if not results:
            if total is not None and received < total:
                raise SourceUnavailable(
                    f"{SERVICE} said {total} profiles match but sent {received} before an empty page",
                    service=SERVICE,
                )
            return False
        if total is not None and received > total and not self.stats.total_mismatch:
            self.stats.total_mismatch = True
            LOG.warning(
                "Mixpanel's total (%d) is smaller than what it returned; paging on until an empty page",
                total,
            )
        if total is not None and not self.stats.total_mismatch:
            # Trusting `total` saves the query that would come back empty: 60 an hour is the limit.
            return received < total
        page_size = page.get("page_size")
        if isinstance(page_size, int) and not isinstance(page_size, bool) and page_size > 0:
            return len(results) >= page_size
        return True  # neither total nor page_size: page until one comes back empty

    def _post(self, form: dict[str, str]) -> dict[str, Any]:
        request = Request.form(
            "POST",
            self._url,
            form,
            params={"project_id": str(self._project_id)},
            basic=self._auth.as_basic(),
            headers=ACCEPT_JSON,
        )
        try:
            answer = self._retrier.send(request)
        except Unanswered as error:
            raise SourceUnavailable(f"{SERVICE} {error.reason}", service=SERVICE) from None
        self.stats.pages += 1
        self.stats.bytes_received += len(answer.body)
        if answer.status != 200:
            raise _refusal(answer.status, answer.body, answer.headers)
        try:
            page = json.loads(answer.body) if answer.complete else None
        except (ValueError, RecursionError):
            page = None
        if not isinstance(page, dict):
            raise SourceUnavailable(
                f"{SERVICE} answered 200 with a body cut short, not JSON, or not an object", service=SERVICE
            )
        return page

    def _to_user(self, raw: object, ranges: tuple[Window, ...]) -> NewUser | None:
        if not isinstance(raw, dict):
            return None
        props = raw.get("$properties")
        props = props if isinstance(props, dict) else {}
        created = _parse_created(props.get("$created"))
        if created is None:
            self.stats.skipped_without_created += 1
            return None
        # The server's filter is trusted but checked: the ranges are the contract.
        if not any(window.start <= created < window.end for window in ranges):
            return None
        name = _text(props.get("$name"), MAX_NAME_CHARS) or _text(
            " ".join(_text(props.get(key), MAX_NAME_CHARS) for key in ("$first_name", "$last_name")),
            MAX_NAME_CHARS,
        )
        return NewUser(
            distinct_id=_distinct_id(raw),
            name=name,
            email=_text(props.get("$email"), 254),
            created=created,
            extra=tuple(_display(props.get(key)) for key in self._extra),
        )


def _refusal(status: int, body: bytes, headers: Any) -> Exception:
    detail = error_detail(body)
    if is_transient_status(status):
        said = (
            "rate limit reached (60 queries per hour, 5 at once per project)"
            if status == 429
            else f"answered {status}"
        )
        return SourceUnavailable(
            f"{SERVICE} {said}: {detail}",
            service=SERVICE,
            status=status,
            retry_after=parse_retry_after(headers),
        )
    if 300 <= status < 400:
        detail = "a redirect, not followed so the secret stays with Mixpanel (check MIXPANEL_REGION)"
    return SourceRejected(
        f"{SERVICE} refused the query with {status}: {detail} "
        "(check MIXPANEL_PROJECT_ID, MIXPANEL_REGION, MIXPANEL_SERVICE_ACCOUNT and MIXPANEL_SECRET)",
        service=SERVICE,
        status=status,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _distinct_id(raw: object) -> str:
    value = raw.get("$distinct_id") if isinstance(raw, dict) else None
    if value is None:
        return ""
    return _valid(value if isinstance(value, str) else json.dumps(value, default=str))


def _parse_created(value: object) -> datetime | None:
    # Mixpanel writes "YYYY-MM-DDTHH:MM:SS" in UTC; this runs once per profile, so no regex.
    if (
        not isinstance(value, str)
        or len(value) < 19
        or value[10] != "T"
        or value[13] != ":"
        or value[16] != ":"
    ):
        return None
    try:
        return datetime.fromisoformat(value[:19] + "+00:00")  # 8x faster than .replace(tzinfo=UTC)
    except ValueError:
        return None


def _valid(text: str) -> str:
    """Valid Unicode: a lone surrogate (half an emoji, cut by a JavaScript substring) becomes U+FFFD."""
    if text.isascii():
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _text(value: object, limit: int) -> str:
    """A profile value as one line of display text: valid, without control or bidi characters, cut."""
    if isinstance(value, str):
        text = _valid(value)
        if not text.isascii() or not text.isprintable():
            # Control and format characters (bidi overrides, zero-width) could restyle or reorder text.
            text = "".join(
                ch if ch == "\u200d" or unicodedata.category(ch) not in _HIDDEN else " " for ch in text
            )
        text = " ".join(text.split())
    elif _is_int(value) or isinstance(value, float):
        text = str(value)
    else:
        return ""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _display(value: object) -> str:
    """An EXTRA_PROPERTIES value of any JSON type as short display text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return _text(value, MAX_EXTRA_CHARS)
    return _text(json.dumps(value, ensure_ascii=False, default=str), MAX_EXTRA_CHARS)


_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
