"""What the digest tells (SPEC: What the digest tells; Mixpanel as it is), end to end through the
function's handler and the stand-ins: the sign-up date, a segment, a breakdown, the companies.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from notifier.outcome import Outcome
from sandbox.mixpanel import profile
from sandbox.server import Fault
from tests.conftest import PUBLISHED, World


def custom(user: dict[str, Any], **properties: str) -> dict[str, Any]:
    """The profile with the project's own properties (named without Mixpanel's `$`)."""
    user["$properties"].update(properties)
    return user


def wheres(world: World) -> list[str]:
    return [r.form().get("where", "") for r in world.mixpanel.received("/api/query/engage")]


def email_parts(world: World) -> tuple[str, str]:
    mail = world.emails()[-1]
    parts = {c["type"]: c["value"] for c in mail["content"]}
    return parts["text/plain"], parts["text/html"]


def slack_text(world: World) -> str:
    return json.dumps(world.slack.messages()[-1])


# -- the sign-up date ---------------------------------------------------------------------------


def test_a_project_dated_by_first_seen_gets_its_digest(world: World) -> None:
    world.environ["CREATED_PROPERTY"] = "$mp_first_event_time"
    world.mixpanel.profiles = [
        profile("u1", "", name="Ada", email="ada@example.com", mp_first_event_time="2026-11-28T08:30:00"),
        profile("u2", "2026-11-28T08:31:00", name="Bob", mp_first_event_time="2026-11-27T08:30:00"),
    ]
    summary = world.deliver()
    assert (summary.outcome, summary.users) == (Outcome.SENT, 1)  # Ada: first seen in the window
    assert all('properties["$mp_first_event_time"]' in where for where in wheres(world))
    assert "Ada" in email_parts(world)[0]


def test_a_created_property_that_could_reach_the_where_is_bad_configuration(world: World) -> None:
    world.environ["CREATED_PROPERTY"] = 'signed_up_at"] or true or properties["x'
    summary = world.deliver()
    assert summary.outcome is Outcome.BAD_CONFIG
    assert summary.error_fields["variable"] == "CREATED_PROPERTY"
    assert world.mixpanel.requests == []


# -- a segment --------------------------------------------------------------------------------------


def test_the_filter_is_anded_with_every_range_of_a_catch_up(world: World) -> None:
    world.environ.update(MIXPANEL_FILTER='properties["plan"] == "pro"', LATE_ARRIVAL_MINUTES="0")
    world.mixpanel.profiles = [
        custom(profile("u1", "2026-11-28T08:30:00", name="Ada"), plan="pro"),
        custom(profile("u2", "2026-11-28T08:40:00", name="Bob"), plan="free"),
        custom(profile("u3", "2026-11-28T09:15:00", name="Cy"), plan="pro"),
    ]
    hour = timedelta(hours=1)
    world.mixpanel.script(*[Fault.status(503)] * world.services.policy.attempts)
    world.redelivery()  # 08:00-09:00: Mixpanel is down; the message stays open
    world.clock.advance(hours=1)
    assert world.deliver(message_id="msg-10", published=PUBLISHED + hour).users == 1  # 09:00-10:00: Cy
    world.sendgrid.script(Fault.status(401))
    world.twilio.script(Fault.status(400), Fault.status(400))
    assert world.deliver().outcome is Outcome.FAILED  # 08:00-09:00 again: everyone refuses, time given back
    world.clock.advance(hours=1)
    summary = world.deliver(message_id="msg-11", published=PUBLISHED + 2 * hour)
    assert summary.users == 1  # Ada (not Bob), from the hour given back, beside 10:00-11:00
    ranges, _, segment = wheres(world)[-1].rpartition(" and (properties")
    assert segment == '["plan"] == "pro")'
    assert ranges.count(") or (") == 1  # 08:00-09:00 and 10:00-11:00: both inside the filter
    assert ranges.startswith("((")


def test_a_filter_that_could_widen_the_query_never_reaches_mixpanel(world: World) -> None:
    world.environ["MIXPANEL_FILTER"] = 'properties["plan"] == "pro") or (true'
    summary = world.deliver()
    assert summary.outcome is Outcome.BAD_CONFIG
    assert summary.error_fields["variable"] == "MIXPANEL_FILTER"
    assert world.mixpanel.requests == []


def test_a_filter_mixpanel_refuses_is_bad_configuration_and_its_time_is_given_back(world: World) -> None:
    world.environ["MIXPANEL_FILTER"] = 'properties["plan"] =='
    summary = world.deliver()
    assert summary.outcome is Outcome.BAD_CONFIG
    assert "MIXPANEL_FILTER" in (summary.error or "")
    assert (world.emails(), world.texts()) == ([], [])
    assert summary.history["end"] == "release"


# -- a breakdown and the companies ------------------------------------------------------------------


def sign_ups(world: World) -> None:
    world.mixpanel.profiles = [
        custom(
            profile("u1", "2026-11-28T08:01:00", name="Ada", email="ada@eng.acme.com"), utm_source="google"
        ),
        custom(profile("u2", "2026-11-28T08:02:00", name="Bob", email="bob@acme.com"), utm_source="google"),
        custom(
            profile("u3", "2026-11-28T08:03:00", name="Cy", email="cy@gmail.com"), utm_source="<b>news</b>"
        ),
        profile("u4", "2026-11-28T08:04:00", name="Di", email="di@initech.co.uk"),
    ]


def test_the_breakdown_and_the_companies_top_both_email_parts_and_slack(world: World) -> None:
    world.with_slack().environ["BREAKDOWN_PROPERTY"] = "utm_source"
    sign_ups(world)
    assert world.deliver().users == 4
    text, html = email_parts(world)
    assert "By utm_source: google 2, <b>news</b> 1, (none) 1" in text
    assert "Companies: acme.com 2, initech.co.uk 1" in text
    assert "&lt;b&gt;news&lt;/b&gt; 1" in html
    assert "<b>news</b>" not in html
    assert text.index("Companies:") < text.index("Ada")
    assert "Companies: acme.com 2, initech.co.uk 1" in slack_text(world)
    assert "&lt;b&gt;news&lt;/b&gt;" in slack_text(world)


def test_the_companies_can_be_turned_off(world: World) -> None:
    world.environ["COMPANY_ROLLUP"] = "false"
    sign_ups(world)
    world.deliver()
    assert "Companies:" not in email_parts(world)[0]


def test_a_rate_limited_query_says_the_limit_and_when_room_returns(world: World) -> None:
    policy = '"queries";q=400;w=3600'
    world.mixpanel.script(
        *[Fault.status(429, retry_after="0")] * (world.services.policy.attempts - 1),
        Fault(status_code=429, headers={"Retry-After": "1800", "RateLimit-Policy": policy}),
    )
    summary = world.redelivery()
    assert "the project's limit is 400 queries per hour; room again in about 30 min" in summary["error"]
