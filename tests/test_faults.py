"""Every fault on every outbound call, injected through the stand-ins over real sockets."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from notifier.errors import NotifierError, SourceUnavailable, TransientError
from notifier.mixpanel import MixpanelAuth, MixpanelClient
from notifier.retry import Deadline, Retrier, RetryPolicy
from notifier.run import Services
from notifier.trigger import Window
from sandbox.mixpanel import MixpanelStandIn, profile
from sandbox.secretmanager import SecretManagerStandIn
from sandbox.sendgrid import SendGridStandIn
from sandbox.server import Fault, Reply, StandIn
from sandbox.twilio import TwilioStandIn
from tests.conftest import (
    MIXPANEL_SECRET,
    PROJECT_ID,
    SENDGRID_KEY,
    SERVICE_ACCOUNT,
    TWILIO_TOKEN,
    WINDOW_END,
    WINDOW_START,
    Sleeps,
    run_once,
)

FAST = RetryPolicy(attempts=4, base_delay=0.5, max_delay=5.0, connect_timeout=0.5, read_timeout=0.5)
TRANSIENT = {
    "503": Fault.status(503),
    "500": Fault.status(500),
    "429 with Retry-After": Fault.status(429, retry_after="1"),
    "hang past the read timeout": Fault.hang(1.5),
    "dropped connection": Fault.dropped(),
}
SECRET_NAMES = {
    "MIXPANEL_SECRET": ("projects/t/secrets/mixpanel/versions/1", MIXPANEL_SECRET),
    "SENDGRID_API_KEY": ("projects/t/secrets/sendgrid/versions/1", SENDGRID_KEY),
    "TWILIO_AUTH_TOKEN": ("projects/t/secrets/twilio/versions/1", TWILIO_TOKEN),
}


@pytest.fixture
def world(
    mixpanel: MixpanelStandIn,
    sendgrid: SendGridStandIn,
    twilio: TwilioStandIn,
    secret_manager: SecretManagerStandIn,
    environ: dict[str, str],
    services: Services,
) -> dict[str, Any]:
    """All four services, secrets read through Secret Manager, one new user, fast timeouts."""
    for variable, (name, value) in SECRET_NAMES.items():
        secret_manager.secrets[name] = value
        environ[variable] = name
    environ["SECRET_MANAGER_API_URL"] = secret_manager.url
    mixpanel.profiles = [profile("u1", "2026-11-28T08:30:00", name="Ada", email="ada@example.com")]
    services.policy = FAST
    servers = {"mixpanel": mixpanel, "secret manager": secret_manager, "sendgrid": sendgrid, "twilio": twilio}
    return {"servers": servers, "environ": environ, "services": services}


def served(server: StandIn) -> int:
    return sum(1 for r in server.requests if r.served)


@pytest.mark.parametrize("fault_name", sorted(TRANSIENT))
@pytest.mark.parametrize("service", ["mixpanel", "secret manager", "sendgrid", "twilio"])
def test_a_transient_fault_on_any_call_is_retried_and_everyone_is_told_once(
    world: dict[str, Any], sleeps: Sleeps, service: str, fault_name: str
) -> None:
    servers: dict[str, StandIn] = world["servers"]
    servers[service].script(TRANSIENT[fault_name])
    summary = run_once(world["environ"], world["services"])
    assert summary.outcome == "sent"
    sendgrid, twilio = servers["sendgrid"], servers["twilio"]
    assert isinstance(sendgrid, SendGridStandIn)
    assert isinstance(twilio, TwilioStandIn)
    assert len(sendgrid.mails()) == 1
    assert [m["To"] for m in twilio.messages()] == ["+14155550100", "+14155550101"]
    faulted = [r for r in servers[service].requests if not r.served]
    assert len(faulted) == 1
    assert len(sleeps.calls) >= 1
    if fault_name == "429 with Retry-After":
        assert 1.0 in sleeps.calls


@pytest.mark.parametrize("service", ["mixpanel", "secret manager"])
def test_a_source_answering_200_with_a_body_that_is_not_json_is_retried(
    world: dict[str, Any], service: str
) -> None:
    world["servers"][service].script(Fault.not_json())
    assert run_once(world["environ"], world["services"]).outcome == "sent"
    assert len(world["servers"]["sendgrid"].mails()) == 1


@pytest.mark.parametrize("service", ["sendgrid", "twilio"])
def test_a_channel_answering_2xx_with_a_body_that_is_not_json_counts_as_delivered(
    world: dict[str, Any], service: str
) -> None:
    # A 2xx means the provider took the message; retrying could only send it twice.
    status = {"sendgrid": 202, "twilio": 201}[service]
    world["servers"][service].script(
        Fault(reply=Reply(status, b"<html>proxy</html>", {"Content-Type": "text/html"}))
    )
    summary = run_once(world["environ"], world["services"])
    assert summary.outcome == "sent"
    assert len(world["servers"][service].requests) == (1 if service == "sendgrid" else 2)


def test_twilio_error_20429_is_retried(world: dict[str, Any], sleeps: Sleeps) -> None:
    world["servers"]["twilio"].script(
        Fault.status(429, body={"code": 20429, "message": "Too Many Requests", "status": 429})
    )
    assert run_once(world["environ"], world["services"]).outcome == "sent"
    assert len(world["servers"]["twilio"].messages()) == 2


def two_pages(world: dict[str, Any]) -> MixpanelStandIn:
    """The world's Mixpanel serving its two users one page each."""
    mixpanel: MixpanelStandIn = world["servers"]["mixpanel"]
    mixpanel.page_size = 1
    mixpanel.profiles.append(profile("u2", "2026-11-28T08:40:00", name="Bob"))
    return mixpanel


def test_a_full_mixpanel_page_without_session_id_stops_the_run_before_anything_is_sent(
    world: dict[str, Any],
) -> None:
    mixpanel = two_pages(world)
    mixpanel.transform_next_page(lambda page: {k: v for k, v in page.items() if k != "session_id"})
    with pytest.raises(SourceUnavailable, match="session_id"):
        run_once(world["environ"], world["services"])
    assert world["servers"]["sendgrid"].requests == []
    assert world["servers"]["twilio"].requests == []


def test_a_mixpanel_page_that_repeats_the_previous_one_stops_instead_of_looping(
    world: dict[str, Any],
) -> None:
    mixpanel = two_pages(world)
    first: dict[str, Any] = {}

    def remember(page: dict[str, Any]) -> dict[str, Any]:
        first.update(page)
        return page

    mixpanel.transform_next_page(remember, lambda page: {**page, "results": first["results"]})
    with pytest.raises(SourceUnavailable, match="already seen"):
        run_once(world["environ"], world["services"])
    assert world["servers"]["sendgrid"].requests == []


def test_mixpanels_rate_limit_is_retried_then_named_in_the_log(
    world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    world["servers"]["mixpanel"].script(*[Fault.status(429)] * FAST.attempts)
    with pytest.raises(SourceUnavailable):
        run_once(world["environ"], world["services"])
    assert len(world["servers"]["mixpanel"].requests) == FAST.attempts
    (summary,) = [r for r in caplog.records if getattr(r, "fields", {}).get("event") == "run_summary"]
    assert "rate limit" in summary.getMessage()
    assert "60 queries per hour" in summary.getMessage()
    assert summary.fields["outcome"] == "will_retry"  # type: ignore[attr-defined]


@pytest.mark.parametrize("service", ["secret manager", "mixpanel", "sendgrid", "twilio"])
def test_a_hanging_server_cannot_hold_the_run_past_its_budget(world: dict[str, Any], service: str) -> None:
    environ, services = world["environ"], world["services"]
    environ["RUN_BUDGET_SECONDS"] = "2"
    services.policy = RetryPolicy(attempts=10, read_timeout=30, connect_timeout=5)
    services.sleep = time.sleep  # real waits: the budget is wall time
    world["servers"][service].script(*[Fault.hang(5)] * 10)
    started = time.monotonic()
    if service == "twilio":
        # The email went out before the texts hung: the run ends, acked, rather than redelivered.
        assert run_once(environ, services).outcome == "partial"
    else:
        with pytest.raises(TransientError):
            run_once(environ, services)
    assert time.monotonic() - started < 3.0
    assert len(world["servers"]["sendgrid"].mails()) == (1 if service == "twilio" else 0)


json_leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=3)
    ),
    max_leaves=12,
)
profiles = st.fixed_dictionaries(
    {},
    optional={
        "$distinct_id": json_values,
        "$properties": st.fixed_dictionaries(
            {},
            optional={
                "$created": st.sampled_from(["2026-11-28T08:30:00", "2026-11-28T09:30:00", "bad"])
                | json_values,
                "$name": json_values,
                "$email": json_values,
                "$first_name": json_values,
            },
        )
        | json_values,
    },
)
pages = st.fixed_dictionaries(
    {},
    optional={
        "page": json_values,
        "page_size": st.integers(min_value=-1, max_value=3) | json_values,
        "session_id": st.text(max_size=5) | json_values,
        "results": st.lists(profiles | json_values, max_size=4) | json_values,
        "status": json_values,
    },
)


def test_arbitrary_mixpanel_pages_raise_nothing_but_the_documented_errors() -> None:
    with MixpanelStandIn(project_id=PROJECT_ID, username=SERVICE_ACCOUNT, secret=MIXPANEL_SECRET) as server:

        @given(st.lists(pages | json_values, min_size=1, max_size=3))
        def check(bodies: list[Any]) -> None:
            server.transform_next_page(*[lambda _real, body=body: body for body in bodies])
            client = MixpanelClient(
                base_url=server.url,
                project_id=PROJECT_ID,
                auth=MixpanelAuth(SERVICE_ACCOUNT, MIXPANEL_SECRET),
                session=requests.Session(),
                retrier=Retrier(RetryPolicy(attempts=1), Deadline(10)),
            )
            try:
                users = list(client.new_users(Window(WINDOW_START, WINDOW_END)))
            except NotifierError:
                pass
            else:
                assert all(WINDOW_START <= u.created < WINDOW_END for u in users)
                assert len({u.distinct_id for u in users if u.distinct_id}) == len(
                    [u for u in users if u.distinct_id]
                )
            finally:
                server.page_transforms.clear()

        check()


def test_arbitrary_non_object_bodies_from_mixpanel_are_transient_errors(mixpanel: MixpanelStandIn) -> None:
    bodies: list[Any] = [[], "text", 3, None]
    for body in bodies:
        mixpanel.transform_next_page(lambda _real, body=body: body)  # type: ignore[misc]
        client = MixpanelClient(
            base_url=mixpanel.url,
            project_id=PROJECT_ID,
            auth=MixpanelAuth(SERVICE_ACCOUNT, MIXPANEL_SECRET),
            session=requests.Session(),
            retrier=Retrier(RetryPolicy(attempts=1), Deadline(10)),
        )
        with pytest.raises(SourceUnavailable):
            list(client.new_users(Window(WINDOW_START, WINDOW_END)))
