"""The Mixpanel client: every user in the window once, across pages, with either auth form."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
import requests
from urllib3 import HTTPResponse

from notifier.errors import SourceRejected
from notifier.mixpanel import (
    OUTPUT_PROPERTIES,
    MixpanelAuth,
    MixpanelClient,
    NewUser,
    where_created_in,
    where_created_in_any,
)
from notifier.retry import Deadline, Retrier, RetryPolicy
from notifier.settings import Settings
from notifier.transport import Transport
from notifier.trigger import Window
from sandbox.mixpanel import MixpanelStandIn, profile
from tests.conftest import MIXPANEL_SECRET, PROJECT_ID, SERVICE_ACCOUNT, WINDOW_END, WINDOW_START

WINDOW = Window(WINDOW_START, WINDOW_END)


def client_for(server: MixpanelStandIn, auth: MixpanelAuth | None = None) -> MixpanelClient:
    return MixpanelClient(
        base_url=server.url,
        project_id=PROJECT_ID,
        auth=auth or MixpanelAuth(SERVICE_ACCOUNT, MIXPANEL_SECRET),
        retrier=Retrier(
            RetryPolicy(attempts=2, base_delay=0.01), Deadline(30), Transport(), sleep=lambda _s: None
        ),
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
    assert [f.get("page") for f in forms[1:]] == ["1", "2"]
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
    assert json.loads(request.form()["output_properties"]) == list(OUTPUT_PROPERTIES)


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
        "results": [
            {"$distinct_id": "ok", "$properties": {"$created": created(9)}},
            {"$distinct_id": "none", "$properties": {}},
            {"$distinct_id": "junk", "$properties": {"$created": "yesterday"}},
            {"$distinct_id": "num", "$properties": {"$created": 1764316800}},
            "not an object",
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
        page = b'{"page": 0, "page_size": 1000, "results": [], "session_id": "s"}'
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


def test_without_a_total_a_full_last_page_is_followed_by_one_empty_page(mixpanel: MixpanelStandIn) -> None:
    seed(mixpanel, 2000)
    mixpanel.transform_next_page(*[lambda page: {k: v for k, v in page.items() if k != "total"}] * 3)
    client = client_for(mixpanel)
    assert len(list(client.new_users(WINDOW))) == 2000
    assert client.stats.pages == 3


def test_a_profile_repeated_on_a_later_page_is_reported_once(mixpanel: MixpanelStandIn) -> None:
    seed(mixpanel, 2)
    mixpanel.page_size = 1
    # Page 1 carries page 0's profile again beside its own: a shifted page, not a repeated one.
    mixpanel.transform_next_page(
        lambda page: page,
        lambda page: {**page, "results": [*page["results"], profile("user-0", created(0))], "total": 2},
    )
    client = client_for(mixpanel)
    assert sorted(u.distinct_id for u in client.new_users(WINDOW)) == ["user-0", "user-1"]
    assert client.stats.duplicates_dropped == 1


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
        *OUTPUT_PROPERTIES,
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
