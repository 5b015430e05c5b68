"""Chaos (issue 8): every provider call draws an answer from a menu of misbehaviours, and one message
is delivered again and again, as Pub/Sub would. Whatever is drawn:

- every delivery logs exactly one run summary;
- nobody gets the digest twice, on any channel;
- no secret reaches a log line or a request body (the conftest checks every test for that);
- a delivery asks for redelivery only while someone is left untold;
- once the misbehaviour stops, one more delivery leaves nobody untold who could be told.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections import Counter
from collections.abc import Iterator

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier.errors import TransientError
from notifier.retry import RetryPolicy
from notifier.services import Services
from sandbox.mixpanel import MixpanelStandIn, profile
from sandbox.sendgrid import SendGridStandIn
from sandbox.server import Fault, Reply
from sandbox.slack import SlackStandIn
from sandbox.twilio import ACCOUNT_SID, TwilioStandIn
from tests.conftest import (
    EMAILS,
    MIXPANEL_SECRET,
    PHONES,
    PROJECT_ID,
    PUBLISHED,
    SENDGRID_KEY,
    SERVICE_ACCOUNT,
    SLACK_PATH,
    TWILIO_TOKEN,
    Clock,
    LogLines,
    Sleeps,
    World,
)

ODD = json.dumps({"errors": [5, None], "code": [1], "message": {"x": 1}}).encode()
MENU = {
    "ok": None,
    "4xx with an odd body": Fault(reply=Reply(400, ODD, {"Content-Type": "application/json"})),
    "problem+json": Fault(reply=Reply.json(403, {"type": "t", "title": "No", "status": 403, "code": 20003})),
    "429 with Retry-After": Fault.status(429, retry_after="0"),
    "5xx": Fault.status(503),
    "2xx then reset": Fault.truncated(keep=0),
    "2xx cut short": Fault.truncated(keep=1),
    "not JSON": Fault.not_json(),
    "a brief hang": Fault.hang(0.05),
    "connection dropped unanswered": Fault.dropped(),
}
answers = st.lists(st.sampled_from(sorted(MENU)), max_size=4)


@contextlib.contextmanager
def chaos_world(seed: int, log: LogLines) -> Iterator[World]:
    """A world of its own per example: fresh stand-ins, fresh memory."""
    with (
        MixpanelStandIn(project_id=PROJECT_ID, username=SERVICE_ACCOUNT, secret=MIXPANEL_SECRET) as mixpanel,
        SendGridStandIn(api_key=SENDGRID_KEY) as sendgrid,
        TwilioStandIn(account_sid=ACCOUNT_SID, auth_token=TWILIO_TOKEN) as twilio,
        SlackStandIn(path=SLACK_PATH) as slack,
    ):
        mixpanel.profiles = [profile("u1", "2026-11-28T08:30:00", name="Ada", email="ada@example.com")]
        clock, sleeps = Clock(PUBLISHED), Sleeps()
        policy = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0, connect_timeout=1.0, read_timeout=1.0)
        services = Services(policy=policy, sleep=sleeps, now=clock, rng=random.Random(seed))
        environ = {
            "MIXPANEL_PROJECT_ID": str(PROJECT_ID),
            "MIXPANEL_SERVICE_ACCOUNT": SERVICE_ACCOUNT,
            "MIXPANEL_SECRET": MIXPANEL_SECRET,
            "EMAIL_TO": ",".join(EMAILS),
            "EMAIL_FROM": "alerts@example.com",
            "SENDGRID_API_KEY": SENDGRID_KEY,
            "SMS_TO": ",".join(PHONES),
            "SMS_FROM": "+14155550199",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "SLACK_WEBHOOK_URL": slack.webhook_url,
            "MIXPANEL_API_URL": mixpanel.url,
            "SENDGRID_API_URL": sendgrid.url,
            "TWILIO_API_URL": twilio.url,
        }
        yield World(mixpanel, sendgrid, twilio, slack, environ, services, sleeps, clock, log)


def told(world: World) -> Counter[str]:
    """How many times each recipient got the digest, whatever the stand-ins answered."""
    counts: Counter[str] = Counter(world.inboxes())
    counts.update(world.texts())
    counts.update("slack" for _ in world.slack.messages())
    return counts


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    mixpanel=answers,
    sendgrid=answers,
    twilio=answers,
    slack=answers,
    deliveries=st.integers(min_value=1, max_value=4),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_whatever_the_providers_answer_nobody_is_told_twice_and_every_delivery_is_summarised(
    log_lines: LogLines,
    mixpanel: list[str],
    sendgrid: list[str],
    twilio: list[str],
    slack: list[str],
    deliveries: int,
    seed: int,
) -> None:
    with chaos_world(seed, log_lines) as world:
        scripted = (
            (world.mixpanel, mixpanel),
            (world.sendgrid, sendgrid),
            (world.twilio, twilio),
            (world.slack, slack),
        )
        for server, names in scripted:
            server.script(*[MENU[name] or Fault(accept=True) for name in names])
        start = len(log_lines.lines)
        for _ in range(deliveries + 1):  # the last delivery comes after the misbehaviour has run out
            try:
                world.deliver()
                raised = False
            except TransientError:
                raised = True
            everyone = set(EMAILS) | set(PHONES) | {"slack"}
            if raised:
                assert set(told(world)) != everyone, "redelivery asked for after everyone was told"
            assert max(told(world).values(), default=0) <= 1, f"told twice: {told(world)}"
        summary_lines = [line for line in log_lines.lines[start:] if '"event": "run_summary"' in line]
        assert len(summary_lines) == deliveries + 1
        for server, _ in scripted:
            server.faults.clear()
        # Nothing left to misbehave: one more delivery settles everyone who can be told, raising nothing.
        world.deliver()
        assert max(told(world).values(), default=0) <= 1
