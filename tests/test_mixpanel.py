"""The Mixpanel client: every user in the window once, across pages, with either auth form."""

from __future__ import annotations

import io
import json
import threading
import time
import unicodedata
from datetime import timedelta
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from urllib3 import HTTPResponse

from notifier.errors import ConfigError, SourceRejected, SourceUnavailable
from notifier.mixpanel import (
    NAME_PROPERTIES,
    NO_DISTINCT_ID,
    MixpanelAuth,
    MixpanelClient,
    NewUser,
    where_created_in,
    where_created_in_any,
)
from notifier.outcome import Outcome
from notifier.retry import Deadline, Retrier, RetryPolicy
from notifier.settings import Settings
from notifier.span import Span
from notifier.transport import Transport
from sandbox.mixpanel import MixpanelStandIn, profile
from sandbox.server import Fault
from tests.conftest import MIXPANEL_SECRET, PROJECT_ID, SERVICE_ACCOUNT, WINDOW_END, WINDOW_START, World

WINDOW = Span.between(WINDOW_START, WINDOW_END)


def client_for(
    server: MixpanelStandIn,
    auth: MixpanelAuth | None = None,
    *,
    attempts: int = 2,
    deadline: Deadline | None = None,
    **options: Any,
) -> MixpanelClient:
    return MixpanelClient(
        base_url=server.url,
        project_id=PROJECT_ID,
        auth=auth or MixpanelAuth(SERVICE_ACCOUNT, MIXPANEL_SECRET),
        retrier=Retrier(
            RetryPolicy(attempts=attempts, base_delay=0.01),
            deadline or Deadline(30),
            Transport(),
            sleep=lambda _s: None,
        ),
        **options,
    )


def created(offset_seconds: int) -> str:
    return (WINDOW_START + timedelta(seconds=offset_seconds)).strftime("%Y-%m-%dT%H:%M:%S")


def seed(server: MixpanelStandIn, count: int) -> None:
    server.profiles = [
        profile(f"user-{n}", created(n % 3600), name=f"User {n}", email=f"user{n}@example.com")
        for n in range(count)
    ]


@pytest.mark.parametrize(
    ("count", "pages"), [(0, 1), (1, 1), (999, 1), (1000, 1), (1001, 2), (2000, 2), (2500, 3)]
)
def test_every_user_in_the_window_comes_back_exactly_once(
    mixpanel: MixpanelStandIn, count: int, pages: int
) -> None:
    seed(mixpanel, count)
    client = client_for(mixpanel)
    users = list(client.new_users(WINDOW))
    assert sorted(u.distinct_id for u in users) == sorted(f"user-{n}" for n in range(count))
    assert client.stats.pages == pages == len(mixpanel.requests)


def test_no_time_to_search_asks_mixpanel_nothing_never_for_everyone(mixpanel: MixpanelStandIn) -> None:
    seed(mixpanel, 3)
    assert list(client_for(mixpanel).new_users([])) == []
    assert mixpanel.requests == []  # an empty where would have exported the whole project
    with pytest.raises(ValueError, match="every profile"):
        where_created_in_any([])


def test_later_pages_use_the_first_pages_session_id_and_the_next_page_number(
    mixpanel: MixpanelStandIn,
) -> None:
    seed(mixpanel, 2500)
    list(client_for(mixpanel).new_users(WINDOW))
    forms = [r.form() for r in mixpanel.requests]
    assert "session_id" not in forms[0]
    assert "page" not in forms[0]
    session_id = forms[1]["session_id"]
    assert sorted(f["page"] for f in forms[1:]) == ["1", "2"]  # fetched at once, in any order
    assert forms[2]["session_id"] == session_id
    assert all(f["where"] == forms[0]["where"] for f in forms)


def test_a_user_created_exactly_at_start_is_in_and_exactly_at_end_is_out(mixpanel: MixpanelStandIn) -> None:
    mixpanel.profiles = [
        profile("before", created(-1)),
        profile("at-start", created(0)),
        profile("last-second", created(3599)),
        profile("at-end", created(3600)),
    ]
    ids = [u.distinct_id for u in client_for(mixpanel).new_users(WINDOW)]
    assert sorted(ids) == ["at-start", "last-second"]


def test_the_where_bounds_created_with_unix_seconds_datetime_literals() -> None:
    # SPEC: the form the replaced app used against the live API; 1795852800 is 2026-11-28T08:00Z.
    assert where_created_in(WINDOW) == (
        'datetime(1795852800) <= properties["$created"] and properties["$created"] < datetime(1795856400)'
    )


@pytest.mark.parametrize("project_timezone", ["UTC", "America/Los_Angeles", "Asia/Kolkata"])
def test_the_window_is_utc_whatever_the_projects_timezone(
    mixpanel: MixpanelStandIn, project_timezone: str
) -> None:
    mixpanel.project_timezone = project_timezone
    mixpanel.profiles = [profile("in", created(10)), profile("out", created(3600 + 8 * 3600))]
    assert [u.distinct_id for u in client_for(mixpanel).new_users(WINDOW)] == ["in"]


def test_the_request_is_a_form_post_with_project_id_and_only_the_digest_properties(
    mixpanel: MixpanelStandIn,
) -> None:
    list(client_for(mixpanel).new_users(WINDOW))
    request = mixpanel.requests[0]
    assert (request.method, request.path) == ("POST", "/api/query/engage")
    assert request.query == {"project_id": str(PROJECT_ID)}
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert json.loads(request.form()["output_properties"]) == [*NAME_PROPERTIES, "$created"]


def test_service_account_auth_is_basic_username_and_secret(mixpanel: MixpanelStandIn) -> None:
    list(client_for(mixpanel).new_users(WINDOW))
    assert mixpanel.requests[0].basic_auth() == (SERVICE_ACCOUNT, MIXPANEL_SECRET)


def test_legacy_auth_is_the_project_secret_with_an_empty_password(mixpanel: MixpanelStandIn) -> None:
    mixpanel.username = None
    mixpanel.profiles = [profile("u1", created(5))]
    users = list(client_for(mixpanel, MixpanelAuth(None, MIXPANEL_SECRET)).new_users(WINDOW))
    assert [u.distinct_id for u in users] == ["u1"]
    assert mixpanel.requests[0].basic_auth() == (MIXPANEL_SECRET, "")


def test_the_secret_is_sent_only_in_the_authorization_header(mixpanel: MixpanelStandIn) -> None:
    seed(mixpanel, 1001)
    list(client_for(mixpanel).new_users(WINDOW))
    for request in mixpanel.requests:
        assert MIXPANEL_SECRET not in request.body.decode()
        assert MIXPANEL_SECRET not in json.dumps(request.query)


def test_wrong_credentials_are_a_rejection_not_a_retry(mixpanel: MixpanelStandIn) -> None:
    with pytest.raises(SourceRejected) as caught:
        list(client_for(mixpanel, MixpanelAuth(SERVICE_ACCOUNT, "wrong")).new_users(WINDOW))
    assert caught.value.status == 401
    assert len(mixpanel.requests) == 1


def test_names_fall_back_to_first_and_last_name_and_values_become_plain_text(
    mixpanel: MixpanelStandIn,
) -> None:
    mixpanel.profiles = [
        profile("a", created(1), name="  Ada \n Lovelace ", email="ada@example.com"),
        profile("b", created(2), first_name="Grace", last_name="Hopper"),
        profile("c", created(3), first_name="Alan"),
        profile("d", created(4), name=None, email=["not", "a", "string"]),
        profile("e", created(5), name=12345),
    ]
    users = {u.distinct_id: u for u in client_for(mixpanel).new_users(WINDOW)}
    assert users["a"] == NewUser("a", "Ada Lovelace", "ada@example.com", WINDOW_START + timedelta(seconds=1))
    assert users["b"].name == "Grace Hopper"
    assert users["c"].name == "Alan"
    assert (users["d"].name, users["d"].email) == ("", "")
    assert users["e"].name == "12345"


def test_profiles_without_a_usable_created_are_skipped_and_counted(mixpanel: MixpanelStandIn) -> None:
    client = client_for(mixpanel)
    page = {
        "page": 0,
        "page_size": 1000,
        "session_id": "s",
        "total": 4,
        "results": [
            {"$distinct_id": "ok", "$properties": {"$created": created(9)}},
            {"$distinct_id": "none", "$properties": {}},
            {"$distinct_id": "junk", "$properties": {"$created": "yesterday"}},
            {"$distinct_id": "num", "$properties": {"$created": 1764316800}},
        ],
    }
    mixpanel.transform_next_page(lambda _real: page)
    users = list(client.new_users(WINDOW))
    assert [u.distinct_id for u in users] == ["ok"]
    assert client.stats.skipped_without_created == 3


class RecordingAdapter(requests.adapters.BaseAdapter):
    """A transport for the session handed to the client: records URLs, answers an empty page.

    Real region hosts cannot be reached from tests, so this checks where the client would go.
    """

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def send(self, request: requests.PreparedRequest, *args: object, **kwargs: object) -> requests.Response:
        self.urls.append(str(request.url))
        response = requests.Response()
        response.status_code = 200
        page = b'{"page": 0, "page_size": 1000, "results": [], "session_id": "s", "total": 0}'
        response.raw = HTTPResponse(body=io.BytesIO(page), status=200, preload_content=False)
        response.request = request
        return response

    def close(self) -> None:
        pass


@pytest.mark.parametrize("region", ["us", "eu", "in"])
def test_each_region_queries_its_own_host(region: str) -> None:
    settings = Settings.from_environ(
        {"MIXPANEL_PROJECT_ID": "4242", "MIXPANEL_SECRET": "s", "MIXPANEL_REGION": region}
    )
    adapter = RecordingAdapter()
    session = requests.Session()
    session.mount("https://", adapter)
    client = MixpanelClient(
        base_url=settings.endpoints.mixpanel,
        project_id=4242,
        auth=MixpanelAuth(None, "s"),
        retrier=Retrier(RetryPolicy(), Deadline(30), Transport(session)),
    )
    list(client.new_users(WINDOW))
    expected = {
        "us": "https://mixpanel.com",
        "eu": "https://eu.mixpanel.com",
        "in": "https://in.mixpanel.com",
    }[region]
    assert adapter.urls == [f"{expected}/api/query/engage?project_id=4242"]


def test_a_first_page_without_a_total_stops_the_run_to_try_again(mixpanel: MixpanelStandIn) -> None:
    seed(mixpanel, 2000)
    mixpanel.transform_next_page(lambda page: {k: v for k, v in page.items() if k != "total"})
    with pytest.raises(SourceUnavailable, match="without a total"):
        list(client_for(mixpanel).new_users(WINDOW))
    assert len(mixpanel.requests) == 1  # the pages cannot be planned, so none is asked for


def test_extra_properties_are_requested_and_any_json_value_becomes_short_text(
    mixpanel: MixpanelStandIn,
) -> None:
    values = {
        "plan": "pro",
        "seats": 12,
        "trial": True,
        "tags": ["a", "b"],
        "meta": {"k": None},
        "long": "x" * 500,
    }
    mixpanel.profiles = [profile("u1", created(1), **{f"custom_{k}": v for k, v in values.items()})]
    mixpanel.profiles[0]["$properties"].update(values)
    client = MixpanelClient(
        base_url=mixpanel.url,
        project_id=PROJECT_ID,
        auth=MixpanelAuth(SERVICE_ACCOUNT, MIXPANEL_SECRET),
        retrier=Retrier(RetryPolicy(attempts=1), Deadline(30), Transport()),
        extra_properties=(*values, "missing"),
    )
    (found,) = client.new_users(WINDOW)
    assert json.loads(mixpanel.requests[0].form()["output_properties"]) == [
        *NAME_PROPERTIES,
        "$created",
        *values,
        "missing",
    ]
    assert found.extra[:5] == ("pro", "12", "true", '["a", "b"]', '{"k": null}')
    assert len(found.extra[5]) == 100
    assert found.extra[6] == ""


def test_text_from_mixpanel_is_made_valid_and_inert_where_it_enters(mixpanel: MixpanelStandIn) -> None:
    mixpanel.profiles = [
        profile("u\ud83d", created(1), name="Ada \ud83d\u202e\x00 Lovelace", email="a@b.c\u200b")
    ]
    (found,) = client_for(mixpanel).new_users(WINDOW)
    assert found.name == "Ada \ufffd Lovelace"
    assert found.distinct_id == "u\ufffd"
    found.name.encode("utf-8")


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=40))
def test_a_name_becomes_one_line_of_visible_text_and_text_that_is_one_already_is_kept(
    mixpanel: MixpanelStandIn, name: str
) -> None:
    mixpanel.profiles = [profile("u", created(1), name=name)]
    (found,) = client_for(mixpanel).new_users(WINDOW)
    hidden = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
    assert not any(unicodedata.category(ch) in hidden for ch in found.name.replace("\u200d", ""))
    assert found.name == " ".join(found.name.split())
    if name.isprintable() and name == " ".join(name.split()):
        assert found.name == name


# -- the created property and the filter -----------------------------------------------------------
@pytest.mark.parametrize("created_property", ["$mp_first_event_time", "signed_up_at"])
def test_the_created_property_dates_the_where_and_every_user(
    mixpanel: MixpanelStandIn, created_property: str
) -> None:
    dated = profile("dated", "", name="Dated")
    dated["$properties"][created_property] = created(60)
    mixpanel.profiles = [dated, profile("only-created", created(30))]
    client = client_for(mixpanel, created_property=created_property)
    (found,) = client.new_users(WINDOW)
    assert (found.distinct_id, found.created) == ("dated", WINDOW_START + timedelta(seconds=60))
    form = mixpanel.requests[0].form()
    assert f'properties["{created_property}"]' in form["where"]
    assert '"$created"' not in form["where"]
    assert json.loads(form["output_properties"]) == [*NAME_PROPERTIES, created_property]


@pytest.mark.parametrize("name", ['plan"] or true or properties["x', "back\\slash", "new\nline", ""])
def test_a_property_name_that_could_leave_its_quotes_never_reaches_the_where(name: str) -> None:
    with pytest.raises(ValueError, match="quote"):
        where_created_in(WINDOW, name)


def test_the_filter_narrows_every_range_of_a_catch_up_and_cannot_widen_them(
    mixpanel: MixpanelStandIn,
) -> None:
    earlier = Span.between(WINDOW_START - timedelta(hours=3), WINDOW_START - timedelta(hours=2))
    either = 'properties["plan"] == "pro" or properties["plan"] == "team"'
    where = where_created_in_any([earlier, WINDOW], "$created", either)
    assert where == f"(({where_created_in(earlier)}) or ({where_created_in(WINDOW)})) and ({either})"
    mixpanel.profiles = [
        profile("pro-now", created(10), plan="pro"),
        profile("team-earlier", created(-3 * 3600 + 5), plan="team"),
        profile("free-now", created(20), plan="free"),
        profile("pro-outside", created(-3600), plan="pro"),  # between the two ranges
        profile("no-plan", created(30)),
    ]
    for p in mixpanel.profiles:  # profile() prefixes "$": the plan is the project's own property
        p["$properties"]["plan"] = p["$properties"].pop("$plan", None)
    client = client_for(mixpanel, where_filter=either)
    assert sorted(u.distinct_id for u in client.new_users([earlier, WINDOW])) == ["pro-now", "team-earlier"]


def test_a_filter_mixpanel_cannot_run_is_bad_configuration_naming_it(mixpanel: MixpanelStandIn) -> None:
    seed(mixpanel, 3)
    with pytest.raises(ConfigError, match="MIXPANEL_FILTER"):
        list(client_for(mixpanel, where_filter='properties["plan"] ==').new_users(WINDOW))


# -- pages a few at a time --------------------------------------------------------------------------
@pytest.mark.parametrize("at_once", [1, 3, 5])
def test_pages_after_the_first_are_asked_for_at_most_n_at_once(
    mixpanel: MixpanelStandIn, at_once: int
) -> None:
    mixpanel.page_size = 10
    seed(mixpanel, 10 * (1 + 2 * at_once))  # page 0, then two rounds of `at_once` pages
    together = threading.Barrier(at_once, timeout=10)

    def wait_together(_seconds: float) -> None:
        together.wait()

    def later_pages_wait_for_each_other(page: dict[str, Any]) -> dict[str, Any]:
        mixpanel.sleep, mixpanel.page_delay = wait_together, 1.0
        return page

    mixpanel.transform_next_page(later_pages_wait_for_each_other)
    users = list(client_for(mixpanel, page_concurrency=at_once).new_users(WINDOW))
    # A barrier of `at_once` parties passes only when that many pages are asked for together.
    assert [u.distinct_id for u in users] == [f"user-{n}" for n in range(len(mixpanel.profiles))]
    assert mixpanel.most_at_once == at_once


def test_users_come_in_page_order_whatever_order_the_pages_arrive_in(mixpanel: MixpanelStandIn) -> None:
    mixpanel.page_size = 10
    seed(mixpanel, 60)
    slow_first = iter([0.2])  # the first later page asked for answers last

    def later_pages_vary(page: dict[str, Any]) -> dict[str, Any]:
        mixpanel.sleep, mixpanel.page_delay = lambda _s: time.sleep(next(slow_first, 0.0)), 1.0
        return page

    mixpanel.transform_next_page(later_pages_vary)
    users = list(client_for(mixpanel).new_users(WINDOW))
    assert [u.distinct_id for u in users] == [f"user-{n}" for n in range(60)]


def test_a_failing_page_is_asked_again_by_itself_and_only_the_first_page_counts(
    mixpanel: MixpanelStandIn,
) -> None:
    seed(mixpanel, 3500)
    passes = Fault.hang(0)  # the first page is answered as usual
    mixpanel.script(passes, Fault.status(503), Fault.status(429, retry_after="1"))
    client = client_for(mixpanel, attempts=3)
    assert sorted(u.distinct_id for u in client.new_users(WINDOW)) == sorted(f"user-{n}" for n in range(3500))
    assert len(mixpanel.requests) == 4 + 2
    assert [r.form().get("page") for r in mixpanel.requests].count(None) == 1  # never the whole query again
    assert mixpanel.counted == 1


def _shorter(page: dict[str, Any]) -> dict[str, Any]:
    return {**page, "results": page["results"][:-1]}


@pytest.mark.parametrize(
    ("second_page", "says"),
    [
        (_shorter, "promised"),
        (lambda page: {**page, "total": page["total"] + 1}, "total"),
        (lambda page: {**page, "session_id": "another"}, "session_id"),
        (lambda page: {**page, "page": page["page"] + 1}, "numbered"),
        (lambda page: {**page, "results": "none"}, "results"),
        (lambda page: {**page, "results": [*page["results"][:-1], None]}, "not a profile"),
    ],
    ids=["shorter", "changed total", "other session", "other number", "no results", "a null profile"],
)
def test_a_page_that_disagrees_with_the_first_stops_the_fetch_to_try_again(
    mixpanel: MixpanelStandIn, second_page: Any, says: str
) -> None:
    seed(mixpanel, 2500)
    mixpanel.transform_next_page(lambda page: page, second_page)
    with pytest.raises(SourceUnavailable, match=says):
        list(client_for(mixpanel).new_users(WINDOW))
    assert not _page_threads()


@pytest.mark.parametrize("odd", [None, 7, "profile", ["user-1"], True])
def test_a_result_that_is_not_a_profile_is_never_dropped_silently(
    mixpanel: MixpanelStandIn, odd: Any
) -> None:
    seed(mixpanel, 2)
    mixpanel.transform_next_page(lambda page: {**page, "results": [page["results"][0], odd]})
    with pytest.raises(SourceUnavailable, match="not a profile"):
        list(client_for(mixpanel).new_users(WINDOW))


def test_a_lost_session_stops_the_fetch_to_try_again_not_for_good(mixpanel: MixpanelStandIn) -> None:
    seed(mixpanel, 2500)

    def expire(page: dict[str, Any]) -> dict[str, Any]:
        mixpanel.forget_sessions()
        return page

    mixpanel.transform_next_page(expire)
    with pytest.raises(SourceUnavailable, match="session"):
        list(client_for(mixpanel).new_users(WINDOW))
    assert not _page_threads()


def test_profiles_repeated_from_an_earlier_page_stop_the_fetch_rather_than_lose_as_many(
    mixpanel: MixpanelStandIn,
) -> None:
    # The hostile probe: total 1,500, and page 1 repeats 10 profiles of page 0 in place of 10 others.
    seed(mixpanel, 1500)
    first: list[Any] = []

    def remember(page: dict[str, Any]) -> dict[str, Any]:
        first.extend(page["results"])
        return page

    mixpanel.transform_next_page(
        remember, lambda page: {**page, "results": first[:10] + page["results"][10:]}
    )
    with pytest.raises(SourceUnavailable, match="already seen"):
        list(client_for(mixpanel).new_users(WINDOW))


def test_a_consumer_that_stops_early_leaves_no_page_thread_behind(mixpanel: MixpanelStandIn) -> None:
    mixpanel.page_size = 10
    seed(mixpanel, 200)
    users = client_for(mixpanel).new_users(WINDOW)
    assert next(users).distinct_id == "user-0"
    users.close()
    assert not _page_threads()


def _page_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("page")]


# -- a window too large for the run's time ---------------------------------------------------------
class Ticks:
    """A monotonic clock that the stand-in's page delay moves: the client's deadline reads it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(("budget", "fits"), [(120, True), (50, False)])
def test_a_window_whose_pages_cannot_arrive_in_time_is_refused_at_once_with_the_fix(
    mixpanel: MixpanelStandIn, budget: float, fits: bool
) -> None:
    ticks = Ticks()
    mixpanel.page_size, mixpanel.page_delay, mixpanel.sleep = 10, 2.0, ticks.sleep
    seed(mixpanel, 300)  # 30 pages of 2 s one after another: 60 s
    client = client_for(mixpanel, deadline=Deadline(budget, clock=ticks), page_concurrency=1)
    if fits:
        assert len(list(client.new_users(WINDOW))) == 300
        return
    with pytest.raises(SourceRejected) as caught:
        list(client.new_users(WINDOW))
    assert "300 profiles in 30 pages" in str(caught.value)
    assert "MIXPANEL_PAGE_CONCURRENCY" in str(caught.value)
    assert len(mixpanel.requests) == 1  # known from the first page: nothing more is asked


# -- profiles without $distinct_id ----------------------------------------------------------------
def test_profiles_without_a_distinct_id_are_each_listed_under_a_key_of_their_own(
    mixpanel: MixpanelStandIn,
) -> None:
    twin = {"$properties": {"$created": created(5), "$name": "Twin"}}
    mixpanel.profiles = [
        twin,
        dict(twin),
        {"$properties": {"$created": created(6), "$name": "Other"}},
        profile("real", created(7)),
    ]
    first = [u.distinct_id for u in client_for(mixpanel).new_users(WINDOW)]
    again = [u.distinct_id for u in client_for(mixpanel).new_users(WINDOW)]
    assert len(set(first)) == 4
    assert first == again  # the same keys on every run, so the history tells each once
    assert sum(key.startswith(NO_DISTINCT_ID) for key in first) == 3


# -- what Mixpanel's refusals mean ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "names"),
    [(404, "MIXPANEL_REGION"), (413, "MIXPANEL_FILTER"), (402, "plan"), (401, "MIXPANEL_SECRET")],
)
def test_each_refusal_says_what_it_means(mixpanel: MixpanelStandIn, status: int, names: str) -> None:
    mixpanel.script(Fault.status(status))
    with pytest.raises(SourceRejected) as caught:
        list(client_for(mixpanel).new_users(WINDOW))
    assert names in str(caught.value)
    if status != 403:
        assert "MIXPANEL_PROJECT_ID" not in str(caught.value)


@pytest.mark.parametrize("status", [408, 409])
def test_a_408_or_409_is_asked_again(mixpanel: MixpanelStandIn, status: int) -> None:
    seed(mixpanel, 2)
    mixpanel.script(Fault.status(status))
    assert len(list(client_for(mixpanel).new_users(WINDOW))) == 2
    assert len(mixpanel.requests) == 2


def test_a_429_says_the_projects_limit_and_when_room_returns(mixpanel: MixpanelStandIn) -> None:
    mixpanel.queries_per_hour = 240
    mixpanel.script(Fault.status(429))
    with pytest.raises(SourceUnavailable) as caught:
        list(client_for(mixpanel, attempts=1).new_users(WINDOW))
    text = str(caught.value)
    assert "240 queries per hour and 5 at once" in text
    assert "room again in 60 s" in text


def test_the_stand_in_counts_first_pages_only_and_not_its_429s(mixpanel: MixpanelStandIn) -> None:
    seed(mixpanel, 2500)
    mixpanel.queries_per_hour = 2
    for _ in range(2):  # 3 pages each: counting every page would refuse the second fetch
        assert len(list(client_for(mixpanel).new_users(WINDOW))) == 2500
    with pytest.raises(SourceUnavailable, match="2 queries per hour"):
        list(client_for(mixpanel, attempts=1).new_users(WINDOW))
    refused = mixpanel.requests[-1]
    assert "session_id" not in refused.form()
    assert mixpanel.counted == 2


# -- through a run -------------------------------------------------------------------------------
def test_a_run_whose_pages_repeat_profiles_is_tried_again_and_then_tells_everyone_once(world: World) -> None:
    world.users(*[f"2026-11-28T08:{n % 60:02d}:{n // 60 % 60:02d}" for n in range(1499)])
    first: list[Any] = []

    def remember(page: dict[str, Any]) -> dict[str, Any]:
        first.extend(page["results"])
        return page

    world.mixpanel.transform_next_page(
        remember, lambda page: {**page, "results": first[:10] + page["results"][10:]}
    )
    assert world.redelivery()["outcome"] == "will_retry"
    assert world.emails() == []
    summary = world.deliver()
    assert (summary.outcome, summary.users) == (Outcome.SENT, 1500)


def test_a_run_too_large_for_its_time_ends_with_one_error_and_is_not_delivered_again(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    ticks = Ticks()
    world.services.clock = ticks
    world.environ.update({"RUN_BUDGET_SECONDS": "20", "LATE_ARRIVAL_MINUTES": "0"})
    world.mixpanel.page_size, world.mixpanel.page_delay, world.mixpanel.sleep = 10, 3.0, ticks.sleep
    world.users(*[f"2026-11-28T08:{n % 60:02d}:00" for n in range(299)])  # 30 pages: 30 s at 3 at once
    summary = world.deliver()  # returns: acked, not redelivered for a day
    assert summary.outcome is Outcome.SOURCE_REJECTED
    assert world.emails() == []
    (error,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "MIXPANEL_PAGE_CONCURRENCY" in error.getMessage()
