"""Faults on the sources (Mixpanel, Secret Manager) and the run's budget, over real sockets.

What a channel does with each kind of answer is the channel contract (test_channel_contract.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.errors import NotifierError, SourceUnavailable, TransientError
from notifier.mixpanel import MixpanelAuth, MixpanelClient
from notifier.outcome import Outcome
from notifier.retry import Deadline, Retrier, RetryPolicy
from notifier.span import Span
from notifier.transport import Transport
from sandbox.mixpanel import MixpanelStandIn, profile
from sandbox.secretmanager import SecretManagerStandIn
from sandbox.server import Fault, StandIn
from tests.conftest import (
    EMAILS,
    FAST,
    MIXPANEL_SECRET,
    PHONES,
    PROJECT_ID,
    SENDGRID_KEY,
    SERVICE_ACCOUNT,
    TWILIO_TOKEN,
    WINDOW_END,
    WINDOW_START,
    Sleeps,
    World,
)

TRANSIENT = {
    "503": Fault.status(503),
    "500": Fault.status(500),
    "429 with Retry-After": Fault.status(429, retry_after="1"),
    "hang past the read timeout": Fault.hang(1.5),
    "dropped connection": Fault.dropped(),
    "a body that is not JSON": Fault.not_json(),
    "a body cut short": Fault.truncated(keep=3),
}
SECRET_NAMES = {
    "MIXPANEL_SECRET": ("projects/t/secrets/mixpanel/versions/1", MIXPANEL_SECRET),
    "SENDGRID_API_KEY": ("projects/t/secrets/sendgrid/versions/1", SENDGRID_KEY),
    "TWILIO_AUTH_TOKEN": ("projects/t/secrets/twilio/versions/1", TWILIO_TOKEN),
}


@pytest.fixture
def sources(world: World, secret_manager: SecretManagerStandIn) -> dict[str, StandIn]:
    """The world with its secrets read through Secret Manager, and quick timeouts."""
    for variable, (name, value) in SECRET_NAMES.items():
        secret_manager.secrets[name] = value
        world.environ[variable] = name
    world.environ["SECRET_MANAGER_API_URL"] = secret_manager.url
    world.services.policy = RetryPolicy(
        attempts=4, base_delay=0.5, max_delay=5.0, connect_timeout=0.5, read_timeout=0.5
    )
    return {"mixpanel": world.mixpanel, "secret manager": secret_manager}


@pytest.mark.parametrize("fault_name", sorted(TRANSIENT))
@pytest.mark.parametrize("service", ["mixpanel", "secret manager"])
def test_a_transient_fault_on_a_source_is_retried_and_everyone_is_told_once(
    world: World, sources: dict[str, StandIn], sleeps: Sleeps, service: str, fault_name: str
) -> None:
    sources[service].script(TRANSIENT[fault_name])
    assert world.deliver().outcome is Outcome.SENT
    assert sorted(world.inboxes()) == sorted(EMAILS)
    assert world.texts() == list(PHONES)
    assert len(sleeps.calls) >= 1
    if fault_name == "429 with Retry-After":
        assert 1.0 in sleeps.calls


def test_each_retry_leaves_one_log_line_and_the_summary_counts_them(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.mixpanel.script(Fault.status(503), Fault.status(502))
    summary = world.deliver()
    retries = [r for r in caplog.records if getattr(r, "fields", {}).get("event") == "retry"]
    assert len(retries) == 2
    assert all("Mixpanel" in r.getMessage() for r in retries)
    assert summary.retries == 2


def two_pages(world: World) -> MixpanelStandIn:
    """The world's Mixpanel serving its two users one page each."""
    world.mixpanel.page_size = 1
    world.mixpanel.profiles.append(profile("u2", "2026-11-28T08:40:00", name="Bob"))
    return world.mixpanel


def test_a_mixpanel_page_without_session_id_stops_the_run_before_anything_is_sent(world: World) -> None:
    mixpanel = two_pages(world)
    mixpanel.transform_next_page(lambda page: {k: v for k, v in page.items() if k != "session_id"})
    assert "session_id" in world.redelivery()["error"]
    assert (world.sendgrid.requests, world.twilio.requests) == ([], [])


def test_a_mixpanel_page_that_repeats_the_previous_one_stops_instead_of_looping(world: World) -> None:
    mixpanel = two_pages(world)
    first: dict[str, Any] = {}

    def remember(page: dict[str, Any]) -> dict[str, Any]:
        first.update(page)
        return page

    mixpanel.transform_next_page(remember, lambda page: {**page, "results": first["results"]})
    assert "already seen" in world.redelivery()["error"]
    assert world.sendgrid.requests == []


def test_mixpanels_rate_limit_is_retried_then_named_in_the_log(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.mixpanel.script(*[Fault.status(429)] * FAST.attempts)
    summary = world.redelivery()
    assert len(world.mixpanel.requests) == FAST.attempts
    assert "rate limit" in summary["message"]
    assert "60 queries per hour" in summary["message"]
    assert summary["outcome"] == "will_retry"


@pytest.mark.parametrize("fault", [Fault.hang(30), Fault.trickle(0.3)], ids=["hang", "trickle"])
@pytest.mark.parametrize("service", ["secret manager", "mixpanel"])
def test_a_slow_source_cannot_hold_the_run_past_its_budget(
    world: World, sources: dict[str, StandIn], service: str, fault: Fault
) -> None:
    # Per-read socket timeouts never fire on a trickle; the run's budget still ends the call.
    world.environ["RUN_BUDGET_SECONDS"] = "1"
    world.services.policy = RetryPolicy(attempts=10, read_timeout=30, connect_timeout=5)
    sources[service].script(*[fault] * 10)
    with pytest.raises(TransientError):
        world.deliver()
    assert len(sources[service].requests) == 1  # no retry could have finished in the time left
    assert world.sendgrid.requests == []


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
                retrier=Retrier(RetryPolicy(attempts=1), Deadline(10), Transport()),
            )
            try:
                users = list(client.new_users(Span.between(WINDOW_START, WINDOW_END)))
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
            retrier=Retrier(RetryPolicy(attempts=1), Deadline(10), Transport()),
        )
        with pytest.raises(SourceUnavailable):
            list(client.new_users(Span.between(WINDOW_START, WINDOW_END)))
